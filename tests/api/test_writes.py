"""The officials' write API over HTTP, on SQLite and PostgreSQL.

Every write is checked the way an outsider would: the receipt's entry hashes to its
``entry_hash``, its checkpoint verifies with the log's published key and its inclusion proof
reaches that checkpoint's root — all with the independent verifier in ``ledger.audit``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.actors import Actor
from ledger.application import LedgerApplication
from ledger.audit import (
    ProofError,
    hash_leaf,
    parse_checkpoint,
    parse_note,
    parse_vkey,
    verify_checkpoint,
    verify_inclusion,
)
from ledger.keys import create_master_key_file
from ledger.storage.side import SideStore
from tests.conftest import Store, make_store

ROLES = ("recorder", "publisher", "admin")
SETUP = Actor("setup", "admin", "")
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
PROBLEM_JSON = "application/problem+json"


# the API under test -------------------------------------------------------------------------


@dataclass(frozen=True)
class Official:
    """An official's token and the actor their entries must name."""

    role: str
    principal: str
    org: str
    token: str
    token_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def actor(self) -> dict[str, str]:
        return {"id": self.principal, "role": self.role, "org": self.org}


@dataclass
class Api:
    """A running app (lifespan entered), one official per role and their organisation."""

    client: TestClient
    vkey: str
    org_id: str
    officials: dict[str, Official]
    statuses: list[int] = field(default_factory=list)

    @property
    def ledger(self) -> LedgerApplication:
        app: LedgerApplication = self.client.app.state.ledger  # type: ignore[attr-defined]
        return app

    @property
    def side(self) -> SideStore:
        side: SideStore = self.client.app.state.side  # type: ignore[attr-defined]
        return side

    def size(self) -> int:
        """The published log size, as GET /checkpoint tells anyone."""
        response = self.client.get("/checkpoint")
        assert response.status_code == 200, response.text
        return parse_checkpoint(parse_note(response.text)[0]).size

    def post(
        self,
        path: str,
        who: Official | None,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        sent = {**(who.auth if who else {}), **(headers or {})}
        response: httpx.Response
        if content is not None:
            response = self.client.post(path, content=content, headers=sent)
        else:
            response = self.client.post(path, json=body, headers=sent)
        return response

    def official(self, role: str, principal: str | None = None) -> Official:
        """Issue another token, directly on the ledger (not over HTTP)."""
        principal = principal or f"{role}-{uuid.uuid4().hex[:6]}"
        receipt, token = self.ledger.issue_token(
            principal=principal, org=self.org_id, role=role, actor=SETUP
        )
        return Official(role, principal, self.org_id, token, receipt.subject_id)


@contextmanager
def open_api(store: Store, **overrides: Any) -> Iterator[Api]:
    """Create the tables and seed an organisation and one token per role, then serve."""
    settings = store.settings.model_copy(update=overrides)
    seed = LedgerApplication(settings)
    try:
        org_id = seed.register_organisation(
            name="Cabinet Office", org_kind="department", actor=SETUP
        ).subject_id
        officials = {}
        for role in ROLES:
            receipt, token = seed.issue_token(
                principal=f"{role}-official", org=org_id, role=role, actor=SETUP
            )
            officials[role] = Official(role, f"{role}-official", org_id, token, receipt.subject_id)
        vkey = seed.signer.verifier_key()
    finally:
        seed.close()
    with TestClient(create_app(settings)) as client:
        api = Api(client, vkey, org_id, officials)

        def no_server_errors(response: httpx.Response) -> None:
            api.statuses.append(response.status_code)
            assert response.status_code < 500, (response.request.url, response.read())

        client.event_hooks = {"request": [], "response": [no_server_errors]}
        yield api
    assert api.statuses, "no request was made"
    assert all(status < 500 for status in api.statuses)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert an RFC 9457 problem of ``status``; return its body."""
    assert response.status_code == status, (status, response.status_code, response.text)
    assert response.headers["content-type"].split(";")[0] == PROBLEM_JSON, response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    for key in ("type", "title", "detail"):
        assert isinstance(body[key], str), (key, body)
        assert body[key], (key, body)
    return body


def unauthorised(response: httpx.Response) -> dict[str, Any]:
    body = problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer"), response.headers
    return body


def check_receipt(
    api: Api,
    response: httpx.Response,
    who: Official,
    *,
    created: str | None = None,
    status: int | None = None,
) -> dict[str, Any]:
    """The answer is a receipt an outsider can verify, for an entry naming ``who``.

    ``created`` (a kind's path) expects a 201 with a Location to the new record.
    """
    assert response.status_code == (status or (201 if created else 200)), response.text
    receipt: dict[str, Any] = response.json()
    entry = receipt["entry"].encode("utf-8")
    assert hashlib.sha256(entry).hexdigest() == receipt["entry_hash"]
    fields = json.loads(entry)
    assert fields["index"] == receipt["index"] == receipt["as_of_index"]
    assert fields["actor"] == who.actor
    assert fields["type"] == receipt["type"]
    assert fields["subject"] == receipt["subject"]
    assert response.headers["etag"] == f'"{fields["subject"]["version"]}"'
    assert response.headers["x-ledger-index"] == str(receipt["index"])
    if created and "{index}" in created:  # records with no page of their own
        assert response.headers["location"] == created.format(index=receipt["index"])
    elif created:
        assert response.headers["location"] == f"{created}/{fields['subject']['id']}"
    # The independent verifier: the signed note, then the RFC 9162 proof to its root.
    checkpoint = verify_checkpoint(receipt["checkpoint"], parse_vkey(api.vkey))
    proof = receipt["inclusion_proof"]
    assert checkpoint.size == proof["tree_size"] == receipt["index"] + 1
    hashes = [base64.b64decode(h, validate=True) for h in proof["hashes"]]
    verify_inclusion(hash_leaf(entry), receipt["index"], checkpoint.size, hashes, checkpoint.root)
    return receipt


def poll(api: Api, path: str, until: Callable[[httpx.Response], bool]) -> httpx.Response:
    """GET ``path`` until ``until`` holds (the read models follow the log in the background)."""
    deadline = time.monotonic() + 10
    while True:
        response: httpx.Response = api.client.get(path)
        if until(response):
            return response
        assert time.monotonic() < deadline, (path, response.status_code, response.text)
        time.sleep(0.05)


# 1. a whole process, recorded over HTTP ------------------------------------------------------


def test_a_whole_process_recorded_over_http(store: Store) -> None:
    """Every command of a policy process over HTTP; every receipt verifies independently."""
    with open_api(store) as api:
        assert api.client.get("/public-key").text.strip() == api.vkey
        recorder, publisher, admin = (api.officials[r] for r in ROLES)
        receipts: list[dict[str, Any]] = []

        def write(
            path: str, who: Official, body: Any, created: str | None = None, **headers: str
        ) -> dict[str, Any]:
            response = api.post(path, who, body, headers=headers)
            receipts.append(check_receipt(api, response, who, created=created))
            return receipts[-1]

        process = write("/processes", recorder, {"title": "Data sharing"}, "/processes")
        pid = process["subject"]["id"]
        assert process["type"] == "process.started"
        strand = write(f"/processes/{pid}/strands", recorder, {"strand_id": "r", "title": "R"})
        assert strand["subject"] == {"id": pid, "kind": "process", "version": 2}
        write(
            f"/processes/{pid}/phases",
            recorder,
            {"phase_id": "discovery", "title": "Discovery"},
            **{"If-Match": '"2"'},
        )
        orgs = [
            write("/organisations", recorder, {"name": n, "org_kind": k}, "/organisations")
            for n, k in [("Privacy Group", "civil_society"), ("City Council", "local_authority")]
        ]
        privacy, council = (o["subject"]["id"] for o in orgs)
        member = {"process_id": pid, "group": "r"}
        write(f"/organisations/{privacy}/memberships", recorder, member)
        ended = write(
            f"/organisations/{privacy}/memberships/end", recorder, {**member, "reason": "left"}
        )
        assert ended["type"] == "organisation.membership_ended"
        meeting = write(
            "/meetings",
            recorder,
            {
                "process_id": pid,
                "strand_id": "r",
                "title": "Meeting 1",
                "starts_at": "2026-01-10T10:00:00Z",
                "convenor_org": api.org_id,
            },
            "/meetings",
        )
        mid = meeting["subject"]["id"]
        write(
            f"/meetings/{mid}/held",
            recorder,
            {"attending_orgs": [api.org_id, privacy, council], "held_at": "2026-01-10T10:05:00Z"},
        )
        write(f"/meetings/{mid}/outcomes", recorder, {"items": [{"kind": "action", "text": "Go"}]})
        minutes = b"Minutes of meeting 1.\nAll agreed.\n"
        uploaded = api.post(
            "/documents", recorder, content=minutes, headers={"Content-Type": "text/plain"}
        )
        assert uploaded.status_code == 201, uploaded.text
        minutes_sha = hashlib.sha256(minutes).hexdigest()
        assert uploaded.json() == {
            "sha256": minutes_sha,
            "size": len(minutes),
            "media_type": "text/plain",
            "created": True,
        }
        assert uploaded.headers["location"] == f"/documents/{minutes_sha}"
        # The same bytes again, named differently: stored once, and the answer says what the
        # ledger holds (and will record), not what was sent this time.
        again = api.post(
            "/documents", recorder, content=minutes, headers={"Content-Type": "text/markdown"}
        )
        assert again.status_code == 201, again.text
        assert again.json() == {**uploaded.json(), "created": False}
        agreed = write(f"/meetings/{mid}/minutes", recorder, {"sha256": minutes_sha})
        assert json.loads(agreed["entry"])["data"]["sha256"] == minutes_sha

        proposal = write(
            "/proposals",
            recorder,
            {
                "process_id": pid,
                "strand_id": "r",
                "title": "Research access",
                "sections": [{"id": "s1", "heading": "Purpose", "text": "Allow access."}],
                "sponsor_org": api.org_id,
                "meeting_id": mid,
            },
            "/proposals",
        )
        prop = proposal["subject"]["id"]
        write(
            f"/proposals/{prop}/amendments",
            recorder,
            {
                "base_version": 1,
                "changes": [{"op": "replace", "section_id": "s1", "text": "Allow safe access."}],
                "proposer_org": privacy,
                "meeting_id": mid,
            },
        )
        write(
            f"/proposals/{prop}/amendments/A1/decision",
            recorder,
            {"decision": "agreed", "consensus": "banked", "dissenting_orgs": [council]},
        )
        write(
            f"/proposals/{prop}/revisions", recorder, {"base_version": 1, "amendment_ids": ["A1"]}
        )
        for status in ("discussion", "recommended", "enacted"):
            write(f"/proposals/{prop}/status", recorder, {"new_status": status})
        write(
            f"/proposals/{prop}/legislative-outcomes",
            recorder,
            {"legislation": "Data Act 2026", "provision": "s. 1"},
        )

        # Publications: the publisher uploads the bytes, then records their hash.
        paper = b"%PDF-1.4\n% a policy paper\n" + bytes(range(256))
        paper_sha = hashlib.sha256(paper).hexdigest()
        uploaded = api.post(
            "/documents",
            publisher,
            content=paper,
            headers={"Content-Type": "application/pdf"},
        )
        assert uploaded.status_code == 201, uploaded.text
        publication = {
            "process_id": pid,
            "pub_kind": "policy_paper",
            "title": "Policy paper",
            "sha256": paper_sha,
            "proposal_ids": [prop],
            "meeting_ids": [mid],
        }
        pubs = [
            write(
                "/publications", publisher, {**publication, "title": f"Paper {n}"}, "/publications"
            )
            for n in range(3)
        ]
        data = json.loads(pubs[0]["entry"])["data"]
        assert (data["sha256"], data["size"], data["media_type"]) == (
            paper_sha,
            len(paper),
            "application/pdf",
        )
        first, second, third = (p["subject"]["id"] for p in pubs)
        download = poll(api, f"/publications/{first}/document", lambda r: r.status_code == 200)
        assert download.content == paper
        assert download.headers["etag"] == f'"{paper_sha}"'
        assert download.headers["content-type"] == "application/pdf"
        not_modified = api.client.get(
            f"/publications/{first}/document", headers={"If-None-Match": f'"{paper_sha}"'}
        )
        assert not_modified.status_code == 304
        assert not_modified.content == b""
        for validator in (f'"{"0" * 64}", "{paper_sha}"', f'W/"{paper_sha}"'):
            revalidated = api.client.get(
                f"/publications/{first}/document", headers={"If-None-Match": validator}
            )
            assert revalidated.status_code == 304, validator  # RFC 9110: weak comparison
        changed = api.client.get(
            f"/publications/{first}/document", headers={"If-None-Match": f'"{"0" * 64}"'}
        )
        assert changed.status_code == 200
        assert changed.content == paper
        write(f"/publications/{first}/withdrawal", publisher, {"reason": "published in error"})
        gone = poll(api, f"/publications/{first}/document", lambda r: r.status_code != 200)
        assert "published in error" in problem(gone, 410)["detail"]
        superseded = write(
            f"/publications/{second}/supersession",
            publisher,
            {"superseded_by": third, "reason": "a newer paper"},
        )
        assert superseded["type"] == "publication.superseded"

        correction = write(
            "/corrections",
            admin,
            {
                "corrects_index": process["index"],
                "reason": "the title was misspelt",
                "correction": {"title": "Data sharing (corrected)"},
            },
            "/entries/{index}",
        )
        assert json.loads(correction["entry"])["data"]["corrects_index"] == process["index"]

        # The receipts are the log, in order, and the latest checkpoint covers them all.
        indexes = [r["index"] for r in receipts]
        assert indexes == list(range(indexes[0], indexes[0] + len(receipts)))
        served = api.client.get(f"/entries?start={indexes[0]}")
        assert served.content.split(b"\n")[:-1] == [r["entry"].encode() for r in receipts]
        assert api.size() == indexes[-1] + 1
        # The verifier is not vacuous: one changed byte and the proof no longer reaches.
        last = receipts[-1]
        checkpoint = verify_checkpoint(last["checkpoint"], parse_vkey(api.vkey))
        hashes = [base64.b64decode(h) for h in last["inclusion_proof"]["hashes"]]
        with pytest.raises(ProofError):
            verify_inclusion(
                hash_leaf(last["entry"].encode().replace(b"misspelt", b"misspelT")),
                last["index"],
                checkpoint.size,
                hashes,
                checkpoint.root,
            )


# 2. who may write what -----------------------------------------------------------------------


Request = tuple[str, dict[str, Any]]  # path, keyword arguments for client.post


def _json(path: str, body: dict[str, Any]) -> Request:
    return path, {"json": body}


def _unique() -> str:
    return uuid.uuid4().hex[:12]


class World:
    """Fresh records to act on, made directly on the ledger so every write can succeed."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.app = api.ledger
        self.org = api.org_id
        self.process = self.new_process()
        self.document = self.upload(b"the base document\n")

    def new_process(self) -> str:
        pid = self.app.start_process(title="P", actor=SETUP).subject_id
        self.app.add_strand(pid, strand_id="r", title="R", actor=SETUP)
        return pid

    def upload(self, content: bytes) -> str:
        sha = hashlib.sha256(content).hexdigest()
        # Uploaded by the recorder: a command may name only a document its official may read.
        recorder = self.api.officials["recorder"]
        uploader = (recorder.principal, recorder.org, recorder.token_id)
        self.api.side.put_document(sha, "text/plain", content, uploader=uploader)
        return sha

    def proposal(self) -> str:
        return self.app.table_proposal(
            process_id=self.process,
            strand_id="r",
            title="Proposal",
            sections=[{"id": "s1", "heading": "One", "text": "Text."}],
            sponsor_org=self.org,
            actor=SETUP,
        ).subject_id

    def amended(self, *, agreed: bool = False) -> str:
        prop = self.proposal()
        self.app.propose_amendment(
            prop,
            base_version=1,
            changes=[{"op": "replace", "section_id": "s1", "text": "New text."}],
            proposer_org=self.org,
            actor=SETUP,
        )
        if agreed:
            self.app.decide_amendment(
                prop, amendment_id="A1", decision="agreed", consensus="banked", actor=SETUP
            )
        return prop

    def meeting(self, *, held: bool = False) -> str:
        mid = self.app.schedule_meeting(
            process_id=self.process,
            title="M",
            starts_at="2026-02-01T10:00:00Z",
            convenor_org=self.org,
            actor=SETUP,
        ).subject_id
        if held:
            self.app.record_meeting_held(
                mid, attending_orgs=[self.org], held_at="2026-02-01T10:00:00Z", actor=SETUP
            )
        return mid

    def publication(self) -> str:
        return self.app.publish(
            process_id=self.process,
            pub_kind="report",
            title="Report",
            sha256=self.document,
            size=18,
            media_type="text/plain",
            actor=SETUP,
        ).subject_id

    def embargoed(self, release_at: str = "2020-01-01T00:00:00Z") -> str:
        return self.app.embargo_publication(
            process_id=self.process,
            pub_kind="report",
            title="Embargoed report",
            document=b"the base document\n",
            release_at=release_at,
            actor=SETUP,
        ).subject_id

    def consultation(self, *, closed: bool = False, reviewed: bool = False) -> str:
        cid = self.app.open_consultation(
            process_id=self.process,
            title="C",
            questions=[{"id": "q1", "text": "Q?"}],
            documents=[self.document],
            closes_at="2099-01-01T00:00:00Z",
            actor=SETUP,
        ).subject_id
        if closed or reviewed:
            self.app.close_consultation(cid, actor=SETUP)
        if reviewed:
            self.app.record_consultation_review(
                cid,
                reviewer_org=self.org,
                findings=["F"],
                recommendations=[{"id": "r1", "text": "Do it"}],
                actor=SETUP,
            )
        return cid

    def organisation(self) -> str:
        return self.app.register_organisation(
            name="Org", org_kind="academic", actor=SETUP
        ).subject_id


def _membership_end(w: World) -> Request:
    org, group = w.organisation(), _unique()
    w.app.add_membership(org, process_id=w.process, group=group, actor=SETUP)
    return _json(f"/organisations/{org}/memberships/end", {"process_id": w.process, "group": group})


def _supersession(w: World) -> Request:
    old, new = w.publication(), w.publication()
    return _json(f"/publications/{old}/supersession", {"superseded_by": new})


def _document(w: World) -> Request:
    content = f"document {_unique()}\n".encode()
    return "/documents", {"content": content, "headers": {"Content-Type": "text/plain"}}


RECORD = frozenset({"recorder", "admin"})
PUBLISH = frozenset({"publisher", "admin"})
ADMIN = frozenset({"admin"})
ANYONE = frozenset(ROLES)

# Every write endpoint: (method, path) → who may call it, and a valid request for it.
WRITES: dict[tuple[str, str], tuple[frozenset[str], Callable[[World], Request]]] = {
    ("POST", "/processes"): (RECORD, lambda w: _json("/processes", {"title": "T"})),
    ("POST", "/processes/{process_id}/strands"): (
        RECORD,
        lambda w: _json(f"/processes/{w.new_process()}/strands", {"strand_id": "s", "title": "S"}),
    ),
    ("POST", "/processes/{process_id}/phases"): (
        RECORD,
        lambda w: _json(f"/processes/{w.new_process()}/phases", {"phase_id": "p", "title": "P"}),
    ),
    ("POST", "/organisations"): (
        RECORD,
        lambda w: _json("/organisations", {"name": "O", "org_kind": "business"}),
    ),
    ("POST", "/organisations/{organisation_id}/memberships"): (
        RECORD,
        lambda w: _json(
            f"/organisations/{w.organisation()}/memberships",
            {"process_id": w.process, "group": "g"},
        ),
    ),
    ("POST", "/organisations/{organisation_id}/memberships/end"): (RECORD, _membership_end),
    ("POST", "/proposals"): (
        RECORD,
        lambda w: _json(
            "/proposals",
            {
                "process_id": w.process,
                "strand_id": "r",
                "title": "T",
                "sections": [{"id": "s1", "text": "x"}],
                "sponsor_org": w.org,
            },
        ),
    ),
    ("POST", "/proposals/{proposal_id}/amendments"): (
        RECORD,
        lambda w: _json(
            f"/proposals/{w.proposal()}/amendments",
            {
                "base_version": 1,
                "changes": [
                    {"op": "insert", "section_id": "s2", "after": "s1", "text": "y"},
                    {"op": "delete", "section_id": "s1"},
                ],
                "proposer_org": w.org,
            },
        ),
    ),
    ("POST", "/proposals/{proposal_id}/amendments/{amendment_id}/decision"): (
        RECORD,
        lambda w: _json(
            f"/proposals/{w.amended()}/amendments/A1/decision",
            {"decision": "disagreed", "consensus": "still_to_discuss"},
        ),
    ),
    ("POST", "/proposals/{proposal_id}/revisions"): (
        RECORD,
        lambda w: _json(
            f"/proposals/{w.amended(agreed=True)}/revisions",
            {"base_version": 1, "amendment_ids": ["A1"]},
        ),
    ),
    ("POST", "/proposals/{proposal_id}/status"): (
        RECORD,
        lambda w: _json(f"/proposals/{w.proposal()}/status", {"new_status": "consultation"}),
    ),
    ("POST", "/proposals/{proposal_id}/legislative-outcomes"): (
        RECORD,
        lambda w: _json(
            f"/proposals/{w.proposal()}/legislative-outcomes", {"legislation": "An Act"}
        ),
    ),
    ("POST", "/proposals/{proposal_id}/individual-sponsors"): (
        RECORD,
        lambda w: _json(
            f"/proposals/{w.proposal()}/individual-sponsors",
            {"person_id": str(uuid.uuid4()), "name": "A Sponsor", "role": "Campaigner"},
        ),
    ),
    ("POST", "/meetings"): (
        RECORD,
        lambda w: _json(
            "/meetings",
            {
                "process_id": w.process,
                "title": "M",
                "starts_at": "2026-03-01T09:00:00Z",
                "disclosure": "chatham_house",
                "convenor_org": w.org,
            },
        ),
    ),
    ("POST", "/meetings/{meeting_id}/held"): (
        RECORD,
        lambda w: _json(
            f"/meetings/{w.meeting()}/held",
            {"attending_orgs": [w.org], "held_at": "2026-03-01T09:00:00Z"},
        ),
    ),
    ("POST", "/meetings/{meeting_id}/outcomes"): (
        RECORD,
        lambda w: _json(
            f"/meetings/{w.meeting(held=True)}/outcomes",
            {"items": [{"kind": "option", "text": "Either", "consensus": "options"}]},
        ),
    ),
    ("POST", "/meetings/{meeting_id}/minutes"): (
        RECORD,
        lambda w: _json(f"/meetings/{w.meeting(held=True)}/minutes", {"sha256": w.document}),
    ),
    ("POST", "/publications"): (
        PUBLISH,
        lambda w: _json(
            "/publications",
            {"process_id": w.process, "pub_kind": "report", "title": "R", "sha256": w.document},
        ),
    ),
    ("POST", "/publications/{publication_id}/withdrawal"): (
        PUBLISH,
        lambda w: _json(f"/publications/{w.publication()}/withdrawal", {"reason": "wrong"}),
    ),
    ("POST", "/publications/{publication_id}/supersession"): (PUBLISH, _supersession),
    ("POST", "/publications/embargoed"): (
        PUBLISH,
        lambda w: _json(
            "/publications/embargoed",
            {
                "process_id": w.process,
                "pub_kind": "report",
                "title": "E",
                "sha256": w.document,
                "release_at": "2030-01-01T00:00:00Z",
            },
        ),
    ),
    ("POST", "/publications/{publication_id}/prerelease-access"): (
        PUBLISH,
        lambda w: _json(
            f"/publications/{w.embargoed()}/prerelease-access",
            {"organisation_id": w.org, "authorised_by": "Permanent Secretary", "reason": "brief"},
        ),
    ),
    ("POST", "/publications/{publication_id}/release"): (
        PUBLISH,
        lambda w: _json(f"/publications/{w.embargoed()}/release", {"sha256": w.document}),
    ),
    ("POST", "/corrections"): (
        ADMIN,
        lambda w: _json(
            "/corrections", {"corrects_index": 1, "reason": "typo", "correction": {"name": "X"}}
        ),
    ),
    ("POST", "/tokens"): (
        ADMIN,
        lambda w: _json("/tokens", {"principal": f"p-{_unique()}", "role": "recorder"}),
    ),
    ("POST", "/tokens/{token_id}/revocation"): (
        ADMIN,
        lambda w: _json(
            f"/tokens/{w.api.official('recorder').token_id}/revocation", {"reason": "left"}
        ),
    ),
    ("POST", "/people/{person_id}/erasure"): (
        ADMIN,
        lambda w: _json(
            f"/people/{uuid.uuid4()}/erasure",
            {"legal_basis": "UK GDPR Art. 17", "authorised_by": "Data Protection Officer"},
        ),
    ),
    ("POST", "/documents"): (ANYONE, _document),
    ("POST", "/consultations"): (
        RECORD,
        lambda w: _json(
            "/consultations",
            {
                "process_id": w.process,
                "title": "C",
                "questions": [{"id": "q1", "text": "Q?"}],
                "documents": [w.document],
                "closes_at": "2099-01-01T00:00:00Z",
            },
        ),
    ),
    ("POST", "/consultations/{consultation_id}/responses"): (
        RECORD,
        lambda w: _json(
            f"/consultations/{w.consultation()}/responses",
            {"org_id": w.org, "answers": [{"question_id": "q1", "text": "Yes"}]},
        ),
    ),
    ("POST", "/consultations/{consultation_id}/close"): (
        RECORD,
        lambda w: _json(f"/consultations/{w.consultation()}/close", {}),
    ),
    ("POST", "/consultations/{consultation_id}/review"): (
        RECORD,
        lambda w: _json(
            f"/consultations/{w.consultation(closed=True)}/review",
            {
                "reviewer_org": w.org,
                "findings": ["F"],
                "recommendations": [{"id": "r", "text": "R"}],
            },
        ),
    ),
    ("POST", "/consultations/{consultation_id}/government-response"): (
        RECORD,
        lambda w: _json(
            f"/consultations/{w.consultation(reviewed=True)}/government-response",
            {"recommendation_id": "r1", "response": "accepted", "text": "Agreed"},
        ),
    ),
}
CREATES = {"/processes", "/organisations", "/proposals", "/meetings", "/publications"}
CREATES |= {"/publications/embargoed"}
CREATES |= {"/corrections", "/tokens", "/documents", "/consultations"}
LOCATIONS = {
    "/corrections": "/entries/{index}",
    "/publications/embargoed": "/publications",
}  # no page of their own: the entry


def _walk(routes: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every route, inside included routers and mounts too."""
    for route in routes:
        methods = getattr(route, "methods", None) or set()
        if isinstance(route, APIRoute) or (methods and hasattr(route, "path")):
            for method in methods:
                yield method, prefix + route.path
        included = getattr(route, "original_router", None)  # FastAPI ≥ 0.16x: lazy includes
        if included is not None:
            context = getattr(route, "include_context", None)
            yield from _walk(included.routes, prefix + getattr(context, "prefix", ""))
        elif getattr(route, "routes", None) is not None:  # a Mount
            yield from _walk(route.routes, prefix + getattr(route, "path", ""))


def write_routes(app: Any) -> set[tuple[str, str]]:
    """Every (method, path) of the app that changes something: from the routes themselves,
    and from the OpenAPI document, which must agree."""
    # The officials' workspace (/workspace/...) posts HTML forms authenticated by session and
    # CSRF token, not API writes: its roles and CSRF are tested in tests/workspace.
    routed = {
        (m, p)
        for m, p in _walk(app.routes)
        if m in WRITE_METHODS and not p.startswith("/workspace/")
    }
    documented = {
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method.upper() in WRITE_METHODS
    }
    assert routed == documented, routed ^ documented
    return routed


def test_the_matrix_covers_every_write_endpoint(tmp_path: Path) -> None:
    """A new write endpoint cannot be added without a row in the authorisation matrix."""
    for store in make_store("sqlite", tmp_path):
        app = create_app(store.settings)
        routes = write_routes(app)
        assert routes == set(WRITES), (
            f"untested: {sorted(routes - set(WRITES))}; gone: {sorted(set(WRITES) - routes)}"
        )
        assert len(routes) >= 23


def test_authorisation_matrix(store: Store, tmp_path: Path) -> None:
    """No, bad or revoked token → 401; wrong role → 403; right role → recorded. Refusals
    record nothing."""
    master = tmp_path / "master.key"  # some writes seal personal data
    create_master_key_file(master)
    with open_api(store, master_key_file=master) as api:
        routes = write_routes(api.client.app)
        assert routes == set(WRITES)
        world = World(api)
        real = api.officials["admin"]
        revoked = api.official("admin", "leaver")
        api.ledger.revoke_token(revoked.token_id, reason="left the department", actor=SETUP)
        bad_auth: dict[str, dict[str, str]] = {
            "no Authorization header": {},
            "not a token": {"Authorization": "Bearer not-a-token"},
            "not the Bearer scheme": {"Authorization": f"Basic {real.token}"},
            "well-formed unknown token": {
                "Authorization": f"Bearer olt_{uuid.uuid4().hex}_{'s' * 43}"
            },
            "wrong secret for a real token id": {
                "Authorization": f"Bearer olt_{uuid.UUID(real.token_id).hex}_{'x' * 43}"
            },
            "revoked token": revoked.auth,
        }
        for method, path in sorted(routes):
            allowed, build = WRITES[(method, path)]
            url, kwargs = build(world)
            headers = kwargs.pop("headers", {})
            for case, auth in bad_auth.items():
                before = api.size()
                response = api.client.request(method, url, headers={**headers, **auth}, **kwargs)
                body = unauthorised(response)
                assert api.size() == before, (path, case)
                if case == "revoked token":
                    assert "revoked" in body["detail"], body
            for role in ROLES:
                who = api.officials[role]
                if role not in allowed:
                    before = api.size()
                    response = api.client.request(
                        method, url, headers={**headers, **who.auth}, **kwargs
                    )
                    assert role in problem(response, 403)["detail"]
                    assert api.size() == before, (path, role)
                    continue
                url, kwargs = build(world)  # a fresh record: each allowed write succeeds
                headers = kwargs.pop("headers", {})
                before = api.size()
                response = api.client.request(
                    method, url, headers={**headers, **who.auth}, **kwargs
                )
                assert response.status_code == (201 if path in CREATES else 200), (
                    path,
                    role,
                    response.text,
                )
                if path == "/documents":
                    assert api.size() == before  # stored beside the log, not in it
                    continue
                created = (
                    LOCATIONS.get(path, path) if path in CREATES and path != "/tokens" else None
                )
                receipt = check_receipt(
                    api, response, who, created=created, status=response.status_code
                )
                assert receipt["index"] == before
                assert api.size() == before + 1


# 3. idempotency ------------------------------------------------------------------------------


def test_idempotent_retries_record_once(store: Store) -> None:
    """Same key and body → one entry and the same receipt; another body → 422."""
    with open_api(store) as api:
        recorder = api.officials["recorder"]
        key = {"Idempotency-Key": "retry-me-1"}
        before = api.size()
        first = api.post("/processes", recorder, {"title": "Once"}, headers=key)
        check_receipt(api, first, recorder, created="/processes")
        assert "idempotent-replayed" not in first.headers
        again = api.post("/processes", recorder, {"title": "Once"}, headers=key)
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
        for header in ("etag", "location", "x-ledger-index"):
            assert again.headers[header] == first.headers[header]
        assert api.size() == before + 1

        other = api.post("/processes", recorder, {"title": "Twice?"}, headers=key)
        assert problem(other, 422)["first_index"] == first.json()["index"]
        assert api.size() == before + 1

        # A change (not a creation) replays the same way.
        pid = first.json()["subject"]["id"]
        change = {"Idempotency-Key": "strand-r"}
        strand = api.post(
            f"/processes/{pid}/strands", recorder, {"strand_id": "r", "title": "R"}, headers=change
        )
        check_receipt(api, strand, recorder)
        replay = api.post(
            f"/processes/{pid}/strands", recorder, {"strand_id": "r", "title": "R"}, headers=change
        )
        assert replay.status_code == 200
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.json() == strand.json()
        assert api.size() == before + 2

        # Keys belong to a token: another official may use the same one.
        admin = api.officials["admin"]
        theirs = api.post("/processes", admin, {"title": "Once"}, headers=key)
        check_receipt(api, theirs, admin, created="/processes")
        assert "idempotent-replayed" not in theirs.headers
        assert theirs.json()["index"] == before + 2
        assert api.size() == before + 3

        problem(
            api.post("/processes", recorder, {"title": "x"}, headers={"Idempotency-Key": ""}), 400
        )
        assert api.size() == before + 3

        # A refused write records nothing, not even its key: the corrected retry goes ahead.
        retry = {"Idempotency-Key": "fix-and-retry"}
        missing = f"/processes/{uuid.uuid4()}/strands"
        problem(api.post(missing, recorder, {"strand_id": "r", "title": "R"}, headers=retry), 404)
        dup = api.post(
            f"/processes/{pid}/strands", recorder, {"strand_id": "r", "title": "R"}, headers=retry
        )
        problem(dup, 422)  # strand r exists already: refused by the rules
        fixed = api.post(
            f"/processes/{pid}/strands", recorder, {"strand_id": "q", "title": "Q"}, headers=retry
        )
        check_receipt(api, fixed, recorder)
        assert "idempotent-replayed" not in fixed.headers
        assert api.size() == before + 4


def at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Run ``calls`` on as many threads, released together; their answers in call order."""
    barrier = threading.Barrier(len(calls))
    answers: list[httpx.Response | BaseException | None] = [None] * len(calls)

    def run(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            answers[n] = calls[n]()
        except BaseException as exc:
            answers[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    done = [a for a in answers if isinstance(a, httpx.Response)]
    assert len(done) == len(calls), answers
    return done


def test_the_same_key_from_eight_threads_records_once(store: Store) -> None:
    """Eight simultaneous retries of one write: one entry, eight answers naming it."""
    with open_api(store) as api:
        recorder = api.officials["recorder"]
        before = api.size()

        def send() -> httpx.Response:
            key = {"Idempotency-Key": "race-key"}
            return api.post("/processes", recorder, {"title": "Raced"}, headers=key)

        answers = at_once([send] * 8)
        assert all(a.status_code == 201 for a in answers), [a.text for a in answers]
        assert {a.json()["index"] for a in answers} == {before}
        assert len({a.content for a in answers}) == 1
        assert sum("idempotent-replayed" not in a.headers for a in answers) == 1
        assert api.size() == before + 1
        check_receipt(api, answers[0], recorder, created="/processes")


# 4. optimistic concurrency -------------------------------------------------------------------


def test_if_match_guards_against_stale_versions(store: Store) -> None:
    """A stale If-Match is a 409 naming the current version; the current one proceeds."""
    with open_api(store) as api:
        recorder = api.officials["recorder"]
        created = api.post("/processes", recorder, {"title": "Guarded"})
        assert created.headers["etag"] == '"1"'
        pid = created.json()["subject"]["id"]
        check_receipt(
            api,
            api.post(f"/processes/{pid}/strands", recorder, {"strand_id": "a", "title": "A"}),
            recorder,
        )
        before = api.size()
        stale = api.post(
            f"/processes/{pid}/strands",
            recorder,
            {"strand_id": "b", "title": "B"},
            headers={"If-Match": '"1"'},
        )
        assert problem(stale, 409)["current_version"] == 2
        assert api.size() == before
        current = api.post(
            f"/processes/{pid}/strands",
            recorder,
            {"strand_id": "b", "title": "B"},
            headers={"If-Match": '"2"'},
        )
        check_receipt(api, current, recorder)
        assert current.headers["etag"] == '"3"'
        for malformed in ("three", "W/", '"-1"', '""', '"1", "2"'):
            bad = api.post(
                f"/processes/{pid}/phases",
                recorder,
                {"phase_id": "p", "title": "P"},
                headers={"If-Match": malformed},
            )
            problem(bad, 400)
        assert api.size() == before + 1


def test_racing_writes_without_if_match_are_redecided(store: Store) -> None:
    """Five officials add strands to one process at once: each is decided again on the newer
    state, so all five are recorded, as versions 2 to 6."""
    with open_api(store) as api:
        recorder = api.officials["recorder"]
        pid = api.post("/processes", recorder, {"title": "Busy"}).json()["subject"]["id"]
        before = api.size()

        def strand(n: int) -> Callable[[], httpx.Response]:
            body = {"strand_id": f"s{n}", "title": f"S{n}"}
            return lambda: api.post(f"/processes/{pid}/strands", recorder, body)

        answers = at_once([strand(n) for n in range(5)])
        for answer in answers:
            check_receipt(api, answer, recorder)
        assert sorted(a.json()["subject"]["version"] for a in answers) == [2, 3, 4, 5, 6]
        assert api.size() == before + 5
        # The same strand twice at once: one is recorded, the other refused by the rules.
        twice = at_once([strand(9), strand(9)])
        assert sorted(a.status_code for a in twice) == [200, 422], [a.text for a in twice]
        assert api.size() == before + 6


# 5. errors -----------------------------------------------------------------------------------


def test_bad_requests_are_problems_and_record_nothing(store: Store) -> None:
    """Sizes, media types, unknown fields, bad JSON, bad documents: each a problem, no entry."""
    with open_api(store, max_json_body=4096, max_document=2048) as api:
        recorder, publisher = api.officials["recorder"], api.officials["publisher"]
        pid = api.post("/processes", recorder, {"title": "P"}).json()["subject"]["id"]
        before = api.size()
        auth = recorder.auth

        # 413: declared by Content-Length …
        big = json.dumps({"title": "T", "summary": "x" * 5000}).encode()
        response = api.client.post(
            "/processes", content=big, headers={**auth, "Content-Type": "application/json"}
        )
        assert "4096" in problem(response, 413)["detail"]

        # … or found while the body streams in (no Content-Length).
        def chunks() -> Iterator[bytes]:
            yield b'{"title": "T", "summary": "'
            for _ in range(10):
                yield b"x" * 1000
            yield b'"}'

        response = api.client.post(
            "/processes", content=chunks(), headers={**auth, "Content-Type": "application/json"}
        )
        assert "content-length" not in response.request.headers
        problem(response, 413)
        assert api.size() == before
        small = api.client.post(
            "/processes",
            content=iter([b'{"title": ', b'"streamed"}']),
            headers={**auth, "Content-Type": "application/json"},
        )
        assert "content-length" not in small.request.headers
        check_receipt(api, small, recorder, created="/processes")
        before += 1

        # 415: a JSON write sent as something else.
        for media_type in ("text/plain", "application/x-www-form-urlencoded", ""):
            response = api.client.post(
                "/processes",
                content=b'{"title": "T"}',
                headers={**auth, "Content-Type": media_type},
            )
            problem(response, 415)
        # 422: an unknown field, named.
        response = api.post("/processes", recorder, {"title": "T", "colour": "red"})
        body = problem(response, 422)
        assert "colour" in body["detail"]
        assert any(e["loc"] == ["body", "colour"] for e in body["errors"])
        response = api.post("/processes", recorder, {"summary": "no title"})
        assert "title" in problem(response, 422)["detail"]
        # 400: not JSON at all.
        for malformed in (b'{"title": ', b"[1, 2", b"\xff\xfe"):
            response = api.client.post(
                "/processes",
                content=malformed,
                headers={**auth, "Content-Type": "application/json"},
            )
            problem(response, 400)
        # 422: the domain refuses (a process rule) and a reference that does not exist (404).
        problem(api.post(f"/processes/{pid}/phases", recorder, {"phase_id": "", "title": "P"}), 422)
        problem(
            api.post(
                f"/processes/{uuid.uuid4()}/phases", recorder, {"phase_id": "p", "title": "P"}
            ),
            404,
        )

        # Documents: media type, size, digest; publishing bytes never uploaded.
        response = api.post(
            "/documents",
            publisher,
            content=b"MZ\x90",
            headers={"Content-Type": "application/x-msdownload"},
        )
        problem(response, 415)
        response = api.post(
            "/documents", publisher, content=b"x" * 3000, headers={"Content-Type": "text/plain"}
        )
        assert "2048" in problem(response, 413)["detail"]
        response = api.client.post(
            "/documents",
            content=(b"x" * 1000 for _ in range(3)),
            headers={**publisher.auth, "Content-Type": "text/plain"},
        )
        problem(response, 413)
        content = b"the real bytes\n"
        wrong = hashlib.sha256(b"other bytes").hexdigest()
        response = api.post(
            f"/documents?sha256={wrong}",
            publisher,
            content=content,
            headers={"Content-Type": "text/plain"},
        )
        assert hashlib.sha256(content).hexdigest() in problem(response, 422)["detail"]
        assert api.side.document(hashlib.sha256(content).hexdigest()) is None
        response = api.post(
            "/documents", publisher, content=b"", headers={"Content-Type": "text/plain"}
        )
        problem(response, 422)
        right = api.post(
            f"/documents?sha256={hashlib.sha256(content).hexdigest()}",
            publisher,
            content=content,
            headers={"Content-Type": "text/plain"},
        )
        assert right.status_code == 201
        again = api.post(
            "/documents", publisher, content=content, headers={"Content-Type": "text/plain"}
        )
        assert again.status_code == 201
        assert again.json()["created"] is False
        never = hashlib.sha256(b"never uploaded").hexdigest()
        response = api.post(
            "/publications",
            publisher,
            {"process_id": pid, "pub_kind": "report", "title": "R", "sha256": never},
        )
        assert never in problem(response, 422)["detail"]
        response = api.post(f"/meetings/{uuid.uuid4()}/minutes", recorder, {"sha256": never})
        problem(response, 422)
        assert api.size() == before


def test_each_token_has_its_own_write_budget(store: Store) -> None:
    """Past its burst a token gets 429 with Retry-After; other tokens write on."""
    with open_api(store, write_rate=1.0, write_burst=2) as api:
        recorder, admin = api.officials["recorder"], api.officials["admin"]
        for _ in range(2):
            check_receipt(
                api,
                api.post("/processes", recorder, {"title": "T"}),
                recorder,
                created="/processes",
            )
        before = api.size()
        refused = api.post("/processes", recorder, {"title": "T"})
        problem(refused, 429)
        assert int(refused.headers["retry-after"]) >= 1
        assert api.size() == before
        check_receipt(
            api, api.post("/processes", admin, {"title": "T"}), admin, created="/processes"
        )
        # Reading is not writing: an official's downloads leave the budget alone.
        publisher = api.officials["publisher"]
        sha = hashlib.sha256(b"doc").hexdigest()
        api.side.put_document(sha, "text/plain", b"doc")
        for _ in range(4):
            fetched = api.client.get(f"/documents/{sha}", headers=publisher.auth)
            assert fetched.status_code == 200, fetched.text
            assert fetched.content == b"doc"
        for n in range(2):
            uploaded = api.post(
                "/documents",
                publisher,
                content=b"doc %d" % n,
                headers={"Content-Type": "text/plain"},
            )
            assert uploaded.status_code == 201, uploaded.text
        refused = api.post(
            "/documents", publisher, content=b"doc", headers={"Content-Type": "text/plain"}
        )
        problem(refused, 429)
        assert "retry-after" in refused.headers


# 6. tokens over HTTP -------------------------------------------------------------------------


def test_token_lifecycle_over_http(store: Store) -> None:
    """An admin issues a token that works at once and is never in the log; revoking it bites
    at once."""
    with open_api(store) as api:
        admin = api.officials["admin"]
        issued = api.post(
            "/tokens", admin, {"principal": "new.official", "org": api.org_id, "role": "recorder"}
        )
        receipt = check_receipt(api, issued, admin, status=201)
        token, token_id = receipt["token"], receipt["token_id"]
        assert token_id == receipt["subject"]["id"]
        assert receipt["type"] == "access_token.issued"
        fresh = Official("recorder", "new.official", api.org_id, token, token_id)
        check_receipt(
            api, api.post("/processes", fresh, {"title": "T"}), fresh, created="/processes"
        )

        # Neither the secret nor its hash (nor salt) is in the entry.
        entry = api.client.get(f"/entries/{receipt['index']}").json()["entry"]
        assert entry == receipt["entry"]
        secret = token.split("_", 2)[2]  # olt_<id>_<secret>; the secret may hold "_"
        stored = api.side.token(token_id)
        assert stored is not None
        for value in (token, secret, stored.hash.hex(), stored.salt.hex()):
            assert value not in entry
        for value in (stored.hash, stored.salt):
            assert base64.b64encode(value).decode() not in entry
            assert base64.urlsafe_b64encode(value).decode().rstrip("=") not in entry
        data = json.loads(entry)["data"]
        assert set(data) == {"principal", "org", "role", "note"}
        assert data["principal"] == "new.official"

        revoked = api.post(f"/tokens/{token_id}/revocation", admin, {"reason": "moved on"})
        check_receipt(api, revoked, admin)
        before = api.size()
        body = unauthorised(api.post("/processes", fresh, {"title": "T"}))
        assert str(revoked.json()["index"]) in body["detail"]
        assert api.size() == before
        problem(api.post(f"/tokens/{token_id}/revocation", admin, {"reason": "again"}), 422)
        problem(api.post("/tokens", admin, {"principal": "x", "role": "boss"}), 422)
        assert api.size() == before
