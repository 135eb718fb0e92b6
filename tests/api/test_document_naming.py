"""Commands that name a stored document by its SHA-256 (minutes, publications, consultations)
tell no one whether guessed bytes are stored, and cannot publish an embargoed document's hash
before its release. Both stores, over HTTP."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from tests.api.test_revocation_paths import _sign_in
from tests.api.test_side_trust import SETUP, _embargo, _entries, _Kept, _other_org_recorder
from tests.api.test_writes import Api, Official, check_receipt, open_api, problem
from tests.conftest import Store

_MISSING = "0" * 64


def _held_meeting(api: Api) -> tuple[str, str]:
    """(process id, meeting id) of a meeting that was held (so minutes may be agreed)."""
    pid = api.ledger.start_process(title="Open data plan", actor=SETUP).subject_id
    meeting = api.ledger.schedule_meeting(
        process_id=pid,
        title="Working group",
        starts_at="2026-01-05T10:00:00Z",
        convenor_org=api.org_id,
        actor=SETUP,
    ).subject_id
    api.ledger.record_meeting_held(
        meeting, attending_orgs=[api.org_id], held_at="2026-01-05T10:00:00Z", actor=SETUP
    )
    return pid, meeting


def _commands(api: Api) -> list[tuple[str, str, Any]]:
    """(name, path, body for a SHA-256) of each recorder command that names a document."""
    pid, meeting = _held_meeting(api)
    return [
        ("minutes", f"/meetings/{meeting}/minutes", lambda sha: {"sha256": sha}),
        (
            "consultation",
            "/consultations",
            lambda sha: {
                "process_id": pid,
                "title": "Open data consultation",
                "questions": [{"id": "q1", "text": "Which data first?"}],
                "documents": [sha],
                "closes_at": "2030-01-01T00:00:00Z",
            },
        ),
    ]


def _same_as_missing(api: Api, store: Store, who: Official, path: str, body: Any, sha: str) -> None:
    """Naming ``sha`` answers exactly as naming bytes that were never stored."""
    size = len(_entries(store))
    named = problem(api.post(path, who, body(sha)), 422)
    absent = problem(api.post(path, who, body(_MISSING)), 422)
    assert named["title"] == absent["title"] == "Unknown document", named
    assert named["detail"] == absent["detail"].replace(_MISSING, sha)
    assert named.get("field") == absent.get("field")
    assert len(_entries(store)) == size, "something was recorded"


def test_naming_a_document_one_may_not_read_answers_as_for_one_not_stored(store: Store) -> None:
    """An official who may not read an embargoed document (another organisation, no
    pre-release access) learns nothing by naming its hash in minutes or a consultation: the
    answer is that for bytes never stored, and nothing is recorded (before: minutes naming
    the stored hash were recorded, publishing it)."""
    with open_api(store) as api:
        _pid, sha = _embargo(api, b"the embargoed budget figures\n", api.officials["recorder"])
        outsider = _other_org_recorder(api, "Harbour Town Trust")
        for name, path, body in _commands(api):
            _same_as_missing(api, store, outsider, path, body, sha)
            assert name  # which command, in a failure's traceback
        assert not [e for e in _entries(store) if e["actor"]["id"] == outsider.principal]


def test_an_embargoed_document_is_named_before_release_only_by_publishers_and_admins(
    store: Store,
) -> None:
    """Its uploader and an organisation granted pre-release access may read it, but naming
    it in minutes or a consultation before release is refused (422 "Document under
    embargo", with the field), nothing recorded; a publisher may publish it (they may
    release it). After the release its uploader may name it."""
    with open_api(store) as api:
        uploader = api.officials["recorder"]
        publisher = api.officials["publisher"]
        pid, sha = _embargo(api, b"the embargoed census tables\n", uploader)
        granted = _other_org_recorder(api, "Census Advisory Panel")
        grant = api.post(
            f"/publications/{pid}/prerelease-access",
            publisher,
            {"organisation_id": granted.org, "authorised_by": "Chief Registrar", "reason": "QA"},
        )
        check_receipt(api, grant, publisher)
        assert api.client.get(f"/documents/{sha}", headers=granted.auth).status_code == 200
        commands = _commands(api)
        size = len(_entries(store))
        kept = _Kept()
        logging.getLogger("ledger.embargo").addHandler(kept)
        try:
            for who in (uploader, granted):
                for _name, path, body in commands:
                    refused = problem(api.post(path, who, body(sha)), 422)
                    assert refused["title"] == "Document under embargo", refused
                    assert refused["field"] in ("sha256", "documents[0]"), refused
                    assert any(
                        "named before release" in line and who.principal in line and pid in line
                        for line in kept.lines
                    ), kept.lines
        finally:
            logging.getLogger("ledger.embargo").removeHandler(kept)
        assert len(_entries(store)) == size, "something was recorded"
        released = api.post(f"/publications/{pid}/release", publisher, {"sha256": sha})
        check_receipt(api, released, publisher)
        for _name, path, body in commands:
            answer: httpx.Response = api.post(path, uploader, body(sha))
            assert answer.status_code in (200, 201), answer.text


def test_a_publisher_may_publish_an_embargoed_document(store: Store) -> None:
    """Publishers and admins may release an embargo, so naming its document is theirs to
    do: ``POST /publications`` with its hash is recorded (201)."""
    with open_api(store) as api:
        publisher = api.officials["publisher"]
        pid, sha = _embargo(api, b"the embargoed tariff schedule\n", api.officials["recorder"])
        process = api.ledger.start_process(title="Tariffs", actor=SETUP).subject_id
        answer = api.post(
            "/publications",
            publisher,
            {"process_id": process, "pub_kind": "report", "title": "Tariffs", "sha256": sha},
        )
        check_receipt(api, answer, publisher, created="/publications")
        assert pid


def test_the_workspace_minutes_form_refuses_an_embargoed_document(store: Store) -> None:
    """A recorder uploading an embargoed document's bytes with the minutes form (session
    cookie, CSRF) is refused before release ("under an embargo", nothing recorded) and is
    recorded as its uploader; other bytes are agreed as minutes (201)."""
    with open_api(store) as api:
        api.client.base_url = httpx.URL("https://testserver")  # the session cookie is Secure
        content = b"the embargoed housing survey\n"
        _pid, sha = _embargo(api, content, api.officials["publisher"])
        clerk = _other_org_recorder(api, "Riverside Residents Forum")
        _process, meeting = _held_meeting(api)
        csrf = _sign_in(api.client, clerk.token)

        def minutes(data: bytes) -> httpx.Response:
            return api.client.post(
                "/workspace/forms/agree-minutes",
                data={"csrf": csrf, "record": meeting},
                files={"file": ("minutes.txt", data, "text/plain")},
            )

        size = len(_entries(store))
        refused = minutes(content)
        assert refused.status_code == 422, refused.text
        assert "under an embargo" in refused.text
        assert len(_entries(store)) == size, "something was recorded"
        assert api.side.upload_media_type(sha, clerk.principal, clerk.org) == "text/plain"
        agreed = minutes(b"minutes of the working group\n")
        assert agreed.status_code == 201, agreed.text
        found = [e for e in _entries(store) if e["actor"]["id"] == clerk.principal]
        assert [e["type"] for e in found] == ["meeting.minutes_agreed"]
        assert found[0]["data"]["sha256"] != sha
