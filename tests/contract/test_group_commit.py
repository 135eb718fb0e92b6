"""Group commit on both stores: concurrent commands share transactions, each keeps its own
entry, receipt and proof; a bad command in a batch costs only itself."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from ledger.actors import Actor
from ledger.application import LedgerApplication, Receipt
from ledger.audit.note import parse_vkey, verify_checkpoint
from ledger.errors import ConcurrentWriteError, LedgerError
from ledger.merkle import hash_leaf, verify_inclusion
from ledger.storage import open_reader
from ledger.verify import verify_log
from tests.conftest import Store

ADMIN = Actor("setup", "admin", "")


def _in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run work(0..count-1) in threads released together; results (or exceptions) in order."""
    results: list[Any] = [None] * count
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except LedgerError as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def _check_receipt(receipt: Receipt, vkey: str) -> None:
    checkpoint = verify_checkpoint(receipt.checkpoint, parse_vkey(vkey))
    assert checkpoint.size == receipt.tree_size
    verify_inclusion(
        hash_leaf(receipt.entry),
        receipt.index,
        receipt.tree_size,
        receipt.inclusion,
        checkpoint.root,
    )


def test_concurrent_commands_share_transactions(store: Store) -> None:
    """32 threads registering organisations: fewer transactions than commands, every receipt
    proves its own entry in its own checkpoint, and the log verifies."""
    app = LedgerApplication(store.settings)
    try:
        app.start_process(title="Process", actor=ADMIN)
        for _ in range(3):
            receipts = _in_threads(
                32,
                lambda i: app.register_organisation(
                    name=f"Organisation {i}", org_kind="civil_society", actor=ADMIN
                ),
            )
            assert all(isinstance(r, Receipt) for r in receipts), receipts
        assert app._committer.largest > 1, "no two commands ever shared a transaction"
        assert app._committer.batches < 1 + 3 * 32
        vkey = app.signer.verifier_key()
        indexes = sorted(r.index for r in receipts)
        assert len(set(indexes)) == 32
        for receipt in receipts:
            _check_receipt(receipt, vkey)
            assert receipt.tree_size > receipt.index
    finally:
        app.close()
    reader = open_reader(store.settings)
    try:
        report = verify_log(reader)
    finally:
        reader.close()
    assert report.ok, report.damage
    assert report.size == 1 + 3 * 32


def test_same_record_never_shares_a_batch(store: Store) -> None:
    """Concurrent strands on one process: each command either lands or is refused as a
    concurrent write; none corrupts the batch of the others, and versions stay dense."""
    app = LedgerApplication(store.settings)
    try:
        process = app.start_process(title="Process", actor=ADMIN).subject_id
        results = _in_threads(
            16,
            lambda i: app.add_strand(process, strand_id=f"s{i}", title=f"Strand {i}", actor=ADMIN),
        )
        landed = [r for r in results if isinstance(r, Receipt)]
        refused = [r for r in results if not isinstance(r, Receipt)]
        assert landed, results
        assert all(isinstance(r, ConcurrentWriteError) for r in refused), refused
        strands = app.get_process(process).strands
        assert len(strands) == len(landed)
        versions = sorted(r.fields["subject"]["version"] for r in landed)
        assert versions == list(range(2, 2 + len(landed)))
    finally:
        app.close()


def test_a_failing_command_costs_only_itself(store: Store) -> None:
    """Two commands with the same idempotency key in one burst: one lands, the other is a
    conflict; the other commands of the burst all land."""
    app = LedgerApplication(store.settings)
    try:
        app.start_process(title="Process", actor=ADMIN)

        def work(i: int) -> Receipt:
            key = "same-key" if i < 2 else f"key-{i}"
            with app.idempotent("tester", key, f"fingerprint-{i}"):
                return app.register_organisation(
                    name=f"Org {i}", org_kind="department", actor=ADMIN
                )

        results = _in_threads(12, work)
        first_two = results[:2]
        assert sum(isinstance(r, Receipt) for r in first_two) == 1, first_two
        assert sum(isinstance(r, ConcurrentWriteError) for r in first_two) == 1, first_two
        assert all(isinstance(r, Receipt) for r in results[2:]), results
    finally:
        app.close()


@pytest.mark.parametrize("max_batch", [1, 3])
def test_batch_limit_is_honoured(store: Store, max_batch: int) -> None:
    settings = store.settings.model_copy(update={"group_commit_max": max_batch})
    app = LedgerApplication(settings)
    try:
        app.start_process(title="Process", actor=ADMIN)
        results = _in_threads(
            12,
            lambda i: app.register_organisation(name=f"O{i}", org_kind="department", actor=ADMIN),
        )
        assert all(isinstance(r, Receipt) for r in results)
        assert app._committer.largest <= max_batch
    finally:
        app.close()
