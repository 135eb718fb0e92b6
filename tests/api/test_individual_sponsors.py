"""Individual sponsors of a proposal: sealed personal data, end to end over HTTP, on both
backends.

The sponsor's details are sealed in their own ``proposal.individual_sponsor_recorded``
entry (``proposal.tabled`` is untouched); the public answers show only how many individuals
sponsor a proposal; officials read them decrypted; after an admin erases the person they
read as erased, the public count is unchanged, and the independent auditor still passes the
log (bundle exported with ``ledger export --bundle``, checked with ``ledger audit``).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from ledger.keys import create_master_key_file
from tests.api.test_personal_data import _cli, scan_store
from tests.api.test_public_api import wait_for
from tests.api.test_writes import SETUP, open_api, problem
from tests.conftest import Store

NAME = "Vbnmqwe Kjhgfdsa"
ROLE = "Chair of the residents' association"
NEEDLES = [NAME.encode(), b"Vbnmqwe", b"Kjhgfdsa", ROLE.encode()]


def _proposal(api: Any) -> str:
    process = api.ledger.start_process(title="Open data", actor=SETUP).subject_id
    api.ledger.add_strand(process, strand_id="r", title="R", actor=SETUP)
    return str(
        api.ledger.table_proposal(
            process_id=process,
            strand_id="r",
            title="Open the registers",
            sections=[{"id": "s1", "heading": "One", "text": "Text."}],
            sponsor_org=api.org_id,
            actor=SETUP,
        ).subject_id
    )


def _public(api: Any, proposal: str, at: int) -> dict[str, str]:
    answers: dict[str, str] = {}
    for path in (
        f"/proposals/{proposal}",
        "/proposals",
        f"/proposals/{proposal}/history",
        "/exports/proposals.ndjson",
        "/exports/proposals.csv",
    ):
        response = api.client.get(path, params={"as_of": at})
        assert response.status_code == 200, (path, response.text)
        assert NAME not in response.text, path
        assert ROLE not in response.text, path
        answers[path] = response.text
    return answers


def test_individual_sponsors_are_sealed_read_by_officials_and_erased(
    store: Store, tmp_path: Path
) -> None:
    master = tmp_path / "master.key"
    create_master_key_file(master)
    person, other = str(uuid.uuid4()), "ref-000456-sponsor"
    with open_api(store, master_key_file=master) as api:
        admin, recorder = api.officials["admin"], api.officials["recorder"]
        publisher = api.officials["publisher"]
        proposal = _proposal(api)
        path = f"/proposals/{proposal}/individual-sponsors"
        body = {"person_id": person, "name": NAME, "role": ROLE}

        # refusals record nothing: no token, wrong role, a personal id, unknown fields
        before = api.size()
        problem(api.post(path, None, body), 401)
        problem(api.post(path, publisher, body), 403)
        problem(api.post(path, recorder, dict(body, person_id="jane@example.org")), 422)
        problem(api.post(path, recorder, dict(body, email="x@example.org")), 422)
        problem(api.post(f"/proposals/{uuid.uuid4()}/individual-sponsors", recorder, body), 404)
        assert api.size() == before

        response = api.post(path, recorder, body)
        assert response.status_code == 200, response.text
        assert NAME not in response.text
        entry = json.loads(response.json()["entry"])
        assert entry["type"] == "proposal.individual_sponsor_recorded"
        assert entry["subject"]["id"] == proposal
        sealed = entry["data"]["sponsor"]
        assert set(entry["data"]) == {"sponsor"}
        assert set(sealed) == {"person", "key_id", "nonce", "ciphertext"}
        assert sealed["person"] == person
        # the same person twice is refused; a second person is recorded
        problem(api.post(path, recorder, body), 422)
        second = api.post(path, recorder, {"person_id": other, "name": "Second Sponsor"})
        assert second.status_code == 200, second.text
        recorded_index = second.json()["index"]
        wait_for(api.client, recorded_index)

        # public answers: a count only; the plaintext is nowhere in the store
        detail = api.client.get(f"/proposals/{proposal}").json()
        assert detail["individual_sponsors"] == 2
        assert detail["sponsor_org"] == api.org_id
        for public in (f"/web/proposals/{proposal}", f"/entries/{recorded_index}"):
            answer = api.client.get(public)
            assert answer.status_code == 200, (public, answer.text)
            assert NAME not in answer.text, public
        page = api.client.get(f"/web/proposals/{proposal}").text
        assert "and 2 individuals, whose names are personal data and not published" in page
        assert scan_store(store, NEEDLES) == []

        # officials read them decrypted; nobody else can
        for who in (recorder, admin):
            answer = api.client.get(path, headers=who.auth)
            assert answer.status_code == 200, answer.text
            assert answer.headers["cache-control"] == "no-store"
            assert answer.json() == {
                "proposal_id": proposal,
                "individual_sponsors": [
                    {"person": person, "erased": False, "name": NAME, "role": ROLE},
                    {"person": other, "erased": False, "name": "Second Sponsor"},
                ],
            }
        problem(api.client.get(path), 401)
        problem(api.client.get(path, headers=publisher.auth), 403)
        public_before = _public(api, proposal, recorded_index)

        # erasure: the person reads as erased, the other is intact, the count unchanged
        erasure = {"legal_basis": "UK GDPR Art. 17(1)(b)", "authorised_by": "DPO"}
        problem(api.post(f"/people/{person}/erasure", recorder, erasure), 403)
        response = api.post(f"/people/{person}/erasure", admin, erasure)
        assert response.status_code == 200, response.text
        assert json.loads(response.json()["entry"])["data"]["keys_destroyed"] == 1
        erased_index = response.json()["index"]
        sponsors = api.client.get(path, headers=admin.auth).json()["individual_sponsors"]
        assert sponsors[0] == {"person": person, "erased": True}
        assert sponsors[1]["erased"] is False
        wait_for(api.client, erased_index)
        assert api.client.get(f"/proposals/{proposal}").json()["individual_sponsors"] == 2
        assert _public(api, proposal, recorded_index) == public_before
        vkey = api.vkey
    assert scan_store(store, NEEDLES) == []

    # after the erasure the log verifies and the independent auditor passes a bundle of it
    env = {**store.env(), "LEDGER_MASTER_KEY_FILE": str(master)}
    verified = _cli(env, "verify")
    assert verified.returncode == 0, verified.stderr + verified.stdout
    bundle = tmp_path / "log.bundle"
    exported = _cli(env, "export", "--bundle", str(bundle))
    assert exported.returncode == 0, exported.stderr
    audited = _cli(env, "audit", str(bundle), "--key", vkey, "--state", str(tmp_path / "st"))
    assert audited.returncode == 0, audited.stderr + audited.stdout
    assert NAME.encode() not in bundle.read_bytes()
