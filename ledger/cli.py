"""``ledger``: the command line of the Open Policy Ledger.

Errors become one line on stderr and a non-zero exit status, never a traceback
(set ``LEDGER_DEBUG=1`` to see one): 1 for a refused command or a damaged log, 2 for
usage errors and a missing or unreadable store.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import orjson

from ledger.actors import Actor
from ledger.errors import InvalidInputError, LedgerError, StorageError
from ledger.settings import Settings

__all__ = ["CliError", "main"]

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A one-line failure with its exit status."""

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.status = status


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    if getattr(args, "database_url", None):
        overrides["database_url"] = args.database_url
    try:
        return Settings(**overrides)
    except ValueError as exc:  # pydantic's ValidationError: name each bad variable
        errors: list[dict[str, Any]] = getattr(exc, "errors", lambda: [])()
        named = "; ".join(
            f"LEDGER_{'_'.join(str(p) for p in e.get('loc', ())).upper()}: {e.get('msg')}"
            for e in errors
        )
        raise CliError(f"invalid configuration: {named or exc}", EXIT_USAGE) from None


def _progress_bar(*, quiet: bool = False) -> Any:
    """A progress bar on stderr, shown only on a terminal (CI logs stay clean)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    console = Console(stderr=True)
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=quiet or not console.is_terminal,
    )


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# verify ------------------------------------------------------------------------------------


def _log_verifier(settings: Settings, vkey: str | None) -> Any:
    """The log's public key: given on the command line, else from the configured key."""
    from ledger.checkpoint import Ed25519Verifier
    from ledger.keys import load_signer

    if vkey:
        return Ed25519Verifier.from_vkey(vkey.strip())
    if settings.signing_key is None and settings.signing_key_file is None:
        demo_key = settings.data_dir / "demo-signing.key"
        if not demo_key.exists():
            return None
        settings = settings.model_copy(update={"demo": True})
    signer = load_signer(settings)
    return None if signer is None else signer.verifier()


def _remember_verification(
    settings: Settings, report: Any, beside: Any = None, first: str | None = None
) -> None:
    """Record the result beside the log, for monitoring (`ledger_last_verify_ok`): the whole
    result, the log's and the checks beside it."""
    from ledger.storage.side import SideStore

    damage = report.damage
    text = "" if damage is None else f"{damage.index}: {damage.kind.value}: {damage.detail}"
    side = SideStore(settings)
    try:
        side.record_verification(
            report.size,
            report.ok and (beside is None or beside.ok),
            text or first or "",
            report.seconds + (0.0 if beside is None else beside.seconds),
        )
    except StorageError:
        pass  # a store from before this table, or read-only: the result is still printed
    finally:
        side.close()


def _check_uploads(settings: Settings, report: Any) -> None:
    """Every uploads row must carry the service's MAC (an inserted or edited one would grant
    a pre-release read): checked only where the key is (the signing or master key)."""
    from ledger.chain import DamageKind
    from ledger.keys import side_key
    from ledger.storage.base import DOCUMENT_UPLOADS_TABLE
    from ledger.storage.side import SideStore
    from ledger.verify_side import Finding

    if side_key(settings) is None:
        return
    side = SideStore(settings)
    try:
        unkeyed = side.unmatched_uploads()
    finally:
        side.close()
    for sha256, principal, org in unkeyed:
        report.add(
            Finding(
                DamageKind.UPLOAD_UNKEYED,
                DOCUMENT_UPLOADS_TABLE,
                f"sha256={sha256}, principal={principal}, org={org or '-'}",
                "inserted or edited with SQL (or made before MACs): it grants no pre-release "
                "read; the uploader may upload the bytes again",
            )
        )
    report.checked.append(DOCUMENT_UPLOADS_TABLE)


def _verify_beside(settings: Settings, bar: Any) -> Any:
    """The checks beside the log: side tables, then read models against a scratch rebuild."""
    from ledger.storage import open_reader
    from ledger.verify_side import verify_side
    from projections.check import check_read_models

    task = bar.add_task("side tables", total=None)
    reader = open_reader(settings)
    try:
        report = verify_side(
            reader, progress=lambda name: bar.update(task, description=f"checking {name}")
        )
    finally:
        reader.close()
    _check_uploads(settings, report)
    bar.remove_task(task)
    task = bar.add_task("read models", total=None)
    models = check_read_models(
        settings, progress=lambda done, total: bar.update(task, completed=done, total=total)
    )
    bar.remove_task(task)
    report.extend(models)
    return report


def _cmd_verify(args: argparse.Namespace) -> int:
    from ledger.storage import open_reader
    from ledger.verify import verify_store

    settings = _settings(args)
    reader = open_reader(settings)
    try:
        head = reader.head()
    finally:
        reader.close()
    beside = None
    with _progress_bar(quiet=args.quiet or args.json) as bar:
        task = bar.add_task("verifying", total=head.size if head is not None else None)
        verifier = _log_verifier(settings, args.key)
        report = verify_store(
            settings,
            jobs=args.jobs,
            progress=lambda n: bar.update(task, completed=n),
            verifier=verifier,
        )
        # Beside the log only once the log itself is intact: it is what they are checked by.
        if report.ok and not args.log_only:
            try:
                beside = _verify_beside(settings, bar)
            except (LedgerError, OSError) as exc:
                raise CliError(
                    f"the log is intact ({report.size} entries), but the tables beside it could "
                    f"not be checked: {exc} (--log-only skips them)",
                    EXIT_USAGE,
                ) from exc

    rate = report.size / report.seconds if report.seconds > 0 else 0.0
    findings = [] if beside is None else beside.findings
    ok = report.ok and (beside is None or beside.ok)
    _remember_verification(settings, report, beside, str(findings[0]) if findings else None)
    if args.json:
        damage = report.damage
        first: dict[str, Any] | None = None
        if damage is not None:
            first = {"index": damage.index, "kind": damage.kind.value, "detail": damage.detail}
        elif findings:
            first = {"index": findings[0].index, "kind": findings[0].kind.value,
                     "detail": str(findings[0])}  # fmt: skip
        _out(
            orjson.dumps(
                {
                    "ok": ok,
                    "log_ok": report.ok,
                    "store": settings.describe_store(),
                    "entries": report.size,
                    "head_hash": report.head_hash.hex() if report.head_hash else None,
                    "merkle_root": report.root.hex() if report.root else None,
                    "seconds": round(report.seconds, 6),
                    "damage": first,
                    "beside": None
                    if beside is None
                    else {
                        "ok": beside.ok,
                        "damage_count": beside.total,
                        "damages": [f.as_json() for f in beside.findings],
                        "checked": beside.checked,
                        "not_built": beside.not_built,
                        "lagging": [lag.as_json() for lag in beside.lagging],
                        "seconds": round(beside.seconds, 6),
                    },
                }
            ).decode()
        )
    elif report.damage is not None:
        damage = report.damage
        sys.stderr.write(
            f"ledger verify: DAMAGED at index {damage.index}: {damage.kind.value}: "
            f"{damage.detail} (entries before it verified: {report.size})\n"
        )
    elif not ok:
        assert beside is not None
        for finding in beside.findings:
            sys.stderr.write(f"ledger verify: DAMAGED beside the log: {finding}\n")
        more = beside.total - len(beside.findings)
        sys.stderr.write(
            f"ledger verify: the log itself is intact ({report.size} entries); "
            f"{beside.total} damaged row(s) beside it"
            + (f", {more} more not shown" if more else "")
            + "\n"
        )
        for lag in beside.lagging:
            sys.stderr.write(f"ledger verify: note: {lag}\n")
    else:
        assert report.root is not None
        assert report.head_hash is not None
        if not args.quiet:
            _out("ledger verify: OK, the log is intact")
            _out(f"  store        {settings.describe_store()}")
            _out(f"  entries      {report.size}")
            _out(f"  head hash    {report.head_hash.hex()}")
            _out(f"  merkle root  {report.root.hex()}  (RFC 9162, tree size {report.size})")
            if verifier is not None:
                _out(f"  checkpoint   signed by {verifier.name}+{verifier.key_id.hex()} (verified)")
            else:
                _out("  checkpoint   signature not checked: pass --key <the log's public key>")
            _out(f"  time         {report.seconds:.3f} s ({rate:,.0f} entries/s)")
            if beside is None:
                _out("  beside       not checked (--log-only)")
            else:
                _out(
                    f"  beside       {len(beside.checked)} tables agree with the log "
                    f"(side tables, and read models rebuilt and compared; "
                    f"{beside.seconds:.3f} s)"
                )
                if beside.not_built:
                    _out(f"  not built    {', '.join(beside.not_built)} (no read models here yet)")
                for lag in beside.lagging:  # no damage: a follower's next batch heals it
                    _out(f"  lagging      {lag}")
    return EXIT_OK if ok else EXIT_REFUSED


# demo --------------------------------------------------------------------------------------


DEMO_MARKER = ".ledger-demo"


def _fresh_demo_dir(path: Path) -> None:
    """Empty a demo directory we made before; refuse to touch anything else."""
    if path.exists() and any(path.iterdir()):
        if not (path / DEMO_MARKER).exists():
            raise CliError(
                f"{path} is not empty and is not a demo directory; choose another --data-dir"
            )
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / DEMO_MARKER).write_text("made by `ledger demo`; deleted and remade on each run\n")


def _cmd_demo(args: argparse.Namespace) -> int:
    from ledger.application import LedgerApplication
    from ledger.demo import record_demo
    from ledger.storage import open_reader
    from ledger.verify import verify_log

    if args.database_url or os.environ.get("LEDGER_DATABASE_URL"):
        settings = _settings(args)
        if settings.signing_key is None and settings.signing_key_file is None:
            settings = settings.model_copy(update={"demo": True})
    else:
        data_dir = Path(args.data_dir or "ledger-demo")
        _fresh_demo_dir(data_dir)
        settings = Settings(data_dir=data_dir, demo=True)
    started = time.perf_counter()
    app = LedgerApplication(settings)
    try:
        reader = open_reader(settings)
        try:
            head = reader.head()
        finally:
            reader.close()
        if head is not None and head.size:
            raise CliError(
                f"the ledger at {settings.describe_store()} already has {head.size} entries; "
                "the demo needs an empty one"
            )
        say: Callable[[str], None] = (lambda _m: None) if args.quiet else (lambda m: _out(f"  {m}"))
        if not args.quiet:
            _out(f"Recording the demo process into {settings.describe_store()} …")
        summary = record_demo(app, progress=say)
    finally:
        app.close()
    reader = open_reader(settings)
    try:
        report = verify_log(reader)
    finally:
        reader.close()
    elapsed = time.perf_counter() - started
    _out(
        f"Recorded {summary.entries} entries: {summary.organisations} organisations, "
        f"{summary.meetings} meetings, {summary.proposals} proposals, "
        f"{summary.amendments} amendments, {summary.publications} publications "
        f"({elapsed:.1f} s)."
    )
    if report.ok:
        runner = _open_runner(settings)
        try:
            built = runner.catch_up()
        finally:
            runner.db.close()
            runner.log.close()
        _out(f"Read models built to index {built - 1}: ledger projections status")
    if report.ok and report.root is not None:
        _out(f"Verified: {report.size} entries intact; merkle root {report.root.hex()}")
        _out(f"Check it yourself: ledger verify --data-dir {settings.data_dir}")
        _out(f"Log public key:    {app.signer.verifier_key()}")
        return EXIT_OK
    assert report.damage is not None
    raise CliError(f"the demo ledger does not verify: {report.damage}", EXIT_REFUSED)


# migrate -----------------------------------------------------------------------------------


def _cmd_migrate(args: argparse.Namespace) -> int:
    from ledger.storage import create_schema

    settings = _settings(args)
    create_schema(settings)
    runner = _open_runner(settings)  # the read models' tables and tracking, too
    runner.db.close()
    runner.log.close()
    _out(f"ledger migrate: schema ready at {settings.describe_store()}")
    return EXIT_OK


# record ------------------------------------------------------------------------------------


def _read_payload(raw: str | None) -> dict[str, Any]:
    text = sys.stdin.read() if raw in (None, "-") else raw
    try:
        payload = orjson.loads(text or "{}")
    except orjson.JSONDecodeError as exc:
        raise CliError(f"--json is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise CliError("--json must be a JSON object of the command's arguments")
    return payload


def _cmd_record(args: argparse.Namespace) -> int:
    from ledger.application import LedgerApplication
    from ledger.domain.commands import COMMANDS
    from ledger.domain.fields import FieldError

    declared = COMMANDS.get(args.command)
    if declared is None:
        raise CliError(f"unknown command {args.command!r}; `ledger commands` lists them")
    if "record" not in declared.channels:
        raise CliError(_NOT_RECORDABLE.get(args.command, f"{args.command} is HTTP only"))
    payload = _read_payload(args.json)
    try:
        # Checked only: the application receives the payload as given, so the entry's
        # bytes are what they were before the declaration existed.
        declared.validate(payload)
    except FieldError as exc:
        raise CliError(str(exc), EXIT_REFUSED) from None
    actor = Actor(id=args.actor, role=args.role, org=args.org)
    app = LedgerApplication(_settings(args), create_tables=False)
    try:
        receipt = getattr(app, args.command)(**payload, actor=actor)
    finally:
        app.close()
    _out(orjson.dumps(receipt.as_dict()).decode())
    return EXIT_OK


_NOT_RECORDABLE = {
    "embargo_publication": "embargo_publication needs the document's bytes, which --json "
    "cannot carry; upload it with POST /documents, then POST /publications/embargoed "
    "with its sha256",
}
"""Why a command is not taken by `ledger record`, where a plain "HTTP only" is not enough."""


def _cmd_import(args: argparse.Namespace) -> int:
    from ledger.application import LedgerApplication
    from ledger.bulk import ImportLineError, import_ndjson

    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"no such file: {path}")
    actor = Actor(id=args.actor, role=args.role, org=args.org)
    app = LedgerApplication(_settings(args), create_tables=False)
    try:
        with _progress_bar(quiet=args.quiet) as bar:
            task = bar.add_task("importing", total=path.stat().st_size)

            def progress(read: int, _total: int, entries: int) -> None:
                bar.update(task, completed=read, description=f"{entries:,} entries")

            try:
                result = import_ndjson(
                    app,
                    path,
                    actor=actor,
                    batch_size=args.batch_size,
                    name=args.name,
                    progress=progress,
                )
            except ImportLineError as exc:
                done = exc.recorded_lines
                kept = f"lines 1–{done} are recorded, " if done else "nothing is recorded yet, "
                raise CliError(
                    f"{exc} ({kept}nothing after them; fix the file and run the same command "
                    "again to resume)",
                    EXIT_REFUSED,
                ) from None
    finally:
        app.close()
    resumed = f", resumed after line {result.resumed_from}" if result.resumed_from else ""
    if result.entries:
        first = result.first_index
        last = result.tree_size - 1
        _out(
            f"ledger import: recorded {result.entries:,} entries (indexes {first:,}–{last:,}) "
            f"from {result.lines:,} lines of {path.name} in {result.batches:,} "
            f"{'batch' if result.batches == 1 else 'batches'}, "
            f"{result.seconds:.1f} s ({result.rate:,.0f} entries/s){resumed}"
        )
    else:
        _out(f"ledger import: nothing new to record in {path.name} ({result.lines:,} lines done)")
    return EXIT_OK


def _cmd_backup(args: argparse.Namespace) -> int:
    from ledger.storage.backup import write_backup

    out = Path(args.file)
    if out.exists() and not args.force:
        raise CliError(f"{out} exists; choose a new file name (or --force to replace it)")
    settings = _settings(args)
    started = time.perf_counter()
    with _progress_bar(quiet=args.quiet) as bar:
        task = bar.add_task("backing up", total=None)
        summary = write_backup(
            settings,
            out,
            progress=lambda table, rows: bar.update(task, description=f"{table} {rows:,}"),
        )
    _out(
        f"ledger backup: {out} holds {summary.size:,} entries of {summary.origin or 'the log'} "
        f"({out.stat().st_size:,} bytes, {time.perf_counter() - started:.1f} s)"
    )
    _out(f"  rows         {summary.bytes_hint}")
    _out("  not included the signing key and master key files (back them up separately)")
    return EXIT_OK


def _cmd_restore(args: argparse.Namespace) -> int:
    from ledger.storage.backup import restore
    from ledger.verify import verify_store

    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"no such file: {path}")
    settings = _settings(args)
    with _progress_bar(quiet=args.quiet) as bar:
        task = bar.add_task("restoring", total=None)
        summary = restore(
            settings,
            path,
            progress=lambda table, rows: bar.update(task, description=f"{table} {rows:,}"),
        )
    report = verify_store(settings)
    if not report.ok:
        sys.stderr.write(
            f"ledger restore: restored {summary.size:,} entries, but the log does not verify: "
            f"{report.damage}\n"
        )
        return EXIT_REFUSED
    _out(
        f"ledger restore: {summary.size:,} entries of {summary.origin or 'the log'} restored "
        f"into {settings.describe_store()} from a backup of {summary.created}; verified"
    )
    _out(
        "  next         the read models catch up when served (or `ledger projections "
        "rebuild`); auditors who saw a later checkpoint will report a rollback"
    )
    return EXIT_OK


def _cmd_config_check(args: argparse.Namespace) -> int:
    from ledger.config import check_settings, describe_settings

    settings = _settings(args)
    rows = describe_settings(settings)
    if args.json:
        report = check_settings(settings)
        _out(
            orjson.dumps(
                {
                    "ok": report.ok,
                    "settings": {v: {"value": s, "source": src} for v, s, src, _ in rows},
                    "refusals": report.refusals,
                    "warnings": report.warnings,
                }
            ).decode()
        )
        return EXIT_OK if report.ok else EXIT_REFUSED
    width = max(len(variable) for variable, *_ in rows)
    for variable, shown, source, _ in rows:
        marker = "" if source == "default" else "  (set)"
        _out(f"{variable:<{width}}  {shown}{marker}")
    report = check_settings(settings)
    for warning in report.warnings:
        _out(f"warning: {warning}")
    if report.ok:
        _out("ledger config check: OK for production")
        return EXIT_OK
    for refusal in report.refusals:
        sys.stderr.write(f"refused: {refusal}\n")
    sys.stderr.write(
        f"ledger config check: NOT safe for production ({len(report.refusals)} "
        f"problem{'s' if len(report.refusals) != 1 else ''})\n"
    )
    return EXIT_REFUSED


def _cmd_commands(args: argparse.Namespace) -> int:
    from ledger.domain import reference

    if args.json:
        _out(orjson.dumps(reference.as_json(), option=orjson.OPT_INDENT_2).decode())
    elif args.markdown:
        sys.stdout.write(reference.as_markdown())
    else:
        sys.stdout.write(reference.as_text())
    sys.stdout.flush()
    return EXIT_OK


# entries -----------------------------------------------------------------------------------


def _cmd_entries(args: argparse.Namespace) -> int:
    from ledger.storage import open_reader

    reader = open_reader(_settings(args))
    try:
        head = reader.head()
        stop = args.stop if args.stop is not None else (head.size if head else 0)
        out = sys.stdout.buffer
        for start in range(args.start, stop, 1000):
            for entry in reader.entries(start, min(start + 1000, stop)):
                out.write(entry + b"\n")
        out.flush()
    finally:
        reader.close()
    return EXIT_OK


# serve -------------------------------------------------------------------------------------


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app

    settings = _settings(args)
    tokens: list[tuple[str, str]] = []
    if args.demo:
        data_dir = Path(args.data_dir or "ledger-demo")
        demo_args = argparse.Namespace(data_dir=str(data_dir), database_url=None, quiet=True)
        _cmd_demo(demo_args)
        # A person at a terminal: readable log lines unless LEDGER_LOG_FORMAT says otherwise.
        if os.environ.get("LEDGER_LOG_FORMAT") == "json":
            settings = Settings(data_dir=data_dir, demo=True, log_format="json")
        else:
            settings = Settings(data_dir=data_dir, demo=True, log_format="text")
        tokens = _demo_tokens(settings)
    if args.log_level:
        settings = settings.model_copy(update={"log_level": args.log_level})
    log_level = settings.log_level
    app = create_app(settings)  # fails here, before printing a URL, if misconfigured
    base = f"http://{args.host}:{args.port}"
    _out(f"Open Policy Ledger serving {settings.describe_store()} at {base}/")
    _out(f"  website:            {base}/")
    _out(f"  officials:          {base}/workspace (sign in with a token)")
    _out(f"  API documentation:  {base}/docs")
    _out(f"  latest checkpoint:  {base}/checkpoint")
    for role, token in tokens:
        _out(f"  demo {role} token: {token}")
    if args.workers > 1:
        # Each worker process builds its own app from the environment.
        os.environ.update(_settings_env(settings))
        uvicorn.run(
            "api.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            log_level=log_level,
            workers=args.workers,
            access_log=False,  # the app logs each request itself, with its request id
            timeout_graceful_shutdown=10,  # a stop is not held up by idle or slow clients
        )
    else:
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level=log_level,
            access_log=False,
            timeout_graceful_shutdown=10,
        )
    return EXIT_OK


def _settings_env(settings: Settings) -> dict[str, str]:
    """LEDGER_* variables that reproduce ``settings`` in another process."""
    env = {
        "LEDGER_DATA_DIR": str(settings.data_dir),
        "LEDGER_LOG_NAME": settings.log_name,
        "LEDGER_PG_SCHEMA": settings.pg_schema,
        "LEDGER_DEMO": "1" if settings.demo else "0",
        "LEDGER_LOG_LEVEL": settings.log_level,
        "LEDGER_LOG_FORMAT": settings.log_format,
    }
    if settings.database_url:
        env["LEDGER_DATABASE_URL"] = settings.database_url
    if settings.signing_key_file:
        env["LEDGER_SIGNING_KEY_FILE"] = str(settings.signing_key_file)
    if settings.signing_key:
        env["LEDGER_SIGNING_KEY"] = settings.signing_key.get_secret_value()
    return env


def _demo_tokens(settings: Settings) -> list[tuple[str, str]]:
    """Issue a token per role for trying the write API on the demo (printed, never stored)."""
    from ledger.application import LedgerApplication
    from ledger.demo import demo_id

    app = LedgerApplication(settings)
    try:
        org = demo_id("organisation", "cabinet-office")
        actor = Actor("ledger-admin", "admin", str(org))
        return [
            (
                role,
                app.issue_token(
                    principal=f"demo-{role}", org=str(org), role=role, note="demo", actor=actor
                )[1],
            )
            for role in ("recorder", "publisher", "admin")
        ]
    finally:
        app.close()


# tokens ------------------------------------------------------------------------------------


def _cli_actor(args: argparse.Namespace) -> Actor:
    import getpass

    return Actor(args.by or f"{getpass.getuser()}@cli", "admin", args.by_org or "")


def _cmd_tokens_create(args: argparse.Namespace) -> int:
    from ledger.application import LedgerApplication

    app = LedgerApplication(_settings(args))
    try:
        receipt, token = app.issue_token(
            principal=args.name,
            org=args.org,
            role=args.role,
            note=args.note,
            actor=_cli_actor(args),
        )
    finally:
        app.close()
    sys.stderr.write(
        f"ledger tokens: issued token {receipt.subject_id} to {args.name} ({args.role}) at "
        f"log index {receipt.index}. It is shown once; only a salted hash is kept.\n"
    )
    _out(token)
    return EXIT_OK


def _cmd_tokens_revoke(args: argparse.Namespace) -> int:
    from ledger.application import LedgerApplication

    app = LedgerApplication(_settings(args))
    try:
        receipt = app.revoke_token(args.token_id, reason=args.reason, actor=_cli_actor(args))
    finally:
        app.close()
    _out(f"ledger tokens: revoked {args.token_id} at log index {receipt.index}")
    return EXIT_OK


def _cmd_tokens_list(args: argparse.Namespace) -> int:
    from ledger.storage.side import SideStore

    side = SideStore(_settings(args))
    try:
        tokens = side.tokens()
    finally:
        side.close()
    for t in tokens:
        state = f"revoked at {t.revoked_index}" if t.revoked_index is not None else "active"
        _out(
            f"{t.token_id}  {t.role:<9}  {t.principal}  org={t.org or '-'}  "
            f"issued at {t.issued_index}  {state}"
        )
    return EXIT_OK


# keys --------------------------------------------------------------------------------------


def _cmd_keys_init(args: argparse.Namespace) -> int:
    from ledger.checkpoint import check_key_name
    from ledger.keys import create_key_file

    name = check_key_name(args.name or Settings().log_name)
    path = Path(args.out)
    if path.exists():
        raise CliError(f"{path} already exists; refusing to overwrite a signing key")
    signer = create_key_file(path, name)
    sys.stderr.write(f"ledger keys init: wrote {path} (mode 0600); keep it secret and backed up\n")
    sys.stderr.write(f"  use it with: export LEDGER_SIGNING_KEY_FILE={path.resolve()}\n")
    _out(signer.verifier_key())
    return EXIT_OK


def _cmd_keys_init_master(args: argparse.Namespace) -> int:
    from ledger.keys import create_master_key_file

    path = Path(args.out)
    if path.exists():
        raise CliError(f"{path} already exists; refusing to overwrite a master key")
    create_master_key_file(path)
    sys.stderr.write(
        f"ledger keys init-master: wrote {path} (mode 0600); keep it secret, backed up and "
        "outside the database: without it no personal data can be read\n"
    )
    _out(f"export LEDGER_MASTER_KEY_FILE={path.resolve()}")
    return EXIT_OK


def _cmd_erase(args: argparse.Namespace) -> int:
    from ledger.application import LedgerApplication

    app = LedgerApplication(_settings(args), create_tables=False)
    try:
        receipt = app.erase_person(
            args.person_id,
            legal_basis=args.legal_basis,
            authorised_by=args.authorised_by,
            actor=_cli_actor(args),
        )
    finally:
        app.close()
    destroyed = receipt.fields["data"]["keys_destroyed"]
    _out(
        f"ledger erase: erased {receipt.fields['data']['person_id']} ({destroyed} data "
        f"key{'' if destroyed == 1 else 's'} destroyed) at log index {receipt.index}"
    )
    return EXIT_OK


def _cmd_keys_rotate(args: argparse.Namespace) -> int:
    from ledger.application import LedgerApplication
    from ledger.keys import parse_private_key

    new_path = Path(args.new_key)
    try:
        new_signer = parse_private_key(new_path.read_text())
    except OSError as exc:
        raise CliError(f"cannot read the new key {new_path}: {exc.strerror}") from None
    app = LedgerApplication(_settings(args), create_tables=False)
    try:
        receipt = app.rotate_key(
            new_signer, reason=args.reason, actor=Actor(args.actor, "admin", args.org)
        )
    finally:
        app.close()
    _out(orjson.dumps(receipt.as_dict()).decode())
    sys.stderr.write(
        f"ledger keys rotate: entry {receipt.index} names the new key, sealed under the old one.\n"
        f"  Now restart every writer with LEDGER_SIGNING_KEY_FILE={new_path.resolve()}\n"
    )
    return EXIT_OK


def _cmd_keys_show(args: argparse.Namespace) -> int:
    from ledger.keys import load_signer

    signer = load_signer(_settings(args))
    if signer is None:
        raise CliError("no signing key configured (LEDGER_SIGNING_KEY_FILE)")
    _out(signer.verifier_key())
    return EXIT_OK


# export and audit --------------------------------------------------------------------------


def _cmd_export(args: argparse.Namespace) -> int:
    from ledger.audit import write_bundle
    from ledger.audit.errors import AuditError
    from ledger.keys import load_signer
    from ledger.storage import open_reader

    settings = _settings(args)
    signer = load_signer(settings)
    if signer is None:
        raise CliError("no signing key configured: the bundle must carry the log's public key")
    reader = open_reader(settings)  # one snapshot: the checkpoint and the entries agree
    try:
        latest = reader.checkpoint()
        if latest is None:
            raise CliError("the log has no checkpoint yet: nothing to export")
        size, _, note = latest

        def stream() -> Iterator[bytes]:
            for start in range(0, size, 5000):
                yield from reader.entries(start, min(start + 5000, size))

        sealed = {}
        for index in reader.rotations():
            found = reader.checkpoint(index + 1)
            if found is not None and index < size:
                sealed[index + 1] = found[2]
        try:
            write_bundle(
                args.bundle,
                public_key=signer.verifier_key(),
                checkpoint_note=note,
                entries=stream(),
                size=size,
                sealed=sealed,
            )
        except AuditError as exc:
            raise CliError(f"the log does not export cleanly: {exc}", EXIT_REFUSED) from None
    finally:
        reader.close()
    sys.stderr.write(
        f"ledger export: wrote {size} entries and the signed checkpoint to {args.bundle}\n"
    )
    return EXIT_OK


def _cmd_export_site(args: argparse.Namespace) -> int:
    from api.static_site import export_site

    settings = _settings(args)
    with _progress_bar(quiet=args.quiet) as bar:
        task = bar.add_task("rendering pages", total=None)
        result = export_site(
            settings,
            Path(args.directory),
            progress=lambda done, known: bar.update(task, completed=done, total=known),
        )
    if result.missing:
        sys.stderr.write(f"ledger export-site: pages not served: {', '.join(result.missing)}\n")
    if not args.quiet:
        _out(
            f"ledger export-site: a static mirror of {result.log_name} at checkpoint size "
            f"{result.size} in {result.directory}: {result.pages} pages, {result.feeds} feeds, "
            f"{result.documents} documents, {result.files} files, {result.bytes:,} bytes "
            f"({result.written} written) in {result.seconds:.1f} s"
        )
    return EXIT_OK if not result.missing else EXIT_REFUSED


def _cmd_export_tiles(args: argparse.Namespace) -> int:
    from ledger.tiles import TilesExportError, export_tiles

    settings = _settings(args)
    started = time.monotonic()
    with _progress_bar(quiet=args.quiet) as bar:
        task = bar.add_task("exporting tiles", total=None)
        try:
            done = export_tiles(
                settings,
                Path(args.directory),
                progress=lambda n, total: bar.update(task, completed=n, total=total),
            )
        except TilesExportError as exc:
            raise CliError(str(exc), EXIT_REFUSED) from None
        except OSError as exc:
            raise CliError(f"cannot write {args.directory}: {exc}", EXIT_REFUSED) from None
    _out(
        f"ledger export-tiles: {args.directory} at size {done.size} (was {done.previous_size}): "
        f"{done.tiles_written} hash tiles, {done.bundles_written} entry bundles, "
        f"{done.bytes_written:,} bytes written, {done.partials_removed} partial tiles removed "
        f"in {time.monotonic() - started:.2f} s"
    )
    return EXIT_OK


def _cmd_audit(args: argparse.Namespace) -> int:
    from ledger.audit import audit, source_for
    from ledger.audit.errors import AuditError
    from ledger.audit.sources import printable

    vkey = args.key
    if vkey.startswith("@"):
        try:
            vkey = Path(vkey[1:]).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read the key file {vkey[1:]}: {exc}", EXIT_USAGE) from None
    try:
        source = source_for(args.source)  # API, static tlog-tiles tree or bundle
        result = audit(
            source,
            vkey=vkey,
            state_path=Path(args.state),
            witnesses=args.witness or (),
            quorum=args.quorum,
            origin=args.origin,
        )
    except AuditError as exc:
        # One line, whatever a hostile source put in the words the message quotes.
        sys.stderr.write(f"ledger audit: FAILED: {printable(str(exc))} (state left unchanged)\n")
        return EXIT_REFUSED
    if result.old_size == result.new_size:
        _out(f"ledger audit: OK, {result.origin} unchanged at size {result.new_size}")
    else:
        how = "with a consistency proof" if result.proof_checked else "by recomputing the root"
        _out(
            f"ledger audit: OK, {result.origin} grew from {result.old_size} to "
            f"{result.new_size} entries, consistent with what you trusted ({how})"
        )
    if result.origin_first_trusted:
        _out(
            f"  origin       {result.origin} (trusted on first use and kept in the state; "
            f"pin it with --origin {result.origin})"
        )
    else:
        _out(f"  origin       {result.origin} ({'pinned' if args.origin else 'as in the state'})")
    _out(f"  root         {result.root.hex()}")
    _out(f"  entries      {result.entries_checked} checked (links, indexes, leaves)")
    if result.cosignatures:
        names = ", ".join(sorted(result.cosignatures))
        _out(f"  witnesses    {len(result.cosignatures)} cosigned: {names}")
    moved = "advanced" if result.new_size != result.old_size else "unchanged"
    _out(f"  state        {args.state} ({moved})")
    return EXIT_OK


# witness -----------------------------------------------------------------------------------


def _cmd_witness(args: argparse.Namespace) -> int:
    import uvicorn

    from ledger.checkpoint import CosignatureSigner, Ed25519Verifier
    from ledger.witness import create_witness_app

    key_path = Path(args.key)
    if args.init:
        if key_path.exists():
            raise CliError(f"{key_path} already exists; refusing to overwrite a witness key")
        signer = CosignatureSigner.generate(args.name)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(signer.to_skey() + "\n")
        _out(signer.verifier_key())
        return EXIT_OK
    try:
        signer = CosignatureSigner.from_skey(key_path.read_text())
    except OSError as exc:
        raise CliError(f"cannot read witness key {key_path}: {exc.strerror}") from None
    logs = {}
    for vkey in args.log or ():
        verifier = Ed25519Verifier.from_vkey(vkey)
        logs[verifier.name] = vkey
    if not logs:
        raise CliError("give at least one --log VKEY (the log's verifier key) to witness")
    app = create_witness_app(signer=signer, logs=logs, state_dir=Path(args.state))
    _out(f"witness {signer.verifier_key()} at http://{args.host}:{args.port}/")
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return EXIT_OK


# projections -------------------------------------------------------------------------------


def _open_runner(settings: Settings) -> Any:
    from ledger.storage import open_reader
    from projections import all_views
    from projections.db import connect_views
    from projections.runner import Runner

    runner = Runner(
        connect_views(settings),
        open_reader(settings, snapshot=False),
        all_views(),
        settings=settings,
    )
    runner.setup()
    return runner


def _cmd_projections_rebuild(args: argparse.Namespace) -> int:
    runner = _open_runner(_settings(args))
    started = time.perf_counter()
    try:
        with _progress_bar() as bar:
            task = bar.add_task("rebuilding", total=None)
            position = runner.rebuild(
                args.view or None,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                workers=args.workers,
            )
    finally:
        runner.db.close()
        runner.log.close()
    seconds = time.perf_counter() - started
    rate = position / seconds if seconds > 0 else 0.0
    names = ", ".join(args.view) if args.view else "all views"
    _out(
        f"ledger projections rebuild: {names} at index {position - 1} "
        f"({position} entries in {seconds:.2f} s, {rate:,.0f} entries/s)"
    )
    return EXIT_OK


def _cmd_projections_status(args: argparse.Namespace) -> int:
    runner = _open_runner(_settings(args))
    try:
        head = runner.log.head()
        size = head.size if head is not None else 0
        positions = runner.positions()
    finally:
        runner.db.close()
        runner.log.close()
    _out(f"log size {size}")
    for name, position in sorted(positions.items()):
        _out(f"  {name:16} position {position:>10}  lag {size - position}")
    return EXIT_OK


# main --------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--data-dir", help="SQLite data directory (env LEDGER_DATA_DIR)")
    common.add_argument(
        "--database-url", help="postgresql://… to use PostgreSQL (env LEDGER_DATABASE_URL)"
    )
    parser = _Parser(
        prog="ledger",
        description="Open Policy Ledger: a tamper-evident record of open policy making.",
    )
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", parents=[common], help="record the demo process and verify it")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("verify", parents=[common], help="verify the whole stored log")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--key", help="the log's verifier key, to check the checkpoint signature")
    p.add_argument(
        "--log-only",
        action="store_true",
        help="check only the log, not the tables beside it (side tables and read models)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="processes for large logs (default: one per CPU; 1 = a single streaming pass)",
    )
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("migrate", parents=[common], help="create or upgrade the schema")
    p.set_defaults(func=_cmd_migrate)

    p = sub.add_parser("record", parents=[common], help="record one command as an official")
    p.add_argument("command", help="command name, e.g. table_proposal (see `ledger commands`)")
    p.add_argument("--json", help="the command's arguments as a JSON object, or - for stdin")
    p.add_argument("--actor", required=True, help="who records it")
    p.add_argument("--role", default="recorder", help="recorder, publisher or admin")
    p.add_argument("--org", required=True, help="id of the actor's organisation")
    p.set_defaults(func=_cmd_record)

    p = sub.add_parser(
        "import",
        parents=[common],
        help="record commands in bulk from an NDJSON file (resumable)",
        description="Record one command per line of FILE, as `ledger record` takes them: "
        '{"command": NAME, "args": {...}, "actor": {"id", "role", "org"} (optional)}. '
        "Lines are written in batches, each all or nothing with its own signed checkpoint; "
        "running the same import again resumes after the last recorded batch.",
    )
    p.add_argument("file", help="the NDJSON file")
    p.add_argument("--actor", required=True, help="who records the lines without an actor")
    p.add_argument("--role", default="recorder", help="recorder, publisher or admin")
    p.add_argument("--org", required=True, help="id of the actor's organisation")
    p.add_argument("--name", help="the import's name for resuming (default: the file name)")
    p.add_argument("--batch-size", type=int, default=5000, help="lines a batch (default 5000)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_import)

    p = sub.add_parser(
        "backup", parents=[common], help="write a consistent backup of the ledger to FILE"
    )
    p.add_argument("file", help="the backup file to write (gzip NDJSON)")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_backup)

    p = sub.add_parser(
        "restore", parents=[common], help="restore a backup into an empty store, then verify"
    )
    p.add_argument("file", help="a file written by `ledger backup`")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_restore)

    config = sub.add_parser("config", help="the effective configuration").add_subparsers(
        dest="config_cmd", required=True, metavar="ACTION"
    )
    p = config.add_parser(
        "check",
        parents=[common],
        help="print every LEDGER_ setting (secrets masked); exit 1 if unsafe for production",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_cmd_config_check)

    p = sub.add_parser("serve", parents=[common], help="serve the log's HTTP API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--demo", action="store_true", help="record the demo into a fresh dir first")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        help="least severe log level (default: LEDGER_LOG_LEVEL, info)",
    )
    p.set_defaults(func=_cmd_serve)

    tokens = sub.add_parser("tokens", help="officials' API tokens").add_subparsers(
        dest="tokens_cmd", required=True, metavar="ACTION"
    )
    by = _Parser(add_help=False)
    by.add_argument("--by", help="who issues or revokes (default: <user>@cli)")
    by.add_argument("--by-org", help="the issuer's organisation id")
    p = tokens.add_parser(
        "create", parents=[common, by], help="issue a token (printed once on stdout)"
    )
    p.add_argument("--name", required=True, help="the official (principal) who holds it")
    p.add_argument("--org", default="", help="id of the organisation they act for")
    p.add_argument("--role", required=True, choices=("recorder", "publisher", "admin"))
    p.add_argument("--note", default="")
    p.set_defaults(func=_cmd_tokens_create)
    p = tokens.add_parser("revoke", parents=[common, by], help="revoke a token at once")
    p.add_argument("token_id")
    p.add_argument("--reason", required=True)
    p.set_defaults(func=_cmd_tokens_revoke)
    p = tokens.add_parser("list", parents=[common], help="tokens issued (never their secrets)")
    p.set_defaults(func=_cmd_tokens_list)

    p = sub.add_parser("erase", parents=[common, by], help="erase a person's personal data (admin)")
    p.add_argument("person_id", help="the person's UUID or opaque id")
    p.add_argument("--legal-basis", required=True, help="why, e.g. UK GDPR Art. 17(1)(a)")
    p.add_argument("--authorised-by", required=True, help="who authorised the erasure")
    p.set_defaults(func=_cmd_erase)

    keys = sub.add_parser("keys", help="the log's signing key").add_subparsers(
        dest="keys_cmd", required=True, metavar="ACTION"
    )
    p = keys.add_parser("init", help="create a new Ed25519 signing key file (mode 0600)")
    p.add_argument("--out", required=True, help="where to write the private key")
    p.add_argument("--name", help="key name (default: LEDGER_LOG_NAME)")
    p.set_defaults(func=_cmd_keys_init)
    p = keys.add_parser("init-master", help="create the personal-data master key file (mode 0600)")
    p.add_argument("--out", required=True, help="where to write it (outside the database)")
    p.set_defaults(func=_cmd_keys_init_master)
    p = keys.add_parser(
        "rotate", parents=[common], help="record a new signing key in the log (admin)"
    )
    p.add_argument("--new-key", required=True, help="the new key file (from `keys init`)")
    p.add_argument("--reason", required=True)
    p.add_argument("--actor", required=True)
    p.add_argument("--org", required=True)
    p.set_defaults(func=_cmd_keys_rotate)
    p = keys.add_parser("show", parents=[common], help="print the configured verifier key")
    p.set_defaults(func=_cmd_keys_show)

    p = sub.add_parser("export", parents=[common], help="write a self-contained audit bundle")
    p.add_argument("--bundle", required=True, help="the bundle file to write")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser(
        "export-site", parents=[common], help="write a verifiable static mirror of the website"
    )
    p.add_argument("directory", help="the directory to write (or bring up to date)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=_cmd_export_site)

    p = sub.add_parser(
        "export-tiles", parents=[common], help="write or update a static C2SP tlog-tiles tree"
    )
    p.add_argument("directory", help="the directory to serve (created if missing)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_export_tiles)

    p = sub.add_parser(
        "audit",
        help="audit a log (URL, tiles directory or bundle) against the state you kept",
        description="SOURCE is read as: an http(s) URL that answers /entries as application/"
        "x-ndjson -> the ledger's API; any other http(s) URL -> a static C2SP tlog-tiles tree "
        "(checkpoint, tile/...); a directory with checkpoint and tile/ -> a tlog-tiles tree; "
        "anything else -> a bundle file (ledger export --bundle). Exit status: 0 audited; "
        "1 the audit failed or could not be done (one FAILED line; the state is left "
        "unchanged); 2 bad arguments.",
    )
    p.add_argument("source", help="the log's API URL, a tlog-tiles URL or directory, or a bundle")
    p.add_argument("--key", required=True, help="the log's verifier key (or @FILE)")
    p.add_argument(
        "--state",
        default="ledger-audit.state",
        help="your audit state file: the last checkpoint you trusted",
    )
    p.add_argument("--witness", action="append", help="a witness's cosignature key (repeat)")
    p.add_argument("--quorum", type=int, default=0, help="cosignatures required")
    p.add_argument(
        "--origin",
        help="the log's origin (first line of its checkpoints): refuse any other; without it "
        "a first audit trusts the origin the key signed, and the state keeps it",
    )
    p.set_defaults(func=_cmd_audit)

    p = sub.add_parser("witness", help="run a C2SP tlog-witness for one or more logs")
    p.add_argument("--key", required=True, help="the witness's key file")
    p.add_argument("--init", action="store_true", help="create the key file and print its vkey")
    p.add_argument("--name", default="witness.localhost", help="witness name (with --init)")
    p.add_argument("--log", action="append", help="verifier key of a log to witness (repeat)")
    p.add_argument("--state", default="witness-state", help="directory for witnessed state")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=_cmd_witness)

    projections = sub.add_parser("projections", help="the read models").add_subparsers(
        dest="projections_cmd", required=True, metavar="ACTION"
    )
    p = projections.add_parser("rebuild", parents=[common], help="rebuild views from index 0")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        choices=(1, 2, 3, 4),
        help="processes replaying disjoint groups of views (2 helps on a quiet 2-core host)",
    )
    p.add_argument("--view", action="append", help="only this view (repeat)")
    p.set_defaults(func=_cmd_projections_rebuild)
    p = projections.add_parser("status", parents=[common], help="each view's position and lag")
    p.set_defaults(func=_cmd_projections_status)

    p = sub.add_parser("commands", help="every command: its fields, types, roles and HTTP route")
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="the declarations as JSON")
    shape.add_argument(
        "--markdown", action="store_true", help="the command reference (docs/COMMANDS.md)"
    )
    p.set_defaults(func=_cmd_commands)

    p = sub.add_parser("entries", parents=[common], help="print entries verbatim, one per line")
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--stop", type=int, default=None)
    p.set_defaults(func=_cmd_entries)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = _parser().parse_args(argv)
    debug = bool(os.environ.get("LEDGER_DEBUG"))
    try:
        status: int = args.func(args)
    except CliError as exc:
        sys.stderr.write(f"ledger {args.cmd}: {exc}\n")
        return exc.status
    except StorageError as exc:
        if debug:
            raise
        sys.stderr.write(f"ledger {args.cmd}: {exc}\n")
        return EXIT_USAGE
    except InvalidInputError as exc:
        if debug:
            raise
        sys.stderr.write(f"ledger {args.cmd}: invalid input: {exc}\n")
        return EXIT_REFUSED
    except LedgerError as exc:
        if debug:
            raise
        sys.stderr.write(f"ledger {args.cmd}: refused: {exc}\n")
        return EXIT_REFUSED
    except BrokenPipeError:
        # The reader went away (`ledger entries | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        sys.stderr.write(f"ledger {args.cmd}: interrupted\n")
        return 130
    except Exception as exc:
        if debug:
            raise
        sys.stderr.write(
            f"ledger {args.cmd}: internal error: {type(exc).__name__}: {exc} "
            "(set LEDGER_DEBUG=1 for a traceback)\n"
        )
        return 70
    return status


if __name__ == "__main__":
    sys.exit(main())
