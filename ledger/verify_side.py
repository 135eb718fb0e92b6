"""``ledger verify`` beside the log: the tables the service reads are what the log says.

Each check compares side rows with the entries they belong to, both read in one snapshot
(``ledger.storage.beside``), both ways where the log implies a row:

* tokens: each row is its ``access_token.issued`` entry (token id, holder, organisation,
  role); each such entry has its row;
* revocations: each row is an ``access_token.revoked`` entry of that token; each such entry
  has its row (a deleted row would revive the token);
* documents: each stored document's bytes hash to the name they are stored under, and have
  the recorded size;
* writes after revocations (from the log alone): each entry by a token's holder comes
  while one of their tokens is unrevoked (a row deleted, a write, the row put back);
* idempotency keys: each row points at an entry of the same transaction (its tree size is
  the checkpoint that sealed it), written by the token's holder in the token's role and
  organisation (and of the recorded type and subject, where the row records them);
* salts: each embargo salt opens its ``publication.embargoed`` commitment over the stored
  document (and is the salt its release revealed); each attendance salt opens its commitment
  in the ``meeting.held_in_confidence`` entry; every such commitment has its salt.

Memory stays flat: rows and entries stream in chunks; findings are capped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from ledger.chain import DamageKind
from ledger.commitments import attendance_commitment, matches
from ledger.encoding import canonical
from ledger.errors import StorageError
from ledger.storage import LogReader
from ledger.storage.base import (
    ATTENDANCE_SALTS_TABLE,
    DOCUMENTS_TABLE,
    EMBARGO_SALTS_TABLE,
    ENTRIES_TABLE,
    IDEMPOTENCY_TABLE,
    IMPORTS_TABLE,
    PERSON_KEYS_TABLE,
    REVOCATIONS_TABLE,
    TOKENS_TABLE,
)
from ledger.storage.beside import BesideReader

__all__ = ["MAX_FINDINGS", "BesideReport", "Finding", "Lag", "verify_side"]

MAX_FINDINGS = 100  # reported in full; beyond this only counted


@dataclass(frozen=True, slots=True)
class Finding:
    """One damaged row beside the log: what is wrong, where, and the entry it rests on."""

    kind: DamageKind
    table: str
    row: str  # the row's key, e.g. "token_id=…"
    detail: str
    index: int | None = None  # the entry the row derives from, when known
    view: str | None = None  # the read model, for read-model tables

    def __str__(self) -> str:
        where = f"view {self.view}, " if self.view else ""
        at = f" (entry {self.index})" if self.index is not None else ""
        return f"{self.kind.value}: {where}table {self.table}, row {self.row}{at}: {self.detail}"

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "view": self.view,
            "table": self.table,
            "row": self.row,
            "index": self.index,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Lag:
    """A read model behind the log: no damage (the service brings it up to date), but what
    its pages show is older than the log."""

    view: str
    position: int  # entries it has applied
    size: int  # entries in the log, in the same snapshot

    def __str__(self) -> str:
        return (
            f"view {self.view} is at position {self.position} of {self.size}; the service "
            "brings it up to date; rebuilt and compared at its own position"
        )

    def as_json(self) -> dict[str, Any]:
        return {"view": self.view, "position": self.position, "log_size": self.size,
                "note": str(self)}  # fmt: skip


@dataclass(slots=True)
class BesideReport:
    """What the checks beside the log found."""

    findings: list[Finding] = field(default_factory=list)
    total: int = 0  # findings, including those beyond MAX_FINDINGS
    checked: list[str] = field(default_factory=list)  # the tables / views compared
    not_built: list[str] = field(default_factory=list)  # read models never built here
    lagging: list[Lag] = field(default_factory=list)  # read models behind the log (no damage)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.total == 0

    def add(self, finding: Finding) -> None:
        self.total += 1
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(finding)

    def extend(self, other: BesideReport) -> None:
        for finding in other.findings:
            self.add(finding)
        self.total += other.total - len(other.findings)
        self.checked += other.checked
        self.not_built += other.not_built
        self.lagging += other.lagging
        self.seconds += other.seconds


def _parse(raw: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = orjson.loads(raw)
    return parsed


def _id(value: Any) -> str:
    """An id as entries name it (SQLite side rows keep the same hyphenated text)."""
    return str(value).lower()


def _issued_facts(entry: dict[str, Any]) -> dict[str, str]:
    data = entry["data"]
    return {
        "token_id": _id(entry["subject"]["id"]),
        "principal": str(data.get("principal")),
        "org": str(data.get("org")),
        "role": str(data.get("role")),
    }


def _entries_for(
    side: BesideReader, chunk: list[tuple[Any, ...]], position: int
) -> dict[int, dict[str, Any]]:
    found = side.entries_at([int(row[position]) for row in chunk])
    return {idx: _parse(raw) for idx, raw in found.items()}


def _not_about(entry: dict[str, Any] | None, entry_type: str, token_id: str) -> str | None:
    """None if ``entry`` is a ``entry_type`` entry about ``token_id``; else what it is."""
    if entry is None:
        return "no entry"
    if entry["type"] != entry_type or _id(entry["subject"]["id"]) != _id(token_id):
        return f"a {entry['type']} entry"
    return None


def _check_tokens(side: BesideReader, report: BesideReport) -> dict[str, dict[str, str]]:
    """Token rows vs ``access_token.issued`` entries; returns each logged token's facts."""
    logged: dict[str, dict[str, str]] = {}
    columns = ("token_id", "principal", "org", "role", "idx")
    for chunk in side.rows(TOKENS_TABLE, columns, ("idx", "token_id")):
        entries = _entries_for(side, chunk, 4)
        for token_id, principal, org, role, idx in chunk:
            key = f"token_id={token_id}"
            entry = entries.get(int(idx))
            what = _not_about(entry, "access_token.issued", token_id)
            if entry is None or what is not None:
                report.add(
                    Finding(
                        DamageKind.TOKEN_UNLOGGED,
                        TOKENS_TABLE,
                        key,
                        f"the row names entry {idx}, which is {what}, not this token's issue; "
                        f"the row gives {principal!r} the role {role!r}",
                        int(idx),
                    )
                )
                continue
            facts = _issued_facts(entry)
            stored = {"principal": str(principal), "org": str(org), "role": str(role)}
            for name, value in stored.items():
                if value != facts[name]:
                    report.add(
                        Finding(
                            DamageKind.TOKEN_MISMATCH,
                            TOKENS_TABLE,
                            key,
                            f"{name} is {value!r}, its entry says {facts[name]!r}",
                            int(idx),
                        )
                    )
    for logged_chunk in side.entries_of_types(["access_token.issued"]):
        parsed = [(idx, _parse(raw)) for idx, raw in logged_chunk]
        ids = [_id(e["subject"]["id"]) for _, e in parsed]
        rows = {_id(r[0]): int(r[1]) for r in side.lookup(TOKENS_TABLE, ("token_id", "idx"),
                                                           "token_id", ids)}  # fmt: skip
        for idx, entry in parsed:
            facts = _issued_facts(entry)
            logged[facts["token_id"]] = facts
            at = rows.get(facts["token_id"])
            if at is None:
                report.add(
                    Finding(
                        DamageKind.TOKEN_MISSING,
                        TOKENS_TABLE,
                        f"token_id={facts['token_id']}",
                        "the token was issued by this entry but its row is gone",
                        idx,
                    )
                )
            elif at != idx:
                report.add(
                    Finding(
                        DamageKind.TOKEN_MISMATCH,
                        TOKENS_TABLE,
                        f"token_id={facts['token_id']}",
                        f"idx is {at}, the token was issued at entry {idx}",
                        idx,
                    )
                )
    report.checked.append(TOKENS_TABLE)
    return logged


def _check_revocations(side: BesideReader, report: BesideReport) -> None:
    for chunk in side.rows(REVOCATIONS_TABLE, ("token_id", "idx"), ("idx", "token_id")):
        entries = _entries_for(side, chunk, 1)
        for token_id, idx in chunk:
            entry = entries.get(int(idx))
            what = _not_about(entry, "access_token.revoked", token_id)
            if what is not None:
                report.add(
                    Finding(
                        DamageKind.REVOCATION_UNLOGGED,
                        REVOCATIONS_TABLE,
                        f"token_id={token_id}",
                        f"the row names entry {idx}, which is {what}, not this token's revocation",
                        int(idx),
                    )
                )
    for logged_chunk in side.entries_of_types(["access_token.revoked"]):
        parsed = [(idx, _id(_parse(raw)["subject"]["id"])) for idx, raw in logged_chunk]
        rows = {
            _id(r[0]): int(r[1])
            for r in side.lookup(
                REVOCATIONS_TABLE, ("token_id", "idx"), "token_id", [t for _, t in parsed]
            )
        }
        for idx, token_id in parsed:
            if rows.get(token_id) != idx:
                report.add(
                    Finding(
                        DamageKind.REVOCATION_MISSING,
                        REVOCATIONS_TABLE,
                        f"token_id={token_id}",
                        "the token was revoked by this entry but its revocation row is "
                        + ("gone: the token works again" if token_id not in rows else
                           f"at entry {rows[token_id]}"),
                        idx,
                    )
                )  # fmt: skip
    report.checked.append(REVOCATIONS_TABLE)


ActorKey = tuple[str, str, str]  # (id, role, org), as entries name their actor


def _check_writes_after_revocation(side: BesideReader, report: BesideReport) -> None:
    """From the log alone: every entry by the holder of a token issued in the log (same id,
    role and organisation) must come while one of their tokens issued before it is not yet
    revoked. Actors who never had a token (``ledger record --actor``) are not concerned; the
    holders of a revoked token are few, so only their entries past the first revocation are
    streamed (filtered by their actor's bytes in the database), and a dict of token states
    is all that is kept."""

    tokens: dict[str, tuple[ActorKey, int]] = {}  # token id -> (holder, issuing index)
    revoked: dict[str, int] = {}  # token id -> the index of its first revocation entry
    for chunk in side.entries_of_types(["access_token.issued", "access_token.revoked"]):
        for idx, raw in chunk:
            entry = _parse(raw)
            token_id = _id(entry["subject"]["id"])
            if entry["type"] == "access_token.issued":
                facts = _issued_facts(entry)
                tokens.setdefault(
                    token_id, ((facts["principal"], facts["role"], facts["org"]), idx)
                )
            else:
                revoked.setdefault(token_id, idx)
    held: dict[ActorKey, list[tuple[int, int | None, str]]] = {}
    for token_id, (actor, issued) in tokens.items():
        held.setdefault(actor, []).append((issued, revoked.get(token_id), token_id))
    concerned = {a: spans for a, spans in held.items() if any(r is not None for _, r, _ in spans)}
    if concerned:
        first = min(r for spans in concerned.values() for _, r, _ in spans if r is not None)
        # A verified entry is canonical JSON, so it begins with its actor ("actor" sorts
        # first of its keys): the database compares each entry's first bytes.
        starts = [
            b'{"actor":' + canonical({"id": a[0], "org": a[2], "role": a[1]}) + b","
            for a in concerned
        ]
        for chunk in side.entries_starting_with(starts, first):
            for idx, raw in chunk:
                who = _parse(raw).get("actor") or {}
                key = (str(who.get("id")), str(who.get("role")), str(who.get("org")))
                before = [s for s in concerned.get(key, []) if s[0] < idx]
                if not before or any(r is None or r >= idx for _, r, _ in before):
                    continue  # no token yet (not a token's write), or one still valid
                issued, last, token_id = max(before, key=lambda s: s[1] or -1)
                report.add(
                    Finding(
                        DamageKind.WRITE_AFTER_REVOCATION,
                        ENTRIES_TABLE,
                        f"idx={idx}",
                        f"entry {idx} is by {key[0]!r} as {key[1]!r} of {key[2]!r}, whose "
                        f"token{'s' if len(before) > 1 else ''} issued before it "
                        f"{'were all' if len(before) > 1 else 'was'} revoked (token "
                        f"{token_id}, issued at entry {issued}, revoked by entry {last})",
                        idx,
                    )
                )
    report.checked.append(ENTRIES_TABLE)


def _check_documents(side: BesideReader, report: BesideReport) -> None:
    for name, size, digest, length in side.documents():
        if digest != name or length != size:
            report.add(
                Finding(
                    DamageKind.DOCUMENT_MISMATCH,
                    DOCUMENTS_TABLE,
                    f"sha256={name}",
                    f"the stored bytes ({length} bytes) hash to {digest}"
                    + (f", and the recorded size is {size}" if length != size else ""),
                )
            )
    report.checked.append(DOCUMENTS_TABLE)


_IDEMPOTENCY_FACTS = {"type": "type", "entry_type": "type", "subject_id": "subject"}


def _check_idempotency(
    side: BesideReader, report: BesideReport, tokens: dict[str, dict[str, str]]
) -> None:
    have = side.columns(IDEMPOTENCY_TABLE)
    extra = [c for c in _IDEMPOTENCY_FACTS if c in have]
    columns = ("principal", "key", "idx", "tree_size", *extra)
    for chunk in side.rows(IDEMPOTENCY_TABLE, columns, ("idx", "principal", "key")):
        entries = _entries_for(side, chunk, 2)
        sealing = side.sealing_sizes([int(row[2]) for row in chunk])
        for row in chunk:
            principal, key, idx, tree_size = row[:4]
            where = f"principal={principal}, key={key!r}"
            entry = entries.get(int(idx))

            def bad(detail: str, *, where: str = where, idx: int = int(idx)) -> None:
                report.add(
                    Finding(DamageKind.IDEMPOTENCY_MISMATCH, IDEMPOTENCY_TABLE, where, detail, idx)
                )

            if entry is None:
                bad(f"it points at entry {idx}, which does not exist")
                continue
            sealed = sealing.get(int(idx))
            if sealed is not None and sealed != int(tree_size):
                bad(
                    f"its tree size is {tree_size}, but entry {idx} was sealed in the "
                    f"transaction of tree size {sealed}"
                )
                continue
            token = tokens.get(_id(principal))
            actor = entry.get("actor") or {}
            if token is None:
                bad(f"its principal is no token issued in the log (entry {idx} is by "
                    f"{actor.get('id')!r})")  # fmt: skip
                continue
            want = {"id": token["principal"], "org": token["org"], "role": token["role"]}
            got = {name: str(actor.get(name)) for name in want}
            if got != want:
                bad(
                    f"entry {idx} ({entry['type']}) is by {got['id']!r} as {got['role']!r} of "
                    f"{got['org']!r}; the row's token is held by {want['id']!r} as "
                    f"{want['role']!r} of {want['org']!r}"
                )
                continue
            for name, value in zip(extra, row[4:], strict=True):
                said = (
                    entry["type"] if _IDEMPOTENCY_FACTS[name] == "type" else entry["subject"]["id"]
                )
                if value is not None and _id(value) != _id(said):
                    bad(f"its {name} is {value!r}, entry {idx} has {said!r}")
    report.checked.append(IDEMPOTENCY_TABLE)


def _check_imports(side: BesideReader, report: BesideReport) -> None:
    """Each committed batch of a bulk import left a row naming its last entry and tree size
    (a resumed import starts after its lines): the entry must be the last of the
    transaction of that size, and the lines must have grown by at least its entries (blank
    lines record nothing)."""
    before: dict[str, int] = {}  # lines done by the import's previous batch, per import
    for chunk in side.rows(IMPORTS_TABLE, ("name", "lines", "idx", "tree_size"), ("name", "lines")):
        indexes = [int(row[2]) for row in chunk]
        present = side.entries_at(indexes)
        sealing = side.sealing_sizes(indexes)
        starts = side.batch_starts(indexes)
        for name, lines, idx, tree_size in chunk:
            where = f"name={name!r}, lines={lines}"
            done = before.get(str(name), 0)
            before[str(name)] = int(lines)
            detail = None
            if int(idx) not in present:
                detail = f"it names entry {idx}, which does not exist"
            elif sealing.get(int(idx)) != int(tree_size) or int(tree_size) != int(idx) + 1:
                detail = (
                    f"entry {idx} is not the last of a transaction of tree size {tree_size} "
                    f"(its transaction made size {sealing.get(int(idx))})"
                )
            elif int(lines) - done < int(tree_size) - starts[int(idx)]:
                detail = (
                    f"{int(tree_size) - starts[int(idx)]} entries were recorded by this batch "
                    f"but the lines grew by {int(lines) - done}: a resumed import would record "
                    "lines again"
                )
            if detail is not None:
                report.add(Finding(DamageKind.IMPORT_MISMATCH, IMPORTS_TABLE, where, detail,
                                   int(idx)))  # fmt: skip
    report.checked.append(IMPORTS_TABLE)


_SEALING = ["meeting.held_with_people", "proposal.individual_sponsor_recorded",
            "consultation.response_received"]  # fmt: skip
_SEALED = frozenset({"person", "key_id", "nonce", "ciphertext"})


def _sealed(value: Any) -> Iterator[tuple[str, str]]:
    """(person, key id) of every sealed value (``ledger.vault``) inside ``value``."""
    if isinstance(value, dict):
        if value.keys() >= _SEALED:
            yield str(value["person"]), str(value["key_id"])
            return
        for item in value.values():
            yield from _sealed(item)
    elif isinstance(value, list):
        for item in value:
            yield from _sealed(item)


def _check_person_keys(side: BesideReader, report: BesideReport) -> None:
    """Every data key an entry's sealed value names is held, unless its person was erased
    (by a ``person.erased`` entry): a key destroyed otherwise is personal data lost."""
    erased = {
        str(_parse(raw)["data"].get("person_id"))
        for chunk in side.entries_of_types(["person.erased"])
        for _, raw in chunk
    }
    # Most consultation responses seal nothing: only entries naming a key are read.
    for logged_chunk in side.entries_of_types(_SEALING, containing=b'"key_id"'):
        named: list[tuple[int, str, str]] = []
        for idx, raw in logged_chunk:
            named += [(idx, p, k) for p, k in _sealed(_parse(raw)["data"]) if p not in erased]
        people = sorted({p for _, p, _ in named})
        held = {
            (str(r[0]), str(r[1]))
            for r in side.lookup(PERSON_KEYS_TABLE, ("person_id", "key_id"), "person_id", people)
        }
        seen: set[tuple[str, str]] = set()
        for idx, person, key_id in named:
            if (person, key_id) in held or (person, key_id) in seen:
                continue
            seen.add((person, key_id))
            report.add(
                Finding(
                    DamageKind.PERSON_KEY_MISSING,
                    PERSON_KEYS_TABLE,
                    f"person_id={person}, key_id={key_id}",
                    "the data key of a value sealed in this entry is gone, and no person.erased "
                    "entry erased the person (an insider, or an erasure that did not finish: "
                    "run it again)",
                    idx,
                )
            )
    report.checked.append(PERSON_KEYS_TABLE)


def _check_embargo_salts(side: BesideReader, report: BesideReport) -> None:
    columns = ("publication_id", "salt", "sha256", "idx")
    for chunk in side.rows(EMBARGO_SALTS_TABLE, columns, ("idx", "publication_id")):
        entries = _entries_for(side, chunk, 3)
        for publication_id, salt, sha256, idx in chunk:
            where = f"publication_id={publication_id}"
            entry = entries.get(int(idx))

            def bad(detail: str, *, where: str = where, idx: int = int(idx)) -> None:
                report.add(
                    Finding(DamageKind.EMBARGO_SALT_MISMATCH, EMBARGO_SALTS_TABLE, where, detail,
                            idx)
                )  # fmt: skip

            if (
                entry is None
                or entry["type"] != "publication.embargoed"
                or _id(entry["subject"]["id"]) != _id(publication_id)
            ):
                bad(f"entry {idx} is not this publication's embargo")
                continue
            commitment = str(entry["data"].get("commitment"))
            document = side.document(str(sha256))
            if document is None:
                continue  # nothing to open it with here: a release entry would show the salt
            if not matches(commitment, bytes(salt), document):
                bad(
                    f"SHA-256(salt ‖ document {str(sha256)[:16]}…) is not the commitment "
                    f"{commitment[:16]}… of entry {idx}"
                )
    # Every embargo needs its salt to be released; a release reveals the salt it used.
    for logged_chunk in side.entries_of_types(["publication.embargoed", "publication.released"]):
        parsed = [(idx, _parse(raw)) for idx, raw in logged_chunk]
        ids = sorted({_id(e["subject"]["id"]) for _, e in parsed})
        rows = {
            _id(r[0]): (bytes(r[1]), str(r[2]), int(r[3]))
            for r in side.lookup(
                EMBARGO_SALTS_TABLE, ("publication_id", "salt", "sha256", "idx"),
                "publication_id", ids,
            )
        }  # fmt: skip
        for idx, entry in parsed:
            pid = _id(entry["subject"]["id"])
            row = rows.get(pid)
            where = f"publication_id={pid}"
            if entry["type"] == "publication.embargoed" and (row is None or row[2] != idx):
                report.add(
                    Finding(
                        DamageKind.EMBARGO_SALT_MISMATCH,
                        EMBARGO_SALTS_TABLE,
                        where,
                        "the embargo's salt row is "
                        + ("gone" if row is None else f"for entry {row[2]}"),
                        idx,
                    )
                )
            elif entry["type"] == "publication.released" and row is not None:
                revealed = str(entry["data"].get("salt"))
                if row[0].hex() != revealed.lower() or row[1] != entry["data"].get("sha256"):
                    report.add(
                        Finding(
                            DamageKind.EMBARGO_SALT_MISMATCH,
                            EMBARGO_SALTS_TABLE,
                            where,
                            "the salt or document hash kept differs from what the release "
                            "entry revealed",
                            idx,
                        )
                    )
    report.checked.append(EMBARGO_SALTS_TABLE)


def _check_attendance_salts(side: BesideReader, report: BesideReport) -> None:
    columns = ("meeting_id", "org_id", "salt", "commitment", "idx")
    for chunk in side.rows(ATTENDANCE_SALTS_TABLE, columns, ("idx", "meeting_id", "org_id")):
        entries = _entries_for(side, chunk, 4)
        for meeting_id, org_id, salt, commitment, idx in chunk:
            where = f"meeting_id={meeting_id}, org_id={org_id}"
            entry = entries.get(int(idx))
            detail = None
            if (
                entry is None
                or entry["type"] != "meeting.held_in_confidence"
                or _id(entry["subject"]["id"]) != _id(meeting_id)
            ):
                detail = f"entry {idx} is not this meeting's held-in-confidence entry"
            elif str(commitment) not in (entry["data"].get("attendance_commitments") or []):
                detail = f"its commitment {str(commitment)[:16]}… is not in entry {idx}"
            elif attendance_commitment(bytes(salt), str(org_id)) != str(commitment):
                detail = "SHA-256(salt ‖ organisation id) is not its commitment"
            if detail is not None:
                report.add(
                    Finding(DamageKind.ATTENDANCE_SALT_MISMATCH, ATTENDANCE_SALTS_TABLE, where,
                            detail, int(idx))
                )  # fmt: skip
    for logged_chunk in side.entries_of_types(["meeting.held_in_confidence"]):
        parsed = [(idx, _parse(raw)) for idx, raw in logged_chunk]
        ids = sorted({_id(e["subject"]["id"]) for _, e in parsed})
        held: dict[tuple[str, int], set[str]] = {}
        for r in side.lookup(
            ATTENDANCE_SALTS_TABLE, ("meeting_id", "commitment", "idx"), "meeting_id", ids
        ):
            held.setdefault((_id(r[0]), int(r[2])), set()).add(str(r[1]))
        for idx, entry in parsed:
            mid = _id(entry["subject"]["id"])
            have = held.get((mid, idx), set())
            lost = [c for c in entry["data"].get("attendance_commitments") or [] if c not in have]
            if lost:
                report.add(
                    Finding(
                        DamageKind.ATTENDANCE_SALT_MISMATCH,
                        ATTENDANCE_SALTS_TABLE,
                        f"meeting_id={mid}",
                        f"{len(lost)} of the entry's attendance commitments have no salt row "
                        f"(first {lost[0][:16]}…)",
                        idx,
                    )
                )
    report.checked.append(ATTENDANCE_SALTS_TABLE)


def verify_side(
    reader: LogReader, *, progress: Callable[[str], None] | None = None
) -> BesideReport:
    """Check every side table the service reads against the log, in ``reader``'s snapshot."""
    try:
        return _verify_side(reader, progress)
    except StorageError:
        raise
    except Exception as exc:  # the driver's own errors: a store this release cannot read
        raise StorageError(f"cannot read the tables beside the log: {exc}") from exc


def _verify_side(reader: LogReader, progress: Callable[[str], None] | None) -> BesideReport:
    started = time.perf_counter()
    report = BesideReport()
    side = BesideReader(reader)
    if progress is not None:
        progress("tokens")
    tokens = _check_tokens(side, report)
    steps: list[tuple[str, Callable[[], None]]] = [
        ("revocations", lambda: _check_revocations(side, report)),
        ("writes after revocations", lambda: _check_writes_after_revocation(side, report)),
        ("documents", lambda: _check_documents(side, report)),
        ("idempotency keys", lambda: _check_idempotency(side, report, tokens)),
        ("embargo salts", lambda: _check_embargo_salts(side, report)),
        ("attendance salts", lambda: _check_attendance_salts(side, report)),
        ("bulk imports", lambda: _check_imports(side, report)),
        ("personal data keys", lambda: _check_person_keys(side, report)),
    ]
    for name, check in steps:
        if progress is not None:
            progress(name)
        check()
    report.seconds = time.perf_counter() - started
    return report
