"""Operating the service: /metrics, request ids, structured logs, the startup line, CORS."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.settings import Settings
from tests.api.test_writes import open_api
from tests.conftest import Store


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` → value, for every sample line of a Prometheus exposition."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def test_metrics_follow_writes_views_and_verification(store: Store) -> None:
    with open_api(store) as api:
        before = samples(api.client.get("/metrics").text)
        assert before["ledger_entries_appended_total"] == 0
        for n in range(3):
            made = api.post(
                "/organisations",
                api.officials["recorder"],
                {"name": f"Org {n}", "org_kind": "academic"},
            )
            assert made.status_code == 201
        size = made.json()["index"] + 1
        api.client.get(f"/organisations/{made.json()['index']}")
        response = api.client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        after = samples(response.text)
        assert after["ledger_entries_appended_total"] == 3
        assert after["ledger_append_seconds_count"] == 3
        assert after["ledger_append_seconds_sum"] > 0
        assert after["ledger_log_size"] == size
        assert 0 <= after["ledger_checkpoint_age_seconds"] < 120
        assert after["ledger_store_up"] == 1
        lags = {k: v for k, v in after.items() if k.startswith("ledger_projection_lag_entries{")}
        assert {'view="proposals"', 'view="search"'} <= {k[k.index("{") + 1 : -1] for k in lags}
        assert all(0 <= v <= size for v in lags.values())
        created = 'ledger_http_requests_total{method="POST",route="/organisations",status="201"}'
        assert after[created] == 3
        assert "ledger_last_verify_ok" not in after  # no `ledger verify` has run yet

        verify = subprocess.run(
            [sys.executable, "-m", "ledger.cli", "verify", "--quiet"],
            env=store.env(),
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert verify.returncode == 0, verify.stderr
        verified = samples(api.client.get("/metrics").text)
        assert verified["ledger_last_verify_ok"] == 1
        assert verified["ledger_last_verify_entries"] == size


@contextmanager
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as made:
        yield made


def test_request_ids_are_echoed_or_made_and_logged_without_secrets(
    tmp_path: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_dir=tmp_path, demo=True, log_format="json")
    with client(settings) as web:
        capfd.readouterr()
        given = web.get("/healthz", headers={"X-Request-ID": "req-42.a:b"})
        assert given.headers["x-request-id"] == "req-42.a:b"
        made = web.get("/healthz")
        assert len(made.headers["x-request-id"]) == 16
        hostile = web.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
        assert hostile.headers["x-request-id"] != "bad id\twith spaces"
        web.get(
            "/proposals?secret=hunter2",
            headers={"Authorization": "Bearer olt_0123_topsecretvalue"},
        )
        problem = web.get("/proposals/not-a-proposal")
        assert problem.headers["x-request-id"]
    logged = capfd.readouterr().err
    lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("logger") == "ledger.http"]
    assert {"request_id": "req-42.a:b", "path": "/healthz", "status": 200}.items() <= (
        requests[0].items()
    )
    assert all({"time", "level", "ms", "method"} <= set(line) for line in requests)
    assert "hunter2" not in logged
    assert "topsecretvalue" not in logged
    assert any(line["status"] == 404 for line in requests)


def test_one_clear_startup_line(tmp_path: Any, capfd: pytest.CaptureFixture[str]) -> None:
    settings = Settings(data_dir=tmp_path, demo=True, log_format="json")
    with client(settings):
        pass
    lines = [json.loads(x) for x in capfd.readouterr().err.splitlines() if x.startswith("{")]
    startup = [line for line in lines if line.get("event") == "startup"]
    assert len(startup) == 1
    line = startup[0]
    assert line["backend"] == "sqlite"
    assert line["origin"] == settings.log_name
    assert line["version"] == "0.1.0"
    assert len(line["key_id"]) == 8
    assert line["key_id"] in line["message"]


def test_text_logs_and_quiet_access_log(tmp_path: Any, capfd: pytest.CaptureFixture[str]) -> None:
    settings = Settings(data_dir=tmp_path, demo=True, log_format="text", access_log=False)
    with client(settings) as web:
        web.get("/healthz")
    err = capfd.readouterr().err
    assert "GET /healthz" not in err
    assert "INFO ledger open-policy-ledger 0.1.0 serving" in err


def test_metrics_can_be_turned_off(tmp_path: Any) -> None:
    with client(Settings(data_dir=tmp_path, demo=True, metrics=False)) as web:
        assert web.get("/metrics").status_code == 404


def test_cors_only_for_named_origins(tmp_path: Any) -> None:
    origin = "https://data.example.gov"
    with client(Settings(data_dir=tmp_path / "a", demo=True)) as web:
        closed = web.get("/checkpoint", headers={"Origin": origin})
        assert "access-control-allow-origin" not in closed.headers
    settings = Settings(data_dir=tmp_path / "b", demo=True, cors_origins=[origin])
    with client(settings) as web:
        opened = web.get("/checkpoint", headers={"Origin": origin})
        assert opened.headers["access-control-allow-origin"] == origin
        other = web.get("/checkpoint", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        preflight = web.options(
            "/organisations",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 400  # writes are never allowed cross-origin
