"""Issue 8 (privacy), over HTTP on SQLite and PostgreSQL: embargoed publications committed to
by a salted hash until released, and Chatham House attendance recorded as salted commitments.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx

from ledger.commitments import check_attendance_proof, matches
from tests.api.test_writes import (
    SETUP,
    Api,
    Official,
    check_receipt,
    open_api,
    poll,
    problem,
)
from tests.conftest import Store

FUTURE = "2999-01-01T00:00:00Z"
PAST = "2020-01-01T00:00:00Z"


def _upload(api: Api, who: Official, content: bytes, media_type: str = "text/plain") -> str:
    response = api.post("/documents", who, content=content, headers={"Content-Type": media_type})
    assert response.status_code == 201, response.text
    sha256: str = response.json()["sha256"]
    return sha256


def _process(api: Api) -> str:
    return api.ledger.start_process(title="Budget", actor=SETUP).subject_id


def _caught_up(api: Api, path: str, index: int) -> dict[str, Any]:
    """GET ``path`` once the read models reflect log index ``index``."""
    response = poll(
        api,
        path,
        lambda r: r.status_code == 200 and r.json()["as_of_index"] >= index,
    )
    body: dict[str, Any] = response.json()
    return body


def _entry(receipt: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = json.loads(receipt["entry"])
    return fields


def _embargo(api: Api, who: Official, sha256: str, release_at: str) -> httpx.Response:
    return api.post(
        "/publications/embargoed",
        who,
        {
            "process_id": _process(api),
            "pub_kind": "policy_paper",
            "title": "Budget statement",
            "sha256": sha256,
            "release_at": release_at,
        },
    )


def test_embargoed_publication_lifecycle(store: Store) -> None:
    """Commit (no hash, size or type in the entry) → grants → refused early and mismatching
    releases → admin's early release with a reason → anyone recomputes the commitment; the
    download is refused until the release, and every stage shows in the register."""
    with open_api(store) as api:
        publisher, admin, recorder = (api.officials[r] for r in ("publisher", "admin", "recorder"))
        document = b"The budget: income tax falls by a penny.\n"
        sha256 = _upload(api, publisher, document)
        other = _upload(api, publisher, b"Not the budget.\n")

        # 1. Commit.
        response = _embargo(api, publisher, sha256, FUTURE)
        committed = check_receipt(api, response, publisher, created="/publications")
        entry = _entry(committed)
        pid = entry["subject"]["id"]
        assert entry["type"] == "publication.embargoed"
        assert set(entry["data"]) == {
            "process_id",
            "pub_kind",
            "title",
            "commitment",
            "release_at",
            "proposal_ids",
            "meeting_ids",
        }
        assert entry["data"]["release_at"] == FUTURE
        raw = committed["entry"]
        assert sha256 not in raw
        assert "text/plain" not in raw
        assert entry["data"]["commitment"] != sha256
        # The salt is beside the log, not in it.
        stored = api.side.embargo_salt(pid)
        assert stored is not None
        assert stored.salt.hex() not in raw
        assert matches(entry["data"]["commitment"], stored.salt, document)

        shown = _caught_up(api, f"/publications/{pid}", committed["index"])
        assert shown["state"] == "embargoed"
        assert shown["title"] == "Budget statement"
        assert shown["release_at"] == FUTURE
        assert shown["commitment"] == entry["data"]["commitment"]
        assert shown["sha256"] is None
        assert shown["size"] is None
        assert shown["media_type"] is None
        assert shown["salt"] is None
        assert shown["released_index"] is None
        assert shown["prerelease_grants"] == []
        refused = problem(api.client.get(f"/publications/{pid}/document"), 403)
        assert "embargoed" in refused["detail"]
        assert sha256 not in json.dumps(refused)

        # 2. Pre-release access, recorded.
        grant = api.post(
            f"/publications/{pid}/prerelease-access",
            publisher,
            {"organisation_id": api.org_id, "authorised_by": "Chief Secretary", "reason": "brief"},
        )
        granted = check_receipt(api, grant, publisher)
        assert _entry(granted)["type"] == "publication.prerelease_access_granted"
        problem(
            api.post(
                f"/publications/{pid}/prerelease-access",
                publisher,
                {"organisation_id": "no-such-org", "authorised_by": "X", "reason": "y"},
            ),
            404,
        )
        shown = _caught_up(api, f"/publications/{pid}", granted["index"])
        assert shown["prerelease_grants"] == [
            {
                "organisation_id": api.org_id,
                "authorised_by": "Chief Secretary",
                "reason": "brief",
                "index": granted["index"],
                "time": _entry(granted)["time"],
            }
        ]

        # 3. Refusals record nothing.
        before = api.size()
        early = problem(
            api.post(f"/publications/{pid}/release", publisher, {"sha256": sha256}), 422
        )
        assert "embargoed until" in early["detail"]
        problem(
            api.post(
                f"/publications/{pid}/release",
                publisher,
                {"sha256": sha256, "override_reason": "leaked"},
            ),
            403,
        )
        problem(api.post(f"/publications/{pid}/release", recorder, {"sha256": sha256}), 403)
        wrong = problem(
            api.post(
                f"/publications/{pid}/release",
                admin,
                {"sha256": other, "override_reason": "leaked"},
            ),
            422,
        )
        assert "not the document" in wrong["detail"]
        assert api.size() == before

        # 4. An admin releases early, with the reason on the record.
        response = api.post(
            f"/publications/{pid}/release", admin, {"sha256": sha256, "override_reason": "leaked"}
        )
        released = check_receipt(api, response, admin)
        data = _entry(released)["data"]
        assert _entry(released)["type"] == "publication.released"
        assert data == {
            "sha256": sha256,
            "size": len(document),
            "media_type": "text/plain",
            "salt": stored.salt.hex(),
            "override_reason": "leaked",
        }
        # Anyone: SHA-256(salt ‖ bytes) is the commitment made before.
        assert (
            hashlib.sha256(bytes.fromhex(data["salt"]) + document).hexdigest()
            == entry["data"]["commitment"]
        )
        shown = _caught_up(api, f"/publications/{pid}", released["index"])
        assert shown["state"] == "published"
        assert (shown["sha256"], shown["size"], shown["media_type"]) == (
            sha256,
            len(document),
            "text/plain",
        )
        assert shown["commitment"] == entry["data"]["commitment"]
        assert shown["salt"] == data["salt"]
        assert shown["released_index"] == released["index"]
        assert shown["override_reason"] == "leaked"
        assert len(shown["prerelease_grants"]) == 1
        download = poll(api, f"/publications/{pid}/document", lambda r: r.status_code == 200)
        assert download.content == document
        assert download.headers["etag"] == f'"{sha256}"'
        # As of before the release, no document fields.
        past = api.client.get(f"/publications/{pid}", params={"as_of": released["index"] - 1})
        assert past.status_code == 200, past.text
        assert past.json()["state"] == "embargoed"
        assert past.json()["sha256"] is None
        assert past.json()["salt"] is None
        listed = api.client.get("/publications").json()["items"]
        assert {p["id"]: p["state"] for p in listed}[pid] == "published"

        # 5. Released is final: no second release, no late grant.
        problem(api.post(f"/publications/{pid}/release", admin, {"sha256": sha256}), 422)
        problem(
            api.post(
                f"/publications/{pid}/prerelease-access",
                publisher,
                {"organisation_id": api.org_id, "authorised_by": "X", "reason": "late"},
            ),
            422,
        )


def test_release_on_schedule_by_a_publisher(store: Store) -> None:
    """Once the scheduled time has passed a publisher releases without any override."""
    with open_api(store) as api:
        publisher = api.officials["publisher"]
        document = b"%PDF-1.7 scheduled"
        sha256 = _upload(api, publisher, document, "application/pdf")
        pid = _embargo(api, publisher, sha256, PAST).json()["subject"]["id"]
        response = api.post(f"/publications/{pid}/release", publisher, {"sha256": sha256})
        data = _entry(check_receipt(api, response, publisher))["data"]
        assert data["override_reason"] is None
        assert data["media_type"] == "application/pdf"
        problem(
            api.post(
                "/publications/embargoed",
                publisher,
                {
                    "process_id": _process(api),
                    "pub_kind": "report",
                    "title": "T",
                    "sha256": sha256,
                    "release_at": "tomorrow",
                },
            ),
            422,
        )


def _chatham(api: Api, orgs: list[str]) -> tuple[str, dict[str, Any]]:
    process = _process(api)
    meeting = api.ledger.schedule_meeting(
        process_id=process,
        title="Roundtable",
        starts_at="2026-03-01T09:00:00Z",
        disclosure="chatham_house",
        convenor_org=orgs[0],
        actor=SETUP,
    ).subject_id
    response = api.post(
        f"/meetings/{meeting}/held",
        api.officials["recorder"],
        {"attending_orgs": orgs, "held_at": "2026-03-01T09:00:00Z"},
    )
    return meeting, check_receipt(api, response, api.officials["recorder"])


def test_chatham_house_attendance_is_committed_not_named(store: Store) -> None:
    """The held entry names no attendee; an admin's proof reveals one salt that recomputes
    to a commitment in the entry; others are refused; the public sees only the count."""
    with open_api(store) as api:
        # (not the recorder's own organisation: the entry names its actor's)
        orgs = [
            api.ledger.register_organisation(
                name=f"Group {n}", org_kind="civil_society", actor=SETUP
            ).subject_id
            for n in range(4)
        ]
        meeting, held = _chatham(api, orgs)
        entry = _entry(held)
        assert entry["type"] == "meeting.held_in_confidence"
        for org in orgs:
            assert org not in held["entry"]
            assert org.replace("-", "") not in held["entry"]
        commitments = entry["data"]["attendance_commitments"]
        assert len(commitments) == len(orgs) == len(set(commitments))
        assert commitments == sorted(commitments)

        admin = api.officials["admin"]
        path = f"/meetings/{meeting}/attendance-proof"
        response = api.client.get(path, params={"organisation": orgs[2]}, headers=admin.auth)
        assert response.status_code == 200, response.text
        proof = response.json()
        assert proof["organisation"] == orgs[2]
        assert proof["index"] == held["index"]
        assert proof["entry"] == held["entry"]
        assert commitments[proof["position"]] == proof["commitment"]
        assert (
            hashlib.sha256(bytes.fromhex(proof["salt"]) + orgs[2].encode()).hexdigest()
            == proof["commitment"]
        )
        assert check_attendance_proof(held["entry"].encode(), proof)
        assert not check_attendance_proof(
            held["entry"].encode(), {**proof, "organisation": orgs[1]}
        )
        # Every attendee has its own salt.
        salts = {
            api.client.get(path, params={"organisation": o}, headers=admin.auth).json()["salt"]
            for o in orgs
        }
        assert len(salts) == len(orgs)

        for role in ("recorder", "publisher"):
            who = api.officials[role]
            body = problem(
                api.client.get(path, params={"organisation": orgs[0]}, headers=who.auth), 403
            )
            assert role in body["detail"]
        problem(api.client.get(path, params={"organisation": orgs[0]}), 401)
        stranger = api.ledger.register_organisation(
            name="Stranger", org_kind="business", actor=SETUP
        ).subject_id
        problem(api.client.get(path, params={"organisation": stranger}, headers=admin.auth), 404)

        shown = _caught_up(api, f"/meetings/{meeting}", held["index"])
        assert shown["held"] is True
        assert shown["attending_orgs"] is None
        assert shown["attendance_withheld"] is True
        assert shown["attendee_count"] == len(orgs)
        listed = [m for m in api.client.get("/meetings").json()["items"] if m["id"] == meeting]
        assert listed[0]["attendee_count"] == len(orgs)
        assert not any(o in json.dumps(listed) for o in orgs[1:])


def test_on_record_attendance_is_unchanged(store: Store) -> None:
    """An on-the-record meeting still names its attendees in the entry; no proof is needed."""
    with open_api(store) as api:
        process = _process(api)
        meeting = api.ledger.schedule_meeting(
            process_id=process,
            title="Open meeting",
            starts_at="2026-03-01T09:00:00Z",
            convenor_org=api.org_id,
            actor=SETUP,
        ).subject_id
        response = api.post(
            f"/meetings/{meeting}/held",
            api.officials["recorder"],
            {"attending_orgs": [api.org_id], "held_at": "2026-03-01T09:00:00Z"},
        )
        entry = _entry(check_receipt(api, response, api.officials["recorder"]))
        assert entry["type"] == "meeting.held"
        assert entry["data"]["attending_orgs"] == [api.org_id]
        problem(
            api.client.get(
                f"/meetings/{meeting}/attendance-proof",
                params={"organisation": api.org_id},
                headers=api.officials["admin"].auth,
            ),
            422,
        )
        shown = _caught_up(api, f"/meetings/{meeting}", 0)
        assert shown["attending_orgs"] == [api.org_id]
        assert shown["attendee_count"] == 1
