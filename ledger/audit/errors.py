"""The auditor's exceptions: one tree under AuditError (drawn in ``ledger/audit/__init__``)."""

from __future__ import annotations

__all__ = [
    "AuditError",
    "BundleError",
    "ConsistencyError",
    "EntryError",
    "NoteError",
    "ProofError",
    "RootMismatchError",
    "SourceError",
    "StateError",
]


class AuditError(Exception):
    """Base class of every failure the auditor reports; the message says what and where."""


class NoteError(AuditError):
    """The signed note, checkpoint body, verifier key or cosignatures are bad or unverified."""


class ProofError(AuditError):
    """A Merkle inclusion or consistency proof is malformed or does not verify."""


class ConsistencyError(AuditError):
    """The new checkpoint is not an append-only extension of the trusted one.

    Rollback (smaller size), a different root at the same size, a consistency proof that
    does not verify, or a changed origin: evidence of a fork or a rewritten log.
    """


class EntryError(AuditError):
    """An entry is malformed or breaks the chain; ``index`` is its position in the log."""

    def __init__(self, index: int, message: str) -> None:
        """Record the failing index and prefix the message with it."""
        super().__init__(f"entry {index}: {message}")
        self.index = index


class RootMismatchError(AuditError):
    """The entries served do not hash to the root the log signed."""


class SourceError(AuditError):
    """The source failed: HTTP error, time-out, non-UTF-8, wrong counts, bad JSON."""


class BundleError(SourceError):
    """A bundle file is missing, truncated or malformed."""


class StateError(AuditError):
    """The auditor's state file is malformed, unreadable or cannot be written."""
