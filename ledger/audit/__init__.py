"""The independent auditor: verify an Open Policy Ledger log from the outside.

This package imports nothing from the rest of the service: only the standard library and
``cryptography`` (for Ed25519). Read it next to ``docs/VERIFYING.md``, which states the
same rules in prose; together they are everything needed to check the log.

* :mod:`ledger.audit.merkle`: RFC 9162 hashes, proof verification, compact ranges;
* :mod:`ledger.audit.note`: signed notes, checkpoints, verifier keys, cosignatures;
* :mod:`ledger.audit.sources`: the log over HTTP, from a bundle file, or from a static
  C2SP tlog-tiles tree (a directory or URL);
* :mod:`ledger.audit.auditor`: the audit itself and its state file.

Every failure is an :class:`AuditError` whose message says what and where::

    AuditError
    ├── NoteError           signed note, checkpoint, verifier key or cosignatures bad;
    │                       a note not signed by the log's key (checked before any
    │                       comparison with the state: never reported as rollback/fork)
    ├── ProofError          a Merkle proof is malformed or does not verify
    ├── ConsistencyError    not an extension of the trusted checkpoint (rollback, fork,
    │                       failed consistency proof, changed origin)
    ├── EntryError          an entry is malformed, has the wrong index or a broken prev
    │                       (``.index`` names it)
    ├── RootMismatchError   the entries do not hash to the root the log signed
    ├── SourceError         HTTP error, time-out, non-UTF-8, wrong counts, or an answer over
    │                       its size limit or nested deeper than 64 levels
    │   └── BundleError     a bundle file is missing, truncated or malformed
    └── StateError          the state file is malformed, unreadable or not writable, or
                            trusts another origin than the one pinned
"""

from __future__ import annotations

from ledger.audit.auditor import (
    STATE_FORMAT,
    Auditor,
    AuditResult,
    AuditState,
    Progress,
    audit,
    check_entry,
)
from ledger.audit.errors import (
    AuditError,
    BundleError,
    ConsistencyError,
    EntryError,
    NoteError,
    ProofError,
    RootMismatchError,
    SourceError,
    StateError,
)
from ledger.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    hash_children,
    hash_leaf,
    verify_consistency,
    verify_inclusion,
)
from ledger.audit.note import (
    Checkpoint,
    NoteSignature,
    VerifierKey,
    parse_checkpoint,
    parse_note,
    parse_vkey,
    verify_checkpoint,
    verify_cosignatures,
)
from ledger.audit.sources import (
    BUNDLE_FORMAT,
    TILE_WIDTH,
    BundleSource,
    HttpSource,
    Source,
    TileId,
    TilesSource,
    encode_bundle,
    parse_bundle,
    parse_tile_path,
    source_for,
    tile_path,
    tile_width,
    write_bundle,
)

__all__ = [
    "BUNDLE_FORMAT",
    "EMPTY_ROOT",
    "STATE_FORMAT",
    "TILE_WIDTH",
    "AuditError",
    "AuditResult",
    "AuditState",
    "Auditor",
    "BundleError",
    "BundleSource",
    "Checkpoint",
    "CompactRange",
    "ConsistencyError",
    "EntryError",
    "HttpSource",
    "NoteError",
    "NoteSignature",
    "Progress",
    "ProofError",
    "RootMismatchError",
    "Source",
    "SourceError",
    "StateError",
    "TileId",
    "TilesSource",
    "VerifierKey",
    "audit",
    "check_entry",
    "encode_bundle",
    "hash_children",
    "hash_leaf",
    "parse_bundle",
    "parse_checkpoint",
    "parse_note",
    "parse_tile_path",
    "parse_vkey",
    "source_for",
    "tile_path",
    "tile_width",
    "verify_checkpoint",
    "verify_consistency",
    "verify_cosignatures",
    "verify_inclusion",
    "write_bundle",
]
