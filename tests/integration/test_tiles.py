"""`ledger export-tiles`: a static C2SP tlog-tiles mirror, kept up to date, audited by anyone."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.application import LedgerApplication
from ledger.audit import TilesSource, audit, source_for
from ledger.audit.errors import AuditError, BundleError, SourceError
from ledger.cli import main
from ledger.tiles import TilesExportError, export_tiles
from tests.conftest import Store
from tests.helpers import OFFICIAL

ROOT = Path(__file__).resolve().parents[2]


def grow(store: Store, count: int) -> str:
    """Append ``count`` entries in a few batches; return the log's verifier key."""
    app = LedgerApplication(store.settings)
    try:
        done = 0
        while done < count:
            step = min(250, count - done)
            with app.batch() as batch:
                for k in range(step):
                    app.register_organisation(
                        name=f"Org {done + k}", org_kind="department", actor=OFFICIAL
                    )
            app.write_batch(batch)
            done += step
        return app.signer.verifier_key()
    finally:
        app.close()


def files(directory: Path) -> dict[str, tuple[int, int]]:
    """Every file below ``directory`` → (inode, mtime in ns)."""
    return {
        str(p.relative_to(directory)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def run_cli(
    store: Store, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """``ledger ARGS`` in this process, configured for ``store``."""
    for name, value in store.env().items():
        if name.startswith("LEDGER_"):
            monkeypatch.setenv(name, value)
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def static_server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A plain static file server (http.server) over a directory, on loopback."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))

    class Quiet(http.server.ThreadingHTTPServer):
        daemon_threads = True

    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = Quiet(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/log"
    finally:
        server.shutdown()
        server.server_close()


def test_export_audit_grow_reexport_and_audit_again(
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A second export writes only what changed; the auditor follows with a tile proof."""
    vkey = grow(store, 300)
    out, state = tmp_path / "tiles", tmp_path / "audit.state"
    status, stdout, stderr = run_cli(
        store, monkeypatch, capsys, "export-tiles", str(out), "--quiet"
    )
    assert status == 0, stderr
    assert stdout.startswith(f"ledger export-tiles: {out} at size 300 (was 0): 3 hash tiles, ")
    assert set(files(out)) == {
        "checkpoint",
        "tile/0/000",
        "tile/0/001.p/44",
        "tile/1/000.p/1",
        "tile/entries/000",
        "tile/entries/001.p/44",
    }
    status, stdout, stderr = run_cli(
        store, monkeypatch, capsys, "audit", str(out), "--key", vkey, "--state", str(state)
    )
    assert status == 0, stderr
    assert "grew from 0 to 300 entries" in stdout

    before = files(out)
    vkey = grow(store, 530)  # 830 = 3 full tiles and 62
    done = export_tiles(store.settings, out)
    assert (done.size, done.previous_size) == (830, 300)
    # Bundles and level-0 tiles 1, 2 (now full) and 3.p/62; level-1 000.p/3; the checkpoint.
    assert (done.bundles_written, done.tiles_written, done.partials_removed) == (3, 4, 2)
    after = files(out)
    assert set(after) == {
        "checkpoint",
        "tile/0/000",
        "tile/0/001",
        "tile/0/002",
        "tile/0/003.p/62",
        "tile/1/000.p/1",  # kept: a reader of the old checkpoint still finds it
        "tile/1/000.p/3",
        "tile/entries/000",
        "tile/entries/001",
        "tile/entries/002",
        "tile/entries/003.p/62",
    }
    for untouched in ("tile/0/000", "tile/entries/000", "tile/1/000.p/1"):
        assert after[untouched] == before[untouched]
    assert after["checkpoint"][0] != before["checkpoint"][0]  # replaced by a rename
    written = [name for name in after if after[name] != before.get(name)]
    assert len(written) == 3 + 4 + 1
    assert done.bytes_written == sum((out / name).stat().st_size for name in written)

    status, stdout, stderr = run_cli(
        store, monkeypatch, capsys, "audit", str(out), "--key", vkey, "--state", str(state)
    )
    assert status == 0, stderr
    assert "grew from 300 to 830 entries" in stdout
    assert "with a consistency proof" in stdout

    again = export_tiles(store.settings, out)
    assert (again.size, again.tiles_written, again.bundles_written, again.bytes_written) == (
        830,
        0,
        0,
        0,
    )
    assert files(out) == after
    status, stdout, _ = run_cli(
        store, monkeypatch, capsys, "audit", str(out), "--key", vkey, "--state", str(state)
    )
    assert status == 0
    assert "unchanged at size 830" in stdout


def test_exported_tiles_are_what_the_api_serves(store: Store, tmp_path: Path) -> None:
    """Every exported file is byte for byte the API's response at the same path."""
    vkey = grow(store, 600)
    out = tmp_path / "tiles"
    export_tiles(store.settings, out)
    with TestClient(create_app(store.settings)) as client:
        for name in files(out):
            response = client.get("/" + name)
            assert response.status_code == 200, name
            assert response.content == (out / name).read_bytes(), name

        class ApiTiles(TilesSource):
            """The auditor's tiles client, reading the live API instead of files."""

            def fetch(self, path: str, limit: int) -> bytes | None:
                response = client.get("/" + path)
                return response.content if response.status_code == 200 else None

        result = audit(ApiTiles("http://api.invalid"), vkey=vkey, state_path=tmp_path / "st")
        assert result.new_size == 600


def test_audit_over_http_from_a_static_server(
    store: Store, tmp_path: Path, static_server: tuple[Path, str]
) -> None:
    """A plain static web server is a mirror: `ledger audit URL` reads it as tlog-tiles."""
    root, url = static_server
    vkey = grow(store, 280)
    export_tiles(store.settings, root / "log")
    assert isinstance(source_for(url), TilesSource)
    assert isinstance(source_for(str(root / "log")), TilesSource)
    state = tmp_path / "http.state"
    audited = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "audit", url, "--key", vkey, "--state", str(state)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert audited.returncode == 0, audited.stderr
    assert "grew from 0 to 280 entries" in audited.stdout

    # The mirror moves on while the auditor holds size 280; a reader of an old checkpoint
    # still finds its tiles, or the full tile that replaced a partial one.
    vkey = grow(store, 300)
    export_tiles(store.settings, root / "log")
    assert not (root / "log/tile/0/001.p").exists()
    result = audit(TilesSource(url), vkey=vkey, state_path=state)
    assert (result.old_size, result.new_size, result.proof_checked) == (280, 580, True)


def test_a_stale_reader_falls_back_to_the_full_tile(store: Store, tmp_path: Path) -> None:
    """A reader pinned to an old checkpoint reads a removed partial tile from its full tile."""
    grow(store, 270)
    out = tmp_path / "tiles"
    export_tiles(store.settings, out)
    old_note = (out / "checkpoint").read_bytes()
    old_entries = list(TilesSource(out).entries(0, 270))
    grow(store, 300)
    export_tiles(store.settings, out)
    assert not (out / "tile/entries/001.p").exists()
    stale = TilesSource(out, checkpoint=old_note)
    assert list(stale.entries(0, 270)) == old_entries
    assert stale.root(270) == TilesSource(out).root(270)


def _tampered(out: Path, tmp_path: Path, name: str) -> Path:
    copy = tmp_path / f"tampered-{name}"
    shutil.copytree(out, copy)
    return copy


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _fails(directory: Path, vkey: str, state: Path) -> str:
    before = state.read_bytes() if state.exists() else None
    with pytest.raises(AuditError) as caught:
        audit(source_for(str(directory)), vkey=vkey, state_path=state)
    assert (state.read_bytes() if state.exists() else None) == before
    return str(caught.value)


def test_tampering_with_the_mirror_is_detected(store: Store, tmp_path: Path) -> None:
    """A changed hash tile, entry bundle or checkpoint fails the audit, saying what."""
    vkey = grow(store, 300)
    out = tmp_path / "tiles"
    export_tiles(store.settings, out)
    fresh = tmp_path / "none.state"

    bad = _tampered(out, tmp_path, "leaf")
    _flip(bad / "tile/0/000", 32 * 7)
    message = _fails(bad, vkey, fresh)
    assert "tile/0/000: hash 7 is not the leaf hash of entry 7" in message
    assert "damaged" in message

    bad = _tampered(out, tmp_path, "node")
    _flip(bad / "tile/1/000.p/1", 0)
    message = _fails(bad, vkey, fresh)
    assert "tile/1/000.p/1: hash 0 does not match the tiles below it" in message

    bad = _tampered(out, tmp_path, "entry")
    bundle = bad / "tile/entries/000"
    bundle.write_bytes(bundle.read_bytes().replace(b'"name":"Org 10"', b'"name":"Org 99"', 1))
    message = _fails(bad, vkey, fresh)
    assert "prev does not match the hash of entry" in message

    bad = _tampered(out, tmp_path, "truncated")
    bundle = bad / "tile/entries/001.p/44"
    bundle.write_bytes(bundle.read_bytes()[:-5])
    message = _fails(bad, vkey, fresh)
    assert "tile/entries/001.p/44: entry 43 claims" in message

    bad = _tampered(out, tmp_path, "checkpoint")
    note = (bad / "checkpoint").read_bytes()
    lines = note.split(b"\n")
    lines[2] = b"A" * 43 + b"="  # another root, same size
    (bad / "checkpoint").write_bytes(b"\n".join(lines))
    message = _fails(bad, vkey, fresh)
    assert "signature" in message

    (bad / "checkpoint").write_bytes(note.replace(b"\n300\n", b"\n299\n", 1))
    message = _fails(bad, vkey, fresh)
    # A forged size: the missing tile is not blamed, the unsigned checkpoint is.
    assert "does not verify" in message

    # Incremental: a damaged tile in the consistency proof is blamed on the tiles, not a fork.
    state = tmp_path / "kept.state"
    audit(source_for(str(out)), vkey=vkey, state_path=state)
    grow(store, 300)
    export_tiles(store.settings, out)
    bad = _tampered(out, tmp_path, "proof")
    _flip(bad / "tile/0/001", 32 * 40)  # leaf 296: in the proof from 300 to 600
    message = _fails(bad, vkey, state)
    assert "do not lead to the root of the checkpoint" in message


def test_refuses_rollback_another_log_and_foreign_directories(
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A mirror ahead of the store, of another log, or a random directory is left alone."""
    grow(store, 0)  # the tables, but no checkpoint yet
    status, _, stderr = run_cli(store, monkeypatch, capsys, "export-tiles", str(tmp_path / "e"))
    assert status == 1
    assert stderr == "ledger export-tiles: the log has no checkpoint yet: nothing to export\n"

    grow(store, 40)
    out = tmp_path / "tiles"
    export_tiles(store.settings, out)
    note = (out / "checkpoint").read_bytes()

    (out / "checkpoint").write_bytes(note.replace(b"\n40\n", b"\n4000\n", 1))
    kept = files(out)
    status, _, stderr = run_cli(store, monkeypatch, capsys, "export-tiles", str(out))
    assert status == 1
    assert "is for tree size 4000" in stderr
    assert "roll the mirror back" in stderr
    assert stderr.count("\n") == 1
    assert files(out) == kept

    (out / "checkpoint").write_bytes(note.replace(b"ledger.test.example/", b"other.example/", 1))
    with pytest.raises(TilesExportError, match=r"is for the log 'other\.example/open-policy'"):
        export_tiles(store.settings, out)

    grow(store, 5)
    other = note.split(b"\n")
    other[2] = b"A" * 43 + b"="
    (out / "checkpoint").write_bytes(b"\n".join(other))
    with pytest.raises(TilesExportError, match="different history"):
        export_tiles(store.settings, out)

    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(TilesExportError, match="not empty"):
        export_tiles(store.settings, foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]

    (out / "checkpoint").write_bytes(note)
    assert export_tiles(store.settings, out).size == 45  # the real checkpoint: it resumes
    with pytest.raises(BundleError, match="cannot read"):
        source_for(str(tmp_path / "missing.bundle"))
    with pytest.raises(SourceError, match="not a tlog-tiles tree"):
        source_for(str(foreign))
