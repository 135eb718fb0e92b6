"""GET /subjects/{id}/entries: every entry about one record, found from the event rows (not
the read models), each with its inclusion proof to one signed checkpoint; on both stores."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger import merkle
from ledger.application import LedgerApplication
from ledger.checkpoint import Ed25519Verifier, verify_note
from tests.api.test_log_api import Server
from tests.conftest import BACKENDS, Store, make_store
from tests.helpers import Sample, record_sample


@pytest.fixture(params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Store, Sample, Server]]:
    for store in make_store(request.param, tmp_path):
        app = LedgerApplication(store.settings)
        sample = record_sample(app, amendments=4)
        app.close()
        server = Server(store)
        try:
            yield store, sample, server
        finally:
            server.stop()


def _about(sample: Sample, subject: str) -> list[int]:
    return [r.index for r in sample.receipts if json.loads(r.entry)["subject"]["id"] == subject]


def test_lists_every_entry_of_a_record_with_proofs(
    served: tuple[Store, Sample, Server],
) -> None:
    """The answer holds exactly the record's entries, verbatim, each proved to the signed
    checkpoint it names; versions run 1..n."""
    _, sample, server = served
    _, _, vkey = server.get("/public-key")
    body = server.json(f"/subjects/{sample.proposal_id}/entries")
    assert body["subject"] == sample.proposal_id
    size = len(sample.receipts)
    assert body["tree_size"] == size
    checkpoint = verify_note(body["checkpoint"], Ed25519Verifier.from_vkey(vkey.decode().strip()))
    assert checkpoint.size == size
    wanted = _about(sample, sample.proposal_id)
    assert len(wanted) > 4
    assert [e["index"] for e in body["entries"]] == wanted
    assert body["next_after"] is None
    for item in body["entries"]:
        assert item["entry"].encode() == sample.receipts[item["index"]].entry
        proof = [base64.b64decode(h) for h in item["inclusion_proof"]]
        merkle.verify_inclusion(
            merkle.hash_leaf(item["entry"].encode()), item["index"], size, proof, checkpoint.root
        )
    versions = [json.loads(e["entry"])["subject"]["version"] for e in body["entries"]]
    assert versions == list(range(1, len(versions) + 1))


def test_pages_and_older_sizes(served: tuple[Store, Sample, Server]) -> None:
    """``limit``/``after`` page through the list; ``size`` proves to an older checkpoint and
    leaves out what came after it."""
    _, sample, server = served
    wanted = _about(sample, sample.proposal_id)
    first = server.json(f"/subjects/{sample.proposal_id}/entries?limit=2")
    assert [e["index"] for e in first["entries"]] == wanted[:2]
    assert first["next_after"] == wanted[1]
    rest = server.json(f"/subjects/{sample.proposal_id}/entries?after={wanted[1]}")
    assert [e["index"] for e in rest["entries"]] == wanted[2:]
    older = wanted[2] + 1
    past = server.json(f"/subjects/{sample.proposal_id}/entries?size={older}")
    assert past["tree_size"] == older
    assert [e["index"] for e in past["entries"]] == wanted[:3]
    assert (
        verify_note(
            past["checkpoint"],
            Ed25519Verifier.from_vkey(server.get("/public-key")[2].decode().strip()),
        ).size
        == older
    )


def test_comes_from_the_log_not_the_read_models(served: tuple[Store, Sample, Server]) -> None:
    """An insider who deletes the record's timeline rows and its read-model row (SQL) does not
    change the answer."""
    store, sample, server = served
    before = server.json(f"/subjects/{sample.proposal_id}/entries")
    with store.connect() as conn:
        conn.execute(
            store.q("DELETE FROM pv_proposal_timeline WHERE proposal_id = ?"), (sample.proposal_id,)
        )
        conn.execute(store.q("DELETE FROM pv_proposals WHERE id = ?"), (sample.proposal_id,))
    assert server.json(f"/subjects/{sample.proposal_id}/entries") == before


def test_bad_requests_are_problems_naming_the_parameter(
    served: tuple[Store, Sample, Server],
) -> None:
    _, sample, server = served
    status, content_type, body = server.get("/subjects/not-a-uuid/entries")
    assert status == 400
    assert content_type.startswith("application/problem+json")
    problem = json.loads(body)
    assert "subject_id" in problem["detail"]
    status, _, body = server.get(f"/subjects/{sample.proposal_id}/entries?size=100000")
    assert status == 400
    assert "published size" in json.loads(body)["detail"]
    unknown = "00000000-0000-4000-8000-000000000000"
    answer = server.json(f"/subjects/{unknown}/entries")
    assert answer["entries"] == []
    assert answer["next_after"] is None
