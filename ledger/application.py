"""LedgerApplication: the commands officials call, each returning a receipt.

A command loads the aggregates it needs, checks references to other aggregates, asks the
aggregate to decide (which raises a typed error and records nothing if a rule is broken),
then saves. Saving writes the event row and its sequenced entry in one transaction
(``ledger.storage``); the receipt is built from the entry that was committed.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import (
    InfrastructureFactory,
    IntegrityError,
    InterfaceError,
    Mapper,
    OperationalError,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.utils import Environment

from ledger.actors import Actor
from ledger.aggregates import (
    UNATTRIBUTED_WORDS,
    AccessToken,
    Consultation,
    Correction,
    ErasureRecord,
    KeyRotation,
    LedgerAggregate,
    Meeting,
    Organisation,
    Process,
    Proposal,
    Publication,
)
from ledger.chain import parse_entry
from ledger.checkpoint import (
    CheckpointError,
    CosignatureVerifier,
    Ed25519Signer,
    add_signatures,
    verify_cosignatures,
)
from ledger.commitments import attendance_commitment, commit, matches, new_salt
from ledger.envelope import EntryMapper
from ledger.errors import (
    AttributionError,
    ConcurrentWriteError,
    InvalidInputError,
    NotFoundError,
    RuleViolationError,
    StaleVersionError,
    StorageError,
)
from ledger.groupcommit import Committed, GroupCommitter
from ledger.keys import ConfigurationError, load_master_key, load_signer, publisher_for
from ledger.proofs import ProofBuilder, TileCache
from ledger.sequencer import TOKEN_CHECK, Sealed, SideRow
from ledger.settings import Settings
from ledger.storage import LogReader, factory_for, open_reader
from ledger.storage.base import (
    ATTENDANCE_SALTS_TABLE,
    EMBARGO_SALTS_TABLE,
    IDEMPOTENCY_TABLE,
    PERSON_KEYS_TABLE,
    REVOCATIONS_TABLE,
    TOKENS_TABLE,
)
from ledger.storage.side import SideStore
from ledger.text import check_fields, check_text
from ledger.tokens import new_token
from ledger.vault import ErasedError, NoMasterKeyError, Vault, check_person_id
from ledger.vault import Sealed as SealedValue
from ledger.witness import WitnessError, submit_checkpoint

__all__ = ["Batch", "LedgerApplication", "Receipt"]

A = TypeVar("A", bound=LedgerAggregate)
T = TypeVar("T")
log = logging.getLogger("ledger")

# (principal, idempotency key, request fingerprint) of the write in progress, if any
_IDEMPOTENCY: ContextVar[tuple[str, str, str] | None] = ContextVar("idempotency", default=None)
# The API token writing (its id), re-checked under the write lock: see ``writing_token``
_WRITER: ContextVar[str | None] = ContextVar("writer", default=None)


@dataclass(eq=False)
class Batch:
    """Commands decided together and written in one transaction (``LedgerApplication.batch``).

    Inside ``with app.batch(...)`` a command is decided exactly as usual — same rules, same
    entry — but its entry is queued here instead of written, and the records it touched stay
    in ``aggregates`` (current, with the queued changes applied), so the next command in the
    batch decides on them. ``LedgerApplication.write_batch`` then writes every queued entry
    in one transaction with one signed checkpoint: all or nothing.
    """

    aggregates: dict[UUID | str, LedgerAggregate] = dataclasses.field(default_factory=dict)
    events: list[Any] = dataclasses.field(default_factory=list)
    rows: list[SideRow] = dataclasses.field(default_factory=list)
    # People's data keys as the batch knows them (None: known to have none yet). Keys made
    # in the batch are written in its transaction, with the entries that use them.
    keys: dict[str, tuple[str, bytes] | None] = dataclasses.field(default_factory=dict)
    vault: Vault | None = None
    stored: list[StoredEvent] | None = None  # the events as rows, once prepared


class _BatchKeys:
    """The vault's key store inside a batch: new keys become the batch's side rows."""

    def __init__(self, side: SideStore, batch: Batch) -> None:
        self._side = side
        self._batch = batch

    def get_key(self, person_id: str, key_id: str) -> bytes | None:
        known = self._batch.keys.get(person_id)
        if known is not None and known[0] == key_id:
            return known[1]
        return self._side.get_key(person_id, key_id)

    def current_key(self, person_id: str) -> tuple[str, bytes] | None:
        if person_id not in self._batch.keys:
            self._batch.keys[person_id] = self._side.current_key(person_id)
        return self._batch.keys[person_id]

    def put_key(self, person_id: str, key_id: str, wrapped: bytes) -> None:
        self._batch.keys[person_id] = (key_id, wrapped)
        row = {
            "person_id": person_id,
            "key_id": key_id,
            "wrapped": wrapped,
            "created": SideStore.key_created(),
        }
        self._batch.rows.append(SideRow(0, PERSON_KEYS_TABLE, row))

    def delete_keys(self, person_id: str) -> int:
        raise RuleViolationError("a person cannot be erased inside a batch")


_BATCH: ContextVar[Batch | None] = ContextVar("batch", default=None)


@dataclass(frozen=True, slots=True)
class Receipt:
    """What was recorded, and the proof it is in the signed log.

    ``index``, ``entry_hash`` and ``entry`` (the exact bytes) name the entry; ``checkpoint``
    is the signed note for the tree of ``tree_size`` entries that was committed with it, and
    ``inclusion`` the RFC 9162 inclusion proof of the entry in that tree.
    """

    index: int
    entry_hash: str
    entry: bytes
    tree_size: int
    checkpoint: str
    inclusion: tuple[bytes, ...]

    @property
    def fields(self) -> dict[str, Any]:
        """The entry parsed (type, subject, time, actor, data …)."""
        return parse_entry(self.entry)

    @property
    def subject_id(self) -> str:
        return str(self.fields["subject"]["id"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "entry_hash": self.entry_hash,
            "entry": self.entry.decode("utf-8"),
            "checkpoint": self.checkpoint,
            "inclusion_proof": {
                "tree_size": self.tree_size,
                "hashes": [base64.b64encode(h).decode() for h in self.inclusion],
            },
        }


def _store_error(exc: PersistenceError) -> StorageError:
    """A failed write that is not a lost race: the store is down, or refused the write."""
    if isinstance(exc, OperationalError | InterfaceError):
        return StorageError(f"the ledger store is unavailable: {exc}")
    return StorageError(
        f"the ledger store refused the write ({exc}); has `ledger migrate` been run?"
    )


# What a command returns inside ``LedgerApplication.batch``: its entry has no index yet.
_QUEUED = Receipt(-1, "", b"", 0, "", ())


def _utcnow() -> datetime:
    return datetime.now(UTC)


class LedgerApplication(Application[UUID]):
    """The write side of the ledger, on SQLite or PostgreSQL."""

    name = "ledger"

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        clock: Callable[[], datetime] = _utcnow,
        create_tables: bool = True,
    ) -> None:
        self.settings = settings or Settings()
        self.clock = clock
        # Where the salts of commitments come from (random; the demo makes them repeatable).
        self.salts: Callable[[], bytes] = new_salt
        self._create_tables = create_tables
        self._reader: LogReader | None = None
        self._reader_lock = threading.Lock()
        self._side: SideStore | None = None
        self._vault: Vault | None = None
        self._tiles = TileCache(max_bytes=16 * 1024 * 1024)  # witnesses' consistency proofs
        self._committer = GroupCommitter(self._put, max_batch=self.settings.group_commit_max)
        self._witnessed: dict[str, int] = {}  # witness URL → size it last cosigned
        # Called after each committed command with (entries, seconds to commit): metrics.
        self.append_observers: list[Callable[[int, float], None]] = []
        signer = load_signer(self.settings)
        if signer is None:
            raise ConfigurationError(
                "no signing key: create one with `ledger keys init --out FILE` and set "
                "LEDGER_SIGNING_KEY_FILE (or LEDGER_DEMO=1 for a throwaway demo key)"
            )
        self.signer = signer
        try:
            super().__init__()
        except (OperationalError, InterfaceError, OSError) as exc:
            raise StorageError(
                f"cannot open the ledger at {self.settings.describe_store()}: {exc}"
            ) from exc
        self.recorder.publisher = publisher_for(self.settings, signer)  # type: ignore[attr-defined]

    # eventsourcing wiring ------------------------------------------------------------------

    def construct_env(self, name: str, env: Any = None) -> Environment:
        # Settings is the only source of configuration. Records are cached between commands
        # and brought up to date by reading only the events after the cached version
        # ("fast-forward", which also sees other processes' writes); each command gets a
        # deep copy, so a refused command never changes the cache. Without it, a record
        # with many events (a consultation with 100,000 responses) would be replayed in
        # full for every command on it.
        return Environment(
            name,
            {
                "AGGREGATE_CACHE_MAXSIZE": str(self.settings.aggregate_cache),
                "AGGREGATE_CACHE_FASTFORWARD": "y",
                "DEEPCOPY_FROM_AGGREGATE_CACHE": "y",
            }
            if self.settings.aggregate_cache
            else {},
        )

    def construct_factory(self, env: Environment) -> InfrastructureFactory[Any]:
        factory: InfrastructureFactory[Any] = factory_for(
            self.settings, create_tables=self._create_tables
        )
        return factory

    def construct_mapper(self) -> Mapper[UUID]:
        return EntryMapper()

    # helpers -------------------------------------------------------------------------------

    @contextmanager
    def idempotent(self, principal: str, key: str, fingerprint: str) -> Iterator[None]:
        """Commands inside record ``(principal, key)`` with their entry, in its transaction.

        A second write with the same principal and key then fails on the key's primary key
        and writes nothing; the caller looks the first one up (``SideStore.idempotent``).
        """
        token = _IDEMPOTENCY.set((principal, key, fingerprint))
        try:
            yield
        finally:
            _IDEMPOTENCY.reset(token)

    @contextmanager
    def writing_token(self, token_id: str) -> Iterator[None]:
        """Commands inside are refused (``TokenRevokedError``, nothing written) if the token
        ``token_id`` is revoked by the time their transaction holds the write lock: so no
        entry it writes ever follows its revocation entry in the log."""
        token = _WRITER.set(token_id)
        try:
            yield
        finally:
            _WRITER.reset(token)

    @contextmanager
    def batch(
        self,
        aggregates: dict[UUID | str, LedgerAggregate] | None = None,
        keys: dict[str, tuple[str, bytes] | None] | None = None,
    ) -> Iterator[Batch]:
        """Decide commands into a ``Batch`` instead of writing each (see ``write_batch``).

        ``aggregates`` carries records decided on by earlier batches that were written, so
        a long import does not reload them, and ``keys`` people's data keys (see ``Batch``);
        after a batch fails, pass fresh dicts.
        Commands inside return a placeholder receipt (index -1): the batch has no index yet.
        """
        batch = Batch(
            aggregates if aggregates is not None else {}, keys=keys if keys is not None else {}
        )
        token = _BATCH.set(batch)
        try:
            yield batch
        finally:
            _BATCH.reset(token)

    def write_batch(self, batch: Batch, side: Sequence[SideRow] = ()) -> Sealed:
        """Write a batch's entries (and ``side`` rows) in one transaction, one checkpoint."""
        if not batch.events:
            raise RuleViolationError("an empty batch has nothing to write")
        try:
            sealed = self._put(batch.events, [*batch.rows, *side], batch.stored)
        except IntegrityError as exc:
            raise ConcurrentWriteError(
                "a record this batch creates already exists, or another writer changed one "
                "of its records meanwhile; nothing of the batch was written"
            ) from exc
        except PersistenceError as exc:
            raise _store_error(exc) from exc
        if sealed.checkpoint is not None:
            self._witness(sealed.tree.size, sealed.checkpoint)
        return sealed

    def _put(
        self, events: list[Any], rows: list[SideRow], stored: list[StoredEvent] | None = None
    ) -> Sealed:
        """One write transaction: the event rows, their entries, the tree and checkpoint.

        ``stored``: the events already mapped to rows (``prepare_batch``), else mapped here.
        """
        sealed_batches: list[Sealed] = []
        if stored is None:
            # EventStore.put, not Application.save: the same write, without save()'s
            # runtime Protocol checks, snapshots and notifications, none of which we use.
            self.events.put(events, sequenced=sealed_batches, side_rows=rows)
        else:
            self.recorder.insert_events(stored, sequenced=sealed_batches, side_rows=rows)
        (sealed,) = sealed_batches
        return sealed

    def prepare_batch(self, batch: Batch) -> None:
        """Map a decided batch's events to the rows ``write_batch`` writes (the canonical
        encoding, the size check): CPU work a bulk import does while the previous batch is
        being written."""
        to_stored = self.mapper.to_stored_event
        batch.stored = [to_stored(event) for event in batch.events]

    def _commit(
        self, *aggregates: LedgerAggregate, side: Sequence[SideRow] = (), alone: bool = False
    ) -> Receipt:
        events = [event for aggregate in aggregates for event in aggregate.collect_events()]
        if len(events) != 1:
            raise RuleViolationError("a command must record exactly one entry")
        rows = list(side)
        batch = _BATCH.get()
        if batch is not None:
            for aggregate in aggregates:
                batch.aggregates[aggregate.id] = aggregate
            offset = len(batch.events)
            batch.rows += [SideRow(row.position + offset, row.table, row.values) for row in rows]
            batch.events += events
            return _QUEUED
        idempotency = _IDEMPOTENCY.get()
        if idempotency is not None:
            principal, key, fingerprint = idempotency
            rows.append(
                SideRow(
                    0,
                    IDEMPOTENCY_TABLE,
                    {
                        "principal": principal,
                        "key": key,
                        "fingerprint": fingerprint,
                        "idx": None,
                        "tree_size": None,
                    },
                )
            )
        writer = _WRITER.get()
        if writer is not None:
            rows.append(SideRow(0, TOKEN_CHECK, {"token_id": writer}))
        started = time.perf_counter()
        try:
            if alone:
                committed = Committed(self._put(events, rows), 0, len(events))
            else:
                committed = self._committer.commit(events, rows)
        except IntegrityError as exc:
            raise ConcurrentWriteError(
                "another official changed this record at the same time; reload and retry",
                current_version=self._current_version(aggregates),
            ) from exc
        except PersistenceError as exc:
            raise _store_error(exc) from exc
        sealed = committed.sealed
        if sealed.checkpoint is None:
            raise StorageError("the store committed the entry without a checkpoint")
        entry = sealed.entries[committed.offset]
        proof = sealed.inclusion(committed.offset)
        checkpoint = self._witness(sealed.tree.size, sealed.checkpoint)
        for observe in self.append_observers:
            observe(committed.count, time.perf_counter() - started)
        return Receipt(
            entry.index,
            entry.entry_hash.hex(),
            entry.entry,
            sealed.tree.size,
            checkpoint,
            tuple(proof),
        )

    def _current_version(self, aggregates: Sequence[LedgerAggregate]) -> int | None:
        """After a lost race on one existing record: its version now (for the 409)."""
        if len(aggregates) != 1:
            return None
        subject = str(aggregates[0].id)
        try:
            return self._read(lambda reader: reader.subject_version(subject))
        except Exception:  # only a hint for the client: never mask the conflict
            return None

    def _witness(self, size: int, note: str) -> str:
        """Submit a new checkpoint to the configured witnesses; store their cosignatures.

        The entry is already committed: a witness that is down or refuses only costs a
        warning (and its cosignature), never the write. A witness that has cosigned a tree
        this log cannot extend (422, or a 409 above our size) is logged as fork evidence.
        """
        lines: list[str] = []
        for witness in self.settings.witnesses:
            old = self._witnessed.get(witness.url, 0)
            if old >= size:
                continue  # another command of the same batch has submitted this checkpoint
            for _ in range(2):  # the second try after a 409 told us the witness's size
                proof = self.consistency_proof(min(old, size), size)
                try:
                    answer = submit_checkpoint(
                        witness.url, note, old, proof, timeout=self.settings.witness_timeout
                    )
                except WitnessError as exc:
                    log.warning("witness %s did not cosign size %d: %s", witness.url, size, exc)
                    break
                if isinstance(answer, int):
                    self._witnessed[witness.url] = old = answer
                    if answer > size:
                        log.warning(
                            "witness %s is at size %d, ahead of %d", witness.url, answer, size
                        )
                        break
                    continue
                try:
                    verify_cosignatures(
                        add_signatures(note, answer),
                        [CosignatureVerifier.from_vkey(witness.key)],
                        1,
                    )
                except CheckpointError as exc:
                    log.warning("witness %s sent a bad cosignature: %s", witness.url, exc)
                    break
                self._witnessed[witness.url] = size
                lines += answer
                break
        if not lines:
            return note
        cosigned = add_signatures(note, lines)
        for _ in range(5):
            found = self._read(lambda reader: reader.checkpoint(size))
            if found is None:
                return note
            merged = add_signatures(found[2], lines)
            if self.recorder.replace_checkpoint_note(size, found[2], merged):  # type: ignore[attr-defined]
                return merged
        return cosigned

    def _read(self, read: Callable[[LogReader], T]) -> T:
        """Run ``read`` on this application's one latest-commit log reader (opened lazily)."""
        with self._reader_lock:
            if self._reader is None:
                self._reader = open_reader(self.settings, snapshot=False)
            return read(self._reader)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size``, from storage."""
        return self._read(lambda reader: ProofBuilder(reader, self._tiles).inclusion(index, size))

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """RFC 9162 consistency proof between two committed tree sizes, from storage."""
        return self._read(lambda reader: ProofBuilder(reader, self._tiles).consistency(old, new))

    @property
    def side(self) -> SideStore:
        """The tables beside the log (salts of commitments, documents), opened lazily."""
        with self._reader_lock:
            if self._side is None:
                self._side = SideStore(self.settings)
            return self._side

    @property
    def vault(self) -> Vault:
        """Seals and opens personal data (``ledger.vault``); NoMasterKeyError without a
        master key (LEDGER_MASTER_KEY_FILE, or the demo's throwaway one)."""
        batch = _BATCH.get()
        if batch is not None:
            if batch.vault is None:
                batch.vault = Vault(self._master_key(), _BatchKeys(self.side, batch))
            return batch.vault
        if self._vault is None:
            self._vault = Vault(self._master_key(), self.side)
        return self._vault

    def _master_key(self) -> bytes:
        master = load_master_key(self.settings)
        if master is None:
            raise NoMasterKeyError()
        return master

    def close(self) -> None:
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
            if self._side is not None:
                self._side.close()
                self._side = None
        super().close()

    def _get(
        self, cls: type[A], aggregate_id: str | UUID, expected_version: int | None = None
    ) -> A:
        what = cls.KIND
        batch = _BATCH.get()
        if batch is not None:
            # In bulk, the same ids come again and again: look them up as given first.
            known = batch.aggregates.get(aggregate_id)
            if known is not None:
                return self._checked(cls, known, expected_version)
        try:
            uid = aggregate_id if isinstance(aggregate_id, UUID) else UUID(str(aggregate_id))
        except ValueError:
            raise NotFoundError(f"no {what} {aggregate_id!r}: not a valid id") from None
        cached = batch.aggregates.get(uid) if batch is not None else None
        try:
            aggregate: LedgerAggregate = cached if cached is not None else self.repository.get(uid)
        except AggregateNotFoundError:
            raise NotFoundError(f"no {what} with id {uid}") from None
        except (OperationalError, InterfaceError) as exc:
            raise StorageError(f"the ledger store is unavailable: {exc}") from exc
        except PersistenceError as exc:
            raise StorageError(
                f"the ledger store cannot be read ({exc}); has `ledger migrate` been run?"
            ) from exc
        if batch is not None:
            batch.aggregates[uid] = aggregate
            batch.aggregates[aggregate_id] = aggregate
        return self._checked(cls, aggregate, expected_version)

    @staticmethod
    def _checked(kind: type[A], aggregate: LedgerAggregate, expected_version: int | None) -> A:
        what = kind.KIND
        if not isinstance(aggregate, kind):
            raise NotFoundError(f"{aggregate.id} is a {aggregate.KIND}, not a {what}")
        if expected_version is not None and aggregate.version != expected_version:
            raise StaleVersionError(
                f"the {what} is at version {aggregate.version}, not {expected_version}: "
                "reload it and decide again",
                current_version=aggregate.version,
            )
        return aggregate

    def _require_orgs(self, org_ids: Iterable[str], role: str) -> None:
        for org_id in org_ids:
            try:
                self._get(Organisation, org_id)
            except NotFoundError:
                raise NotFoundError(f"unknown organisation {org_id!r} ({role})") from None

    def _require_strand(self, process_id: str, strand_id: str | None) -> Process:
        process = self._get(Process, process_id)
        if strand_id is not None and strand_id not in process.strands:
            raise NotFoundError(f"process has no strand {strand_id!r}")
        return process

    def _require_held_meeting(self, meeting_id: str | None) -> Meeting | None:
        if meeting_id is None:
            return None
        meeting = self._get(Meeting, meeting_id)
        if not meeting.held:
            raise RuleViolationError(f"meeting {meeting_id} has not been recorded as held")
        return meeting

    @staticmethod
    def _refuse_attribution(
        meeting: Meeting | None, field: str, named: Sequence[Any], instead: str
    ) -> None:
        """The attribution rule: nothing linked to a non-attributed, Chatham House or private
        meeting names an organisation (``named`` is what ``field`` names)."""
        if meeting is None or meeting.attributes or not named:
            return
        raise AttributionError(
            f"{field}: meeting {meeting.id} was {UNATTRIBUTED_WORDS[meeting.disclosure]}, so "
            f"nothing recorded for it may name an organisation; {instead}",
            field=field,
        )

    @staticmethod
    def _id(value: str | UUID | None) -> UUID | None:
        if value is None or isinstance(value, UUID):
            return value
        try:
            return UUID(value)
        except ValueError:
            raise InvalidInputError(f"id {value!r} is not a UUID") from None

    # process -------------------------------------------------------------------------------

    def start_process(
        self, *, title: str, summary: str = "", actor: Actor, id: str | UUID | None = None
    ) -> Receipt:
        """Start recording an open policy process."""
        process = Process.start(
            title=title, summary=summary, actor=actor, at=self.clock(), id=self._id(id)
        )
        return self._commit(process)

    def add_strand(
        self,
        process_id: str,
        *,
        strand_id: str,
        title: str,
        summary: str = "",
        actor: Actor,
        expected_version: int | None = None,
    ) -> Receipt:
        """Add a policy strand to the process."""
        process = self._get(Process, process_id, expected_version)
        process.add_strand(
            strand_id=strand_id, title=title, summary=summary, actor=actor, at=self.clock()
        )
        return self._commit(process)

    def start_phase(
        self,
        process_id: str,
        *,
        phase_id: str,
        title: str,
        summary: str = "",
        actor: Actor,
        expected_version: int | None = None,
    ) -> Receipt:
        """Move the process into a new phase."""
        process = self._get(Process, process_id, expected_version)
        process.start_phase(
            phase_id=phase_id, title=title, summary=summary, actor=actor, at=self.clock()
        )
        return self._commit(process)

    # organisations -------------------------------------------------------------------------

    def register_organisation(
        self, *, name: str, org_kind: str, actor: Actor, id: str | UUID | None = None
    ) -> Receipt:
        """Register a participating organisation."""
        organisation = Organisation.register(
            name=name, org_kind=org_kind, actor=actor, at=self.clock(), id=self._id(id)
        )
        return self._commit(organisation)

    def add_membership(
        self,
        organisation_id: str,
        *,
        process_id: str,
        group: str,
        role: str = "member",
        actor: Actor,
        expected_version: int | None = None,
    ) -> Receipt:
        """Record that an organisation joined a strand or group of the process."""
        self._get(Process, process_id)
        organisation = self._get(Organisation, organisation_id, expected_version)
        organisation.add_membership(
            process_id=process_id, group=group, role=role, actor=actor, at=self.clock()
        )
        return self._commit(organisation)

    def end_membership(
        self,
        organisation_id: str,
        *,
        process_id: str,
        group: str,
        reason: str = "",
        actor: Actor,
        expected_version: int | None = None,
    ) -> Receipt:
        """Record that an organisation left a strand or group."""
        organisation = self._get(Organisation, organisation_id, expected_version)
        organisation.end_membership(
            process_id=process_id, group=group, reason=reason, actor=actor, at=self.clock()
        )
        return self._commit(organisation)

    # proposals -----------------------------------------------------------------------------

    def table_proposal(
        self,
        *,
        process_id: str,
        strand_id: str,
        title: str,
        sections: list[dict[str, str]],
        sponsor_org: str,
        meeting_id: str | None = None,
        actor: Actor,
        id: str | UUID | None = None,
    ) -> Receipt:
        """Table a new proposal with sectioned text (text version 1)."""
        self._require_strand(process_id, strand_id)
        self._require_orgs([sponsor_org], "sponsor")
        meeting = self._require_held_meeting(meeting_id)
        self._refuse_attribution(
            meeting,
            "meeting_id",
            [sponsor_org],
            "a proposal names its sponsor, so table it without meeting_id (the sponsor is then "
            "on record) and record in the meeting's outcome that it was discussed there",
        )
        proposal = Proposal.table(
            process_id=process_id,
            strand_id=strand_id,
            title=title,
            sections=sections,
            sponsor_org=sponsor_org,
            meeting_id=meeting_id,
            actor=actor,
            at=self.clock(),
            id=self._id(id),
        )
        return self._commit(proposal)

    def propose_amendment(
        self,
        proposal_id: str,
        *,
        base_version: int,
        changes: list[dict[str, str]],
        rationale: str = "",
        proposer_org: str | None = None,
        meeting_id: str | None = None,
        actor: Actor,
        expected_version: int | None = None,
    ) -> Receipt:
        """Propose an amendment against a named text version of a proposal: by
        ``proposer_org``, or unattributed (no ``proposer_org``) when raised at a non-attributed,
        Chatham House or private meeting."""
        meeting = self._require_held_meeting(meeting_id)
        if proposer_org is None:
            if meeting is None or meeting.attributes:
                raise InvalidInputError(
                    "proposer_org is required: only an amendment raised at a non-attributed, "
                    "Chatham House or private meeting (meeting_id) is recorded without one"
                )
        else:
            self._require_orgs([proposer_org], "proposer")
        self._refuse_attribution(
            meeting,
            "proposer_org",
            [proposer_org] if proposer_org is not None else [],
            "leave proposer_org out to record that the amendment was raised there, "
            "attributed to no one",
        )
        proposal = self._get(Proposal, proposal_id, expected_version)
        proposal.propose_amendment(
            base_version=base_version,
            changes=changes,
            rationale=rationale,
            proposer_org=proposer_org,
            meeting_id=meeting_id,
            actor=actor,
            at=self.clock(),
        )
        return self._commit(proposal)

    def decide_amendment(
        self,
        proposal_id: str,
        *,
        amendment_id: str,
        decision: str,
        consensus: str,
        dissenting_orgs: Sequence[str] = (),
        meeting_id: str | None = None,
        note: str = "",
        actor: Actor,
        expected_version: int | None = None,
    ) -> Receipt:
        """Record the decision on an amendment, its consensus state and any dissent."""
        self._require_orgs(dissenting_orgs, "dissenting")
        meeting = self._require_held_meeting(meeting_id)
        self._refuse_attribution(
            meeting,
            "dissenting_orgs",
            list(dissenting_orgs),
            "record the decision with no dissenting organisations (the note may say that "
            "there was dissent, without naming who)",
        )
        proposal = self._get(Proposal, proposal_id, expected_version)
        proposal.decide_amendment(
            amendment_id=amendment_id,
            decision=decision,
            consensus=consensus,
            dissenting_orgs=list(dissenting_orgs),
            meeting_id=meeting_id,
            note=note,
            actor=actor,
            at=self.clock(),
        )
        return self._commit(proposal)

    def revise_proposal(
        self,
        proposal_id: str,
        *,
        base_version: int,
        amendment_ids: Sequence[str] = (),
        sections: list[dict[str, str]] | None = None,
        note: str = "",
        meeting_id: str | None = None,
        actor: Actor,
        expected_version: int | None = None,
    ) -> Receipt:
        """Consolidate agreed amendments (or new text) into the next text version."""
        self._require_held_meeting(meeting_id)
        proposal = self._get(Proposal, proposal_id, expected_version)
        proposal.revise(
            base_version=base_version,
            amendment_ids=list(amendment_ids),
            note=note,
            sections=sections,
            meeting_id=meeting_id,
            actor=actor,
            at=self.clock(),
        )
        return self._commit(proposal)

    def change_proposal_status(
        self,
        proposal_id: str,
        *,
        new_status: str,
        reason: str = "",
        superseded_by: str | None = None,
        actor: Actor,
        expected_version: int | None = None,
    ) -> Receipt:
        """Move a proposal to a new status (discussion, consultation … enacted)."""
        if superseded_by is not None:
            self._get(Proposal, superseded_by)
        proposal = self._get(Proposal, proposal_id, expected_version)
        proposal.change_status(
            new_status=new_status,
            reason=reason,
            superseded_by=superseded_by,
            actor=actor,
            at=self.clock(),
        )
        return self._commit(proposal)

    def link_legislative_outcome(
        self,
        proposal_id: str,
        *,
        legislation: str,
        provision: str = "",
        note: str = "",
        actor: Actor,
        expected_version: int | None = None,
    ) -> Receipt:
        """Link a proposal to the legislation that carried it (an Act and section)."""
        proposal = self._get(Proposal, proposal_id, expected_version)
        proposal.link_legislative_outcome(
            legislation=legislation,
            provision=provision,
            note=note,
            actor=actor,
            at=self.clock(),
        )
        return self._commit(proposal)

    def record_individual_sponsor(
        self,
        proposal_id: str,
        *,
        person: dict[str, Any],
        actor: Actor,
        expected_version: int | None = None,
    ) -> Receipt:
        """Record an individual who sponsors a proposal alongside its sponsoring organisation:
        ``person`` is ``{"person_id", "name", "role"?}``, personal data the entry holds only
        sealed under the person's data key (``proposal.individual_sponsor_recorded``); the
        ``proposal.tabled`` entry is unchanged."""
        person_id, details = _check_sponsor(person)
        proposal = self._get(Proposal, proposal_id, expected_version)
        proposal._check_open("sponsored")
        if any(s.get("person") == person_id for s in proposal.individual_sponsors):
            raise RuleViolationError(f"person {person_id!r} already sponsors this proposal")
        sealed = self.vault.seal(person_id, details).as_entry()
        proposal.record_individual_sponsor(sponsor=sealed, actor=actor, at=self.clock())
        return self._commit(proposal)

    def proposal_individual_sponsors(self, proposal_id: str) -> list[dict[str, Any]]:
        """Individual sponsors decrypted, for authorised officials only: ``{"person",
        "erased": False, "name", "role"?}`` or ``{"person", "erased": True}``."""
        proposal = self._get(Proposal, proposal_id)
        return [self._open_person(value) for value in proposal.individual_sponsors]

    # meetings ------------------------------------------------------------------------------

    def schedule_meeting(
        self,
        *,
        process_id: str,
        strand_id: str | None = None,
        title: str,
        starts_at: str,
        disclosure: str = "on_record",
        convenor_org: str,
        actor: Actor,
        id: str | UUID | None = None,
    ) -> Receipt:
        """Schedule a meeting with its disclosure mode."""
        self._require_strand(process_id, strand_id)
        self._require_orgs([convenor_org], "convenor")
        meeting = Meeting.schedule(
            process_id=process_id,
            strand_id=strand_id,
            title=title,
            starts_at=starts_at,
            disclosure=disclosure,
            convenor_org=convenor_org,
            actor=actor,
            at=self.clock(),
            id=self._id(id),
        )
        return self._commit(meeting)

    def record_meeting_held(
        self,
        meeting_id: str,
        *,
        attending_orgs: Sequence[str],
        held_at: str,
        actor: Actor,
        expected_version: int | None = None,
        attending_people: Sequence[dict[str, Any]] | None = None,
    ) -> Receipt:
        """Record that a meeting took place, and which organisations attended.

        For a Chatham House or private meeting the entry does not name them: it holds one
        salted commitment per organisation (``ledger.commitments``), and the salts are stored
        beside the log in the same transaction, for ``attendance_proof``.

        ``attending_people`` (on-record and non-attributed meetings) lists individuals as
        ``{"person_id", "name", "role"?, "org"?}``: ``person_id`` a UUID or opaque id
        (``ledger.vault.check_person_id``), the rest personal data, which the entry holds only
        sealed under the person's data key (``meeting.held_with_people``).
        """
        self._require_orgs(attending_orgs, "attending")
        meeting = self._get(Meeting, meeting_id, expected_version)
        if attending_people:
            people = _check_people(attending_people)
            meeting.check_attendance(list(attending_orgs))
            if meeting.attendance_sealed:
                raise RuleViolationError(
                    f"individual attendees cannot be recorded for a {meeting.disclosure} meeting"
                )
            vault = self.vault
            sealed = [vault.seal(person_id, details).as_entry() for person_id, details in people]
            meeting.record_held_with_people(
                attending_orgs=list(attending_orgs),
                attending_people=sealed,
                held_at=held_at,
                actor=actor,
                at=self.clock(),
            )
            return self._commit(meeting)
        if not meeting.attendance_sealed:
            meeting.record_held(
                attending_orgs=list(attending_orgs), held_at=held_at, actor=actor, at=self.clock()
            )
            return self._commit(meeting)
        orgs = [str(UUID(str(org))) for org in attending_orgs]
        meeting.check_attendance(orgs)
        rows = []
        for org in orgs:
            salt = self.salts()
            values = {
                "meeting_id": str(meeting.id),
                "org_id": org,
                "salt": salt,
                "commitment": attendance_commitment(salt, org),
                "idx": None,
            }
            rows.append(SideRow(0, ATTENDANCE_SALTS_TABLE, values))
        meeting.record_held_in_confidence(
            attendance_commitments=[row.values["commitment"] for row in rows],
            held_at=held_at,
            actor=actor,
            at=self.clock(),
        )
        return self._commit(meeting, side=rows)

    def meeting_attendees(self, meeting_id: str) -> list[dict[str, Any]]:
        """The individual attendees of a meeting, decrypted, for authorised officials only:
        ``{"person", "erased": False, "name", "role"?, "org"?}``, or ``{"person", "erased":
        True}`` once the person was erased."""
        meeting = self._get(Meeting, meeting_id)
        attendees: list[dict[str, Any]] = []
        for value in meeting.attending_people:
            sealed = SealedValue.from_entry(value)
            if self.side.get_key(sealed.person, sealed.key_id) is None:
                attendees.append({"person": sealed.person, "erased": True})
                continue
            try:
                details = self.vault.open(sealed)
            except ErasedError:  # erased between the two reads
                attendees.append({"person": sealed.person, "erased": True})
                continue
            attendees.append({"person": sealed.person, "erased": False, **details})
        return attendees

    def erase_person(
        self, person_id: str, *, legal_basis: str, authorised_by: str, actor: Actor
    ) -> Receipt:
        """Erase a person's personal data: destroy their data keys, then record
        ``person.erased`` (their id, the legal basis, who authorised it; nothing personal).

        The keys go first: should the entry fail, the data is erased all the same and a
        retry records it. Every value sealed for the person, in every entry and every copy of
        the log, is unreadable from then on. Admins only.
        """
        if actor.role not in ("admin", "system"):
            raise RuleViolationError("only an admin can erase a person's personal data")
        person = check_person_id(person_id)
        for name, value in (("legal_basis", legal_basis), ("authorised_by", authorised_by)):
            if not isinstance(value, str) or not value.strip():
                raise InvalidInputError(f"{name} must not be empty")
        destroyed = self.side.delete_keys(person)
        record = ErasureRecord.erase(
            person_id=person,
            legal_basis=legal_basis,
            authorised_by=authorised_by,
            keys_destroyed=destroyed,
            actor=actor,
            at=self.clock(),
        )
        return self._commit(record)

    def attendance_proof(self, meeting_id: str, organisation_id: str) -> dict[str, Any]:
        """Show an authorised party that an organisation attended a Chatham House or private
        meeting: the salt of its commitment, the commitment's position in the held entry and
        that entry, so anyone can recompute it (``ledger.commitments.check_attendance_proof``).
        """
        meeting = self._get(Meeting, meeting_id)
        if not meeting.attendance_sealed:
            raise RuleViolationError(
                f"attendance of a {meeting.disclosure} meeting is in its entry: no proof needed"
            )
        if not meeting.held:
            raise RuleViolationError("the meeting has not been recorded as held")
        try:
            org = str(UUID(str(organisation_id)))
        except ValueError:
            raise NotFoundError(f"no organisation {organisation_id!r}: not a valid id") from None
        found = self.side.attendance_salt(str(meeting.id), org)
        if found is None:
            raise NotFoundError(f"the ledger records no attendance of {org} at this meeting")
        entries = self._read(lambda reader: reader.entries(found.index, found.index + 1))
        if not entries:
            raise StorageError(f"entry {found.index} is missing from the log")
        fields = parse_entry(entries[0])
        commitments = fields["data"].get("attendance_commitments") or []
        if found.commitment not in commitments:
            raise StorageError(f"entry {found.index} does not hold the stored commitment")
        return {
            "meeting_id": str(meeting.id),
            "organisation": org,
            "salt": found.salt.hex(),
            "commitment": found.commitment,
            "position": commitments.index(found.commitment),
            "index": found.index,
            "entry": entries[0].decode("utf-8"),
        }

    def record_meeting_outcome(
        self,
        meeting_id: str,
        *,
        items: list[dict[str, Any]],
        actor: Actor,
        expected_version: int | None = None,
    ) -> Receipt:
        """Record decisions, actions, agreements, disagreements and options of a meeting."""
        meeting = self._get(Meeting, meeting_id, expected_version)
        for number, item in enumerate(items if isinstance(items, list) else []):
            if not isinstance(item, dict):
                continue
            named = item.get("orgs")
            self._refuse_attribution(
                meeting,
                f"items[{number}].orgs",
                [] if named is None else named if isinstance(named, list) else [named],
                "record the item without orgs",
            )
            proposal_id = item.get("proposal_id")
            if proposal_id is not None:
                proposal = self._get(Proposal, proposal_id)
                amendment_id = item.get("amendment_id")
                if amendment_id is not None and amendment_id not in proposal.amendments:
                    raise NotFoundError(f"proposal has no amendment {amendment_id!r}")
            elif item.get("amendment_id") is not None:
                raise InvalidInputError("an outcome item naming an amendment needs proposal_id")
            self._require_orgs(item.get("orgs", []), "named in outcome")
        meeting.record_outcome(items=items, actor=actor, at=self.clock())
        return self._commit(meeting)

    def agree_minutes(
        self,
        meeting_id: str,
        *,
        sha256: str,
        size: int,
        media_type: str,
        actor: Actor,
        expected_version: int | None = None,
    ) -> Receipt:
        """Record the agreed minutes of a meeting by the SHA-256 of the document."""
        meeting = self._get(Meeting, meeting_id, expected_version)
        meeting.agree_minutes(
            sha256=sha256, size=size, media_type=media_type, actor=actor, at=self.clock()
        )
        return self._commit(meeting)

    # publications --------------------------------------------------------------------------

    def publish(
        self,
        *,
        process_id: str,
        pub_kind: str,
        title: str,
        sha256: str,
        size: int,
        media_type: str,
        proposal_ids: Sequence[str] = (),
        meeting_ids: Sequence[str] = (),
        actor: Actor,
        id: str | UUID | None = None,
    ) -> Receipt:
        """Record a publication by the SHA-256, size and media type of its exact bytes."""
        self._get(Process, process_id)
        for proposal_id in proposal_ids:
            self._get(Proposal, proposal_id)
        for meeting_id in meeting_ids:
            self._get(Meeting, meeting_id)
        publication = Publication.publish(
            process_id=process_id,
            pub_kind=pub_kind,
            title=title,
            sha256=sha256,
            size=size,
            media_type=media_type,
            proposal_ids=list(proposal_ids),
            meeting_ids=list(meeting_ids),
            actor=actor,
            at=self.clock(),
            id=self._id(id),
        )
        return self._commit(publication)

    def embargo_publication(
        self,
        *,
        process_id: str,
        pub_kind: str,
        title: str,
        document: bytes,
        release_at: str,
        proposal_ids: Sequence[str] = (),
        meeting_ids: Sequence[str] = (),
        actor: Actor,
        id: str | UUID | None = None,
    ) -> Receipt:
        """Record a publication under embargo until ``release_at`` (RFC 3339 UTC).

        The entry holds only a salted commitment to the document's bytes,
        SHA-256(salt ‖ bytes): not its hash, size or media type, which would let anyone
        confirm a guessed document. The fresh 32-byte salt (and the document's hash) are
        stored beside the log in the same transaction, until ``release_publication``.
        """
        if not isinstance(document, bytes) or not document:
            raise InvalidInputError("an embargoed publication needs the document's bytes")
        self._get(Process, process_id)
        for proposal_id in proposal_ids:
            self._get(Proposal, proposal_id)
        for meeting_id in meeting_ids:
            self._get(Meeting, meeting_id)
        salt = self.salts()
        publication = Publication.embargo(
            process_id=process_id,
            pub_kind=pub_kind,
            title=title,
            commitment=commit(salt, document),
            release_at=release_at,
            proposal_ids=list(proposal_ids),
            meeting_ids=list(meeting_ids),
            actor=actor,
            at=self.clock(),
            id=self._id(id),
        )
        row = {
            "publication_id": str(publication.id),
            "salt": salt,
            "sha256": hashlib.sha256(document).hexdigest(),
            "idx": None,
        }
        return self._commit(publication, side=[SideRow(0, EMBARGO_SALTS_TABLE, row)])

    def grant_prerelease_access(
        self,
        publication_id: str,
        *,
        organisation_id: str,
        authorised_by: str,
        reason: str,
        actor: Actor,
        expected_version: int | None = None,
    ) -> Receipt:
        """Record that an organisation may see an embargoed document before its release."""
        self._require_orgs([organisation_id], "granted pre-release access")
        publication = self._get(Publication, publication_id, expected_version)
        publication.grant_prerelease_access(
            organisation_id=organisation_id,
            authorised_by=authorised_by,
            reason=reason,
            actor=actor,
            at=self.clock(),
        )
        return self._commit(publication)

    def release_publication(
        self,
        publication_id: str,
        *,
        document: bytes,
        media_type: str,
        override_reason: str | None = None,
        actor: Actor,
        expected_version: int | None = None,
    ) -> Receipt:
        """Release an embargoed publication: reveal its SHA-256, size, media type and salt.

        Refused (nothing recorded) unless SHA-256(salt ‖ document) is the embargo's
        commitment, and before ``release_at`` unless an admin gives ``override_reason``.
        """
        publication = self._get(Publication, publication_id, expected_version)
        publication.check_embargoed("release it")
        stored = self.side.embargo_salt(str(publication.id))
        if stored is None:
            raise RuleViolationError("the embargo's salt is not held beside the log")
        if publication.commitment is None or not matches(
            publication.commitment, stored.salt, document
        ):
            raise RuleViolationError(
                "these bytes are not the document the embargo committed to: nothing was released"
            )
        publication.release(
            sha256=hashlib.sha256(document).hexdigest(),
            size=len(document),
            media_type=media_type,
            salt=stored.salt.hex(),
            override_reason=override_reason,
            actor=actor,
            at=self.clock(),
        )
        return self._commit(publication)

    def withdraw_publication(
        self, publication_id: str, *, reason: str, actor: Actor, expected_version: int | None = None
    ) -> Receipt:
        """Withdraw a publication; its record and hash stay in the log."""
        publication = self._get(Publication, publication_id, expected_version)
        publication.withdraw(reason=reason, actor=actor, at=self.clock())
        return self._commit(publication)

    def supersede_publication(
        self,
        publication_id: str,
        *,
        superseded_by: str,
        reason: str = "",
        actor: Actor,
        expected_version: int | None = None,
    ) -> Receipt:
        """Mark a publication as superseded by a later one."""
        self._get(Publication, superseded_by)
        publication = self._get(Publication, publication_id, expected_version)
        publication.supersede(
            superseded_by=superseded_by, reason=reason, actor=actor, at=self.clock()
        )
        return self._commit(publication)

    # consultations -------------------------------------------------------------------------

    def open_consultation(
        self,
        *,
        process_id: str,
        title: str,
        questions: Sequence[dict[str, str]],
        documents: Sequence[str] = (),
        closes_at: str,
        actor: Actor,
        id: str | UUID | None = None,
    ) -> Receipt:
        """Open a consultation on its questions and documents (uploaded first, by SHA-256)."""
        self._get(Process, process_id)
        for sha256 in documents:
            if not isinstance(sha256, str) or self.side.document(sha256, content=False) is None:
                raise InvalidInputError(
                    f"no uploaded document has SHA-256 {sha256}: upload it with POST /documents"
                )
        consultation = Consultation.open(
            process_id=process_id,
            title=title,
            questions=[dict(q) for q in questions],
            documents=list(documents),
            closes_at=closes_at,
            actor=actor,
            at=self.clock(),
            id=self._id(id),
        )
        return self._commit(consultation)

    def record_consultation_response(
        self,
        consultation_id: str,
        *,
        answers: Sequence[dict[str, str]],
        org_id: str | None = None,
        individual: dict[str, Any] | None = None,
        consent_to_publish: bool = False,
        actor: Actor,
        expected_version: int | None = None,
    ) -> Receipt:
        """Record a response from an organisation (``org_id``: answers public) or from an
        individual (``individual``: ``{"person_id", "name", "email"?}``), whose details are
        sealed under their data key and whose answers are public only with
        ``consent_to_publish`` (sealed otherwise)."""
        if (org_id is None) == (individual is None):
            raise InvalidInputError("a response is from an organisation or an individual")
        consultation = self._get(Consultation, consultation_id, expected_version)
        at = self.clock()
        clean = [dict(a) for a in answers]
        if org_id is not None:
            self._require_orgs([org_id], "respondent")
            consultation.receive_organisation_response(
                org_id=org_id, answers=clean, actor=actor, at=at
            )
            return self._commit(consultation)
        person_id, details = _check_respondent(individual)
        consultation.check_open(at)
        checked = consultation._check_answers(clean)
        check_fields({"answers": checked})  # sealed without consent: checked before sealing
        vault = self.vault
        sealed = vault.seal(person_id, details).as_entry()
        consultation.receive_individual_response(
            respondent=sealed,
            consent_to_publish=consent_to_publish,
            answers=checked if consent_to_publish else None,
            sealed_answers=None
            if consent_to_publish
            else vault.seal(person_id, checked).as_entry(),
            actor=actor,
            at=at,
        )
        return self._commit(consultation)

    def consultation_respondents(self, consultation_id: str) -> list[dict[str, Any]]:
        """Individual respondents decrypted, for authorised officials only: ``{"person",
        "erased": False, "name", "email"?}`` or ``{"person", "erased": True}``."""
        consultation = self._get(Consultation, consultation_id)
        return [self._open_person(value) for value in consultation.respondents]

    def _open_person(self, value: dict[str, str]) -> dict[str, Any]:
        sealed = SealedValue.from_entry(value)
        if self.side.get_key(sealed.person, sealed.key_id) is None:
            return {"person": sealed.person, "erased": True}
        try:
            details = self.vault.open(sealed)
        except ErasedError:
            return {"person": sealed.person, "erased": True}
        return {"person": sealed.person, "erased": False, **details}

    def close_consultation(
        self,
        consultation_id: str,
        *,
        note: str = "",
        actor: Actor,
        expected_version: int | None = None,
    ) -> Receipt:
        consultation = self._get(Consultation, consultation_id, expected_version)
        consultation.close(note=note, actor=actor, at=self.clock())
        return self._commit(consultation)

    def record_consultation_review(
        self,
        consultation_id: str,
        *,
        reviewer_org: str,
        findings: Sequence[str],
        recommendations: Sequence[dict[str, str]] = (),
        actor: Actor,
        expected_version: int | None = None,
    ) -> Receipt:
        """Record an external review (e.g. an advisory group's) of a closed consultation."""
        self._require_orgs([reviewer_org], "reviewer")
        consultation = self._get(Consultation, consultation_id, expected_version)
        consultation.record_review(
            reviewer_org=reviewer_org,
            findings=list(findings),
            recommendations=[dict(r) for r in recommendations],
            actor=actor,
            at=self.clock(),
        )
        return self._commit(consultation)

    def record_government_response(
        self,
        consultation_id: str,
        *,
        recommendation_id: str,
        response: str,
        text: str,
        actor: Actor,
        expected_version: int | None = None,
    ) -> Receipt:
        """Record the government's response to one of the review's recommendations."""
        consultation = self._get(Consultation, consultation_id, expected_version)
        consultation.respond_to_recommendation(
            recommendation_id=recommendation_id,
            response=response,
            text=text,
            actor=actor,
            at=self.clock(),
        )
        return self._commit(consultation)

    def get_consultation(self, consultation_id: str) -> Consultation:
        return self._get(Consultation, consultation_id)

    # corrections ---------------------------------------------------------------------------

    def record_correction(
        self,
        *,
        corrects_index: int,
        reason: str,
        correction: dict[str, Any],
        actor: Actor,
        id: str | UUID | None = None,
    ) -> Receipt:
        """Correct an earlier entry by a new entry pointing at it."""
        if not isinstance(corrects_index, int) or isinstance(corrects_index, bool):
            raise InvalidInputError("corrects_index must be an integer")
        found = (
            self._read(lambda reader: reader.entries(corrects_index, corrects_index + 1))
            if corrects_index >= 0
            else []
        )
        if not found:
            raise NotFoundError(f"there is no entry {corrects_index} to correct")
        corrected = parse_entry(found[0])
        if isinstance(correction, dict):
            self._refuse_corrected_attribution(corrected, correction)
        correction_record = Correction.record(
            corrects_index=corrects_index,
            corrects_type=corrected["type"],
            reason=reason,
            correction=correction,
            actor=actor,
            at=self.clock(),
            id=self._id(id),
        )
        return self._commit(correction_record)

    def _meeting_or_none(self, meeting_id: Any) -> Meeting | None:
        if not isinstance(meeting_id, str):
            return None
        try:
            return self._get(Meeting, meeting_id)
        except NotFoundError:
            return None

    def _linked_meetings(self, entry: dict[str, Any]) -> list[Meeting]:
        """The meetings an entry is linked to by the attribution rule: its data's meeting_id;
        a decision's amendment's meeting; an outcome's meeting; a meeting held in confidence
        (whose attendance is sealed: a correction naming attendees would unseal it)."""
        data = entry.get("data")
        data = data if isinstance(data, dict) else {}
        subject = entry.get("subject")
        subject_id = subject.get("id") if isinstance(subject, dict) else None
        ids: list[Any] = [data.get("meeting_id")]
        if entry.get("type") in ("meeting.outcome_recorded", "meeting.held_in_confidence"):
            ids.append(subject_id)
        elif entry.get("type") == "proposal.amendment_decided" and isinstance(subject_id, str):
            try:
                proposal = self._get(Proposal, subject_id)
            except NotFoundError:
                proposal = None
            amendments = proposal.amendments if proposal is not None else {}
            amendment = amendments.get(str(data.get("amendment_id")))
            if amendment is not None:
                ids.append(amendment.get("meeting_id"))
        return [m for m in map(self._meeting_or_none, ids) if m is not None]

    def _is_organisation(self, value: str) -> bool:
        try:
            UUID(value)
            self._get(Organisation, value)
        except (ValueError, NotFoundError):
            return False
        return True

    def _naming(self, path: str, key: str, value: Any) -> tuple[str, Any] | None:
        """The first (path, value) in ``value`` that names an organisation: a non-empty
        attributing field (:data:`ATTRIBUTING_FIELDS`) or a registered organisation's id."""
        if key in ATTRIBUTING_FIELDS and value not in (None, "", [], {}):
            return path, value
        if isinstance(value, str):
            return (path, value) if self._is_organisation(value) else None
        items: Iterable[tuple[str, str, Any]] = ()
        if isinstance(value, dict):
            for k in value:
                if isinstance(k, str) and self._is_organisation(k):
                    return f"{path}.{k}", k
            items = ((f"{path}.{k}", str(k), v) for k, v in value.items())
        elif isinstance(value, list):
            items = ((f"{path}[{i}]", key, v) for i, v in enumerate(value))
        for inner_path, inner_key, inner in items:
            found = self._naming(inner_path, inner_key, inner)
            if found is not None:
                return found
        return None

    def _refuse_corrected_attribution(
        self, entry: dict[str, Any], correction: dict[str, Any]
    ) -> None:
        """The attribution rule for corrections. A correction of an entry linked to a meeting
        that attributes no one (or one that links it to such a meeting) names no
        organisation; one that links an entry to such a meeting is refused while the entry,
        as corrected, still names one. Clearing a name (null, []) is allowed."""
        moved = self._meeting_or_none(correction.get("meeting_id"))
        linked = [*self._linked_meetings(entry), *([moved] if moved is not None else [])]
        closed = next((m for m in linked if not m.attributes), None)
        if closed is None:
            return
        found = self._naming("correction", "correction", correction)
        if found is not None:
            self._refuse_attribution(
                closed,
                found[0],
                [found[1]],
                "a correction there may clear a name (null or []) but not add or change one",
            )
        if moved is None or moved.attributes:
            return
        data = entry.get("data")
        kept = {**(data if isinstance(data, dict) else {}), **correction}
        kept.pop("meeting_id", None)
        if self._naming("data", "data", kept) is not None:
            self._refuse_attribution(
                moved,
                "correction.meeting_id",
                [True],
                "the entry names an organisation, so it cannot be moved to that meeting "
                "(clear the names in the same correction, with null or [])",
            )

    # officials' API tokens -------------------------------------------------------------------

    def issue_token(
        self, *, principal: str, org: str, role: str, note: str = "", actor: Actor
    ) -> tuple[Receipt, str]:
        """Issue an API token; returns the receipt and the token (shown once, never stored).

        The entry names the token's id, holder, organisation and role; the salted hash of
        its secret is stored beside the log in the same transaction.
        """
        if org:
            self._require_orgs([org], "token organisation")
        token = new_token()
        access = AccessToken.issue(
            principal=principal,
            org=org,
            role=role,
            note=note,
            actor=actor,
            at=self.clock(),
            id=token.token_id,
        )
        row = {
            "token_id": str(token.token_id),
            "salt": token.salt,
            "hash": token.hash,
            "principal": access.principal,
            "org": org,
            "role": role,
            "idx": None,
        }
        return self._commit(access, side=[SideRow(0, TOKENS_TABLE, row)]), token.text

    def revoke_token(
        self, token_id: str, *, reason: str, actor: Actor, expected_version: int | None = None
    ) -> Receipt:
        """Revoke an API token: it stops working at once, on every replica."""
        access = self._get(AccessToken, token_id, expected_version)
        access.revoke(reason=reason, actor=actor, at=self.clock())
        row = {"token_id": str(access.id), "idx": None}
        return self._commit(access, side=[SideRow(0, REVOCATIONS_TABLE, row)])

    # the log's key --------------------------------------------------------------------------

    def rotate_key(self, new_signer: Ed25519Signer, *, reason: str, actor: Actor) -> Receipt:
        """Record that the log's key changes to ``new_signer``; sign with it from now on.

        The rotation entry is sealed by a checkpoint signed with the current key, so an
        auditor who trusts the old key learns the new one from the log itself. Any other
        process still holding the old key is refused its next write until restarted.
        """
        if new_signer.name != self.signer.name:
            raise InvalidInputError(
                f"the new key must keep the log's key name {self.signer.name!r}"
            )
        rotation = KeyRotation.rotate(
            old_key=self.signer.verifier_key(),
            new_key=new_signer.verifier_key(),
            reason=reason,
            actor=actor,
            at=self.clock(),
        )
        receipt = self._commit(rotation, alone=True)
        self.signer = new_signer
        self.recorder.publisher = publisher_for(self.settings, new_signer)  # type: ignore[attr-defined]
        return receipt

    # reading -------------------------------------------------------------------------------

    def get_proposal(self, proposal_id: str) -> Proposal:
        return self._get(Proposal, proposal_id)

    def get_meeting(self, meeting_id: str) -> Meeting:
        return self._get(Meeting, meeting_id)

    def get_process(self, process_id: str) -> Process:
        return self._get(Process, process_id)

    def get_organisation(self, organisation_id: str) -> Organisation:
        return self._get(Organisation, organisation_id)

    def get_publication(self, publication_id: str) -> Publication:
        return self._get(Publication, publication_id)


ATTRIBUTING_FIELDS = frozenset({"sponsor_org", "proposer_org", "dissenting_orgs", "orgs"})
"""Fields that attribute something to organisations; a correction of an entry linked to a
meeting that attributes no one may not give them a value (nor name an organisation's id)."""

_PERSON_FIELDS = frozenset({"person_id", "name", "role", "org"})


def _check_people(people: Any) -> list[tuple[str, dict[str, str]]]:
    """(person id, details to seal) of each individual attendee; refuse anything else."""
    if not isinstance(people, list | tuple):
        raise InvalidInputError("attending_people must be a list")
    checked: list[tuple[str, dict[str, str]]] = []
    seen: set[str] = set()
    for person in people:
        if not isinstance(person, dict) or not set(person) <= _PERSON_FIELDS:
            raise InvalidInputError(
                "each attending person must be an object of person_id, name, role and org"
            )
        person_id = check_person_id(person.get("person_id"))
        if person_id in seen:
            raise InvalidInputError(f"person {person_id!r} is listed twice")
        seen.add(person_id)
        details: dict[str, str] = {}
        for field in ("name", "role", "org"):
            value = person.get(field)
            if value is None and field != "name":
                continue
            if not isinstance(value, str) or (field == "name" and not value.strip()):
                raise InvalidInputError(f"an attending person's {field} must be text")
            details[field] = check_text(f"attending_people.{field}", value)
        checked.append((person_id, details))
    return checked


_RESPONDENT_FIELDS = frozenset({"person_id", "name", "email"})


def _check_respondent(individual: Any) -> tuple[str, dict[str, str]]:
    """(person id, details to seal) of an individual respondent; refuse anything else."""
    if not isinstance(individual, dict) or not set(individual) <= _RESPONDENT_FIELDS:
        raise InvalidInputError("an individual respondent is an object of person_id, name, email")
    person_id = check_person_id(individual.get("person_id"))
    details: dict[str, str] = {}
    for field in ("name", "email"):
        value = individual.get(field)
        if value is None and field == "email":
            continue
        if not isinstance(value, str) or not value.strip():
            raise InvalidInputError(f"an individual respondent's {field} must be text")
        details[field] = check_text(f"individual.{field}", value)
    return person_id, details


_SPONSOR_FIELDS = frozenset({"person_id", "name", "role"})


def _check_sponsor(person: Any) -> tuple[str, dict[str, str]]:
    """(person id, details to seal) of an individual sponsor; refuse anything else."""
    if not isinstance(person, dict) or not set(person) <= _SPONSOR_FIELDS:
        raise InvalidInputError("an individual sponsor is an object of person_id, name, role")
    person_id = check_person_id(person.get("person_id"))
    details: dict[str, str] = {}
    for field in ("name", "role"):
        value = person.get(field)
        if value is None and field == "role":
            continue
        if not isinstance(value, str) or not value.strip():
            raise InvalidInputError(f"an individual sponsor's {field} must be text")
        details[field] = check_text(f"person.{field}", value)
    return person_id, details


COMMANDS: tuple[str, ...] = (
    "start_process",
    "add_strand",
    "start_phase",
    "register_organisation",
    "add_membership",
    "end_membership",
    "table_proposal",
    "propose_amendment",
    "decide_amendment",
    "revise_proposal",
    "change_proposal_status",
    "link_legislative_outcome",
    "record_individual_sponsor",
    "schedule_meeting",
    "record_meeting_held",
    "record_meeting_outcome",
    "agree_minutes",
    "open_consultation",
    "close_consultation",
    "record_consultation_review",
    "record_government_response",
    "publish",
    "grant_prerelease_access",
    "withdraw_publication",
    "supersede_publication",
    "record_correction",
    "issue_token",
    "revoke_token",
)
