"""The fast checkpoint publisher writes exactly what the general signed-note code writes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ledger.checkpoint import Checkpoint, Ed25519Signer, sign_note, verify_note
from ledger.keys import CheckpointPublisher


@given(size=st.integers(0, 2**40), root=st.binary(min_size=32, max_size=32))
def test_publisher_matches_sign_note(size: int, root: bytes) -> None:
    """For any size and root, the publisher's note equals sign_note's and verifies."""
    signer = Ed25519Signer.from_private_bytes("ledger.example/log", bytes(range(32)))
    note = CheckpointPublisher("ledger.example/log", signer)(size, root)
    assert note == sign_note(Checkpoint("ledger.example/log", size, root).body(), [signer])
    assert verify_note(note, signer.verifier()) == Checkpoint("ledger.example/log", size, root)
