"""compose.yaml's topology, run natively on loopback: no container engine needed.

The keys come from deploy/make-secrets.sh, the environment and the command lines from
compose.yaml itself (interpolated as compose would, then hosts, ports and /run/secrets
rewritten to loopback and temporary files): a scratch PostgreSQL schema stands in for the
postgres service, then the one-shot `ledger migrate`, a `ledger witness` and the two API
replicas. A write through either replica is read through the other, and every receipt's
checkpoint carries the witness's cosignature.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.checkpoint import CosignatureVerifier, verify_cosignatures
from tests.conftest import PG_URL, Store, make_store
from tests.deploy.conftest import COMPOSE, DEPLOY, interpolate, load_yaml

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

LEDGER = [str(Path(sys.executable).parent / "ledger")]  # the image's ENTRYPOINT
DEADLINE = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def decode(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return raw.decode()


def call(
    base: str, path: str, body: dict[str, Any] | None = None, token: str = ""
) -> tuple[int, Any]:
    request = urllib.request.Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="GET" if body is None else "POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, decode(response.read())
    except urllib.error.HTTPError as error:
        return error.code, decode(error.read())


class Topology:
    """compose.yaml's services as loopback processes."""

    def __init__(self, store: Store, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Any] = []
        secrets = tmp / "secrets"
        made = subprocess.run(
            ["sh", str(DEPLOY / "make-secrets.sh")],
            env={
                **os.environ,
                "SECRETS_DIR": str(secrets),
                "ENV_FILE": str(tmp / ".env"),
                "LEDGER": LEDGER[0],
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert made.returncode == 0, made.stderr
        self.variables = dict(
            line.split("=", 1)
            for line in (tmp / ".env").read_text().splitlines()
            if line and not line.startswith("#")
        )
        doc = interpolate(load_yaml(COMPOSE), self.variables)
        self.services: dict[str, Any] = doc["services"]
        # compose secret NAME -> mounted at /run/secrets/NAME -> here, the file make-secrets made
        self.mounts = {
            f"/run/secrets/{name}": str(secrets / Path(spec["file"]).name)
            for name, spec in doc["secrets"].items()
        }
        self.schema = store.schema
        self.witness_port = free_port()
        self.hosts = {"witness:8001": f"127.0.0.1:{self.witness_port}"}

    def env(self, service: str) -> dict[str, str]:
        """The service's compose environment, pointed at loopback and the scratch schema."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
        for name, raw in (self.services[service].get("environment") or {}).items():
            value = str(raw)
            if name == "LEDGER_DATABASE_URL":
                assert value.startswith("postgresql://ledger:")
                assert "@postgres:5432/" in value
                value = PG_URL
            elif name == "LEDGER_PG_SCHEMA":
                value = str(self.schema)
            value = self.mounts.get(value, value)
            for host, loopback in self.hosts.items():
                value = value.replace(f"http://{host}", f"http://{loopback}")
            env[name] = value
        return env

    def argv(self, service: str, port: int | None = None) -> list[str]:
        """The service's compose command, on loopback, with its state in the temp dir."""
        args = [self.mounts.get(a, a) for a in self.services[service]["command"]]
        for flag, value in (
            ("--host", "127.0.0.1"),
            ("--port", str(port)),
            ("--state", str(self.tmp / f"{service}-state")),
        ):
            if flag in args:
                args[args.index(flag) + 1] = value
        return LEDGER + args

    def start(self, service: str, port: int, ready: str) -> str:
        base = f"http://127.0.0.1:{port}"
        log = (self.tmp / f"{service}-{port}.log").open("wb")
        self.logs.append(log)
        self.procs.append(
            subprocess.Popen(
                self.argv(service, port),
                cwd=self.tmp,
                env=self.env(service),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        self.ready = getattr(self, "ready", {})
        self.ready[base] = (ready, self.procs[-1], self.tmp / f"{service}-{port}.log")
        return base

    def wait(self, base: str) -> None:
        path, proc, log = self.ready[base]
        deadline = time.monotonic() + DEADLINE
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if call(base, path)[0] == 200:
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, f"{base}{path} never ready\n{log.read_text()}"
            time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for log in self.logs:
            log.close()


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    for store in make_store("postgresql", tmp_path):
        running = Topology(store, tmp_path)
        try:
            yield running
        finally:
            running.stop()


def test_compose_topology_on_loopback(topology: Topology) -> None:
    started = time.monotonic()
    # The one-shot, exactly as compose runs it (and again: it is idempotent).
    for _ in range(2):
        migrate = subprocess.run(
            topology.argv("migrate"),
            cwd=topology.tmp,
            env=topology.env("migrate"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert migrate.returncode == 0, migrate.stderr
        assert "schema ready" in migrate.stdout

    witness = topology.start("witness", topology.witness_port, "/")
    replicas = [topology.start("api", free_port(), "/readyz") for _ in range(2)]
    for base in [witness, *replicas]:
        topology.wait(base)
    for base in replicas:
        assert call(base, "/healthz") == (200, {"status": "ok"})

    issued = subprocess.run(
        [*LEDGER, "tokens", "create", "--name", "ops", "--role", "recorder"],
        cwd=topology.tmp,
        env=topology.env("api"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert issued.returncode == 0, issued.stderr
    (token,) = issued.stdout.split()
    witness_key = CosignatureVerifier.from_vkey(topology.variables["WITNESS_VKEY"])

    # Write through each replica, read through the other.
    for writer, reader in (replicas, replicas[::-1]):
        status, receipt = call(writer, "/processes", {"title": f"Via {writer}"}, token)
        assert status == 201, receipt
        assert verify_cosignatures(receipt["checkpoint"], [witness_key], 1), receipt["checkpoint"]
        pid = receipt["subject"]["id"]
        deadline = time.monotonic() + DEADLINE
        while True:
            status, read = call(reader, f"/processes/{pid}")
            if status == 200 and read.get("as_of_index", -1) >= receipt["index"]:
                break
            assert time.monotonic() < deadline, (status, read)
            time.sleep(0.1)
        assert read["title"] == f"Via {writer}"
    # Both replicas serve one log.
    sizes = {call(base, "/readyz")[1]["log_size"] for base in replicas}
    assert len(sizes) == 1
    assert time.monotonic() - started < 40
