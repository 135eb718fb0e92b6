"""Bulk import: record thousands of commands from an NDJSON file, fast and resumably.

Each line of the file is one command, as ``ledger record`` takes it::

    {"command": "record_consultation_response", "args": {"consultation_id": "…", …}}
    {"command": "register_organisation", "args": {"id": "…", "name": "…", "org_kind": "…"},
     "actor": {"id": "clerk", "role": "recorder", "org": "…"}}

Lines are decided in batches (``LedgerApplication.batch``): every command is checked by the
same rules as when it is recorded alone, and each still makes exactly one entry, but a batch
is written in one transaction with one signed checkpoint — all of it or none of it. The
batch's transaction also records how far the import got (``ledger_imports``: the import's
name, the lines done and the SHA-256 of those lines), so an interrupted or failed import is
resumed by running it again: lines already recorded are skipped, after checking they did not
change. Blank lines are allowed and count as lines (line numbers are the file's).
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import orjson

from ledger.actors import Actor
from ledger.aggregates import LedgerAggregate
from ledger.application import COMMANDS, Batch, LedgerApplication
from ledger.errors import InvalidInputError, LedgerError
from ledger.sequencer import SideRow
from ledger.storage.base import IMPORTS_TABLE

__all__ = [
    "IMPORT_COMMANDS",
    "ImportLineError",
    "ImportResult",
    "import_ndjson",
]

# Everything an official records, except tokens (whose secrets an import could not show).
IMPORT_COMMANDS: tuple[str, ...] = tuple(
    sorted(
        {*COMMANDS, "record_consultation_response", "embargo_publication"}
        - {"issue_token", "revoke_token"}
    )
)

Progress = Callable[[int, int, int], None]  # (bytes read, file size, entries recorded)


class ImportLineError(InvalidInputError):
    """A line the import cannot record; its batch was not written."""

    def __init__(self, line: int, message: str, *, recorded_lines: int) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.reason = message
        self.recorded_lines = recorded_lines


@dataclass(frozen=True, slots=True)
class ImportResult:
    name: str
    lines: int  # lines of the file now recorded (incl. blank ones and those done before)
    entries: int  # entries recorded by this run
    batches: int  # batches (transactions) written by this run
    seconds: float
    resumed_from: int  # lines skipped because an earlier run had recorded them
    first_index: int | None  # the log index of this run's first entry
    tree_size: int  # the log's size after this run's last batch (0 if none written)

    @property
    def rate(self) -> float:
        return self.entries / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class _Signature:
    accepted: frozenset[str]
    required: frozenset[str]


def _signatures() -> dict[str, _Signature]:
    found: dict[str, _Signature] = {}
    for name in IMPORT_COMMANDS:
        params = inspect.signature(getattr(LedgerApplication, name)).parameters
        names = {p for p in params if p not in ("self", "actor")}
        required = {
            p
            for p in names
            if params[p].default is inspect.Parameter.empty
            and params[p].kind is not inspect.Parameter.VAR_KEYWORD
        }
        found[name] = _Signature(frozenset(names), frozenset(required))
    return found


_SIGNATURES = _signatures()


def _actor(value: Any, default: Actor) -> Actor:
    if value is None:
        return default
    if (
        not isinstance(value, dict)
        or set(value) != {"id", "role", "org"}
        or not all(isinstance(v, str) and v for v in value.values())
    ):
        raise InvalidInputError('"actor" must be an object of id, role and org (all text)')
    return Actor(id=value["id"], role=value["role"], org=value["org"])


def _parse(raw: bytes) -> tuple[str, dict[str, Any], Any]:
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"not valid JSON ({exc})") from None
    if not isinstance(line, dict) or not set(line) <= {"command", "args", "actor"}:
        raise InvalidInputError('a line is an object of "command", "args" and optional "actor"')
    command = line.get("command")
    if not isinstance(command, str) or command not in _SIGNATURES:
        raise InvalidInputError(
            f"unknown command {command!r}; `ledger commands` lists what can be recorded"
        )
    args = line.get("args", {})
    if not isinstance(args, dict):
        raise InvalidInputError('"args" must be an object')
    signature = _SIGNATURES[command]
    unknown = set(args) - signature.accepted
    if unknown:
        raise InvalidInputError(f"{command} takes no argument {sorted(unknown)[0]!r}")
    missing = signature.required - set(args)
    if missing:
        raise InvalidInputError(f"{command} needs the argument {sorted(missing)[0]!r}")
    return command, args, line.get("actor")


def _decide(app: LedgerApplication, raw: bytes, actor: Actor, line: int, recorded: int) -> None:
    """Decide one line's command into the current batch."""
    try:
        command, args, who = _parse(raw)
        getattr(app, command)(**args, actor=_actor(who, actor))
    except LedgerError as exc:
        raise ImportLineError(line, str(exc), recorded_lines=recorded) from None
    except (TypeError, ValueError) as exc:
        raise ImportLineError(line, f"invalid arguments ({exc})", recorded_lines=recorded) from None


@dataclass
class _Written:
    """What the import's writer has committed so far."""

    tree_size: int
    entries: int = 0
    batches: int = 0
    first_index: int | None = None

    def write(
        self,
        app: LedgerApplication,
        batch: Batch,
        marker: SideRow,
        first_line: int,
        last_line: int,
        report: tuple[Progress | None, int, int],
    ) -> None:
        try:
            sealed = app.write_batch(batch, [marker])
        except LedgerError as exc:
            raise ImportLineError(
                first_line,
                f"the batch of lines {first_line}–{last_line} was not written: {exc}",
                recorded_lines=first_line - 1,
            ) from exc
        if self.first_index is None:
            self.first_index = sealed.entries[0].index
        self.tree_size = sealed.tree.size
        self.entries += len(sealed.entries)
        self.batches += 1
        progress, read, total = report
        if progress is not None:
            progress(read, total, self.entries)


_PERSON = re.compile(rb'"person_id"\s*:\s*"([^"\\]{1,200})"')


def _prefetch_keys(
    app: LedgerApplication, chunk: list[bytes], keys: dict[str, tuple[str, bytes] | None]
) -> None:
    """Look up, in one query, the data keys of the people a batch's lines name.

    Only a shortcut: a person the pattern misses is looked up when sealed."""
    people = {m.decode("utf-8", "replace") for raw in chunk for m in _PERSON.findall(raw)}
    unknown = sorted(p for p in people if p not in keys)
    if not unknown:
        return
    found = app.side.current_keys(unknown)
    for person in unknown:
        keys[person] = found.get(person)


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    while True:
        raw = stream.readline()
        if not raw:
            return
        yield raw


def import_ndjson(
    app: LedgerApplication,
    path: Path,
    *,
    actor: Actor,
    batch_size: int = 5000,
    name: str | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Record every command of the NDJSON file at ``path``, ``batch_size`` lines a batch.

    Resumes the import called ``name`` (default: the file's name) where it stopped. Raises
    ``ImportLineError`` for the first line that cannot be recorded: its batch is not
    written; the batches before it stay recorded, so fixing that line and running again
    continues from there.
    """
    if batch_size < 1:
        raise InvalidInputError("the batch size must be at least 1")
    name = name or path.name
    started = time.perf_counter()
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    with stream:
        total = path.stat().st_size
        done = app.side.import_progress(name)
        prefix = hashlib.sha256()
        line_no = 0
        lines = _lines(stream)
        skipped = done.lines if done is not None else 0
        if done is not None:
            for raw in lines:
                prefix.update(raw)
                line_no += 1
                if line_no == skipped:
                    break
            if line_no < skipped or prefix.hexdigest() != done.prefix_sha256:
                raise InvalidInputError(
                    f"the import {name!r} recorded the first {skipped} lines of a file that "
                    f"differs from {path} in those lines; an imported line cannot be changed "
                    "(record a correction instead), or give this import another --name"
                )
        written = _Written(tree_size=done.tree_size if done is not None else 0)
        aggregates: dict[UUID | str, LedgerAggregate] = {}
        keys: dict[str, tuple[str, bytes] | None] = {}  # people's data keys, as known
        # While one batch is written (the database's work, on the other side of a socket),
        # the next is decided: the records it needs are in ``aggregates``, current with
        # every decided change, so it never needs the write to have committed. If a write
        # fails, the batch decided meanwhile is dropped: nothing after a failure is written.
        with ThreadPoolExecutor(1, thread_name_prefix="import-writer") as writer:
            pending: Future[None] | None = None
            exhausted = False
            while not exhausted:
                chunk = list(itertools.islice(lines, batch_size))
                exhausted = len(chunk) < batch_size
                batch_lines = len(chunk)
                first = line_no + 1
                _prefetch_keys(app, chunk, keys)
                try:
                    with app.batch(aggregates, keys) as batch:
                        for raw in chunk:
                            line_no += 1
                            prefix.update(raw)
                            if raw.strip():
                                _decide(app, raw, actor, line_no, first - 1)
                except ImportLineError:
                    if pending is not None:
                        pending.result()  # the batch before is recorded (or its error wins)
                    raise
                if not batch.events:
                    continue  # only blank lines: nothing to record, nothing to remember
                try:
                    app.prepare_batch(batch)
                except LedgerError as exc:  # an entry too large, say: name the batch
                    if pending is not None:
                        pending.result()
                    raise ImportLineError(
                        first,
                        f"the batch of lines {first}–{line_no} cannot be written: {exc}",
                        recorded_lines=first - 1,
                    ) from None
                marker = SideRow(
                    len(batch.events) - 1,
                    IMPORTS_TABLE,
                    {
                        "name": name,
                        "lines": line_no,
                        "prefix_sha256": prefix.hexdigest(),
                        "idx": None,
                        "tree_size": None,
                    },
                )
                if pending is not None:
                    pending.result()
                report = (progress, stream.tell(), total)
                pending = writer.submit(
                    written.write, app, batch, marker, line_no - batch_lines + 1, line_no, report
                )
            if pending is not None:
                pending.result()
    return ImportResult(
        name=name,
        lines=line_no,
        entries=written.entries,
        batches=written.batches,
        seconds=time.perf_counter() - started,
        resumed_from=skipped,
        first_index=written.first_index,
        tree_size=written.tree_size,
    )
