"""One exception hierarchy for the whole ledger.

LedgerError
├── InvalidInputError          bad arguments; nothing was recorded
│   ├── EncodingError          a value that has no canonical entry form
│   └── EntryTooLargeError     an entry over the 65,535-byte limit
├── NotFoundError              an unknown process, proposal, meeting, organisation …
├── ConflictError              the request raced or acted on stale state (HTTP 409)
│   ├── StaleVersionError      acted on a version that is no longer current
│   └── ConcurrentWriteError   another writer changed the same aggregate first
├── RuleViolationError         the domain forbids it (decided twice, meeting not held …)
│   └── AttributionError       names an organisation at a meeting that attributes no one
└── StorageError               the database is missing, unreadable or not migrated
"""

from __future__ import annotations

__all__ = [
    "AttributionError",
    "ConcurrentWriteError",
    "ConflictError",
    "DamagedLogError",
    "EncodingError",
    "EntryTooLargeError",
    "InvalidInputError",
    "LedgerError",
    "NotFoundError",
    "RuleViolationError",
    "StaleVersionError",
    "StorageError",
]


class LedgerError(Exception):
    """Base class of every error the ledger raises on purpose."""


class InvalidInputError(LedgerError, ValueError):
    """The arguments of a command are malformed; nothing was recorded."""


class EncodingError(InvalidInputError):
    """A value cannot be written in the canonical entry encoding."""


class EntryTooLargeError(InvalidInputError):
    """An entry would exceed the maximum entry size."""


class NotFoundError(LedgerError, LookupError):
    """A referenced object does not exist in the ledger."""


class ConflictError(LedgerError):
    """The command raced another writer or acted on stale state."""


class StaleVersionError(ConflictError):
    """The command named a version that is no longer the current one."""

    def __init__(self, message: str, *, current_version: int) -> None:
        super().__init__(message)
        self.current_version = current_version


class ConcurrentWriteError(ConflictError):
    """Another writer recorded an event for the same aggregate first."""

    def __init__(self, message: str, *, current_version: int | None = None) -> None:
        super().__init__(message)
        self.current_version = current_version  # the record's version now, when known


class RuleViolationError(LedgerError):
    """The command breaks a rule of the policy process."""


class AttributionError(RuleViolationError):
    """A command links to a non-attributed, Chatham House or private meeting and names an
    organisation there (a proposer, a dissenter, an organisation in an outcome). ``field``
    is the argument that names it, like ``proposer_org`` or ``items[0].orgs``."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class StorageError(LedgerError):
    """The store cannot be opened, read or written."""


class DamagedLogError(LedgerError, LookupError):
    """The stored log contradicts itself (a missing tree hash, say): someone changed the
    database. Nothing can be served from it as proof; `ledger verify` says where."""
