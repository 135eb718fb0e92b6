"""Schemathesis over the OpenAPI document, against a real `ledger serve` on loopback.

Every operation, public and official (with an admin token, so writes get past auth and their
bodies are exercised), on SQLite and PostgreSQL: no 5xx, every status code documented, every
body and content type as the schema says.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi import checks as openapi_checks

from ledger.actors import Actor
from ledger.application import LedgerApplication
from tests.api.test_log_api import Server
from tests.conftest import BACKENDS, Store, make_store
from tests.helpers import record_sample

EXAMPLES = 15
CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.response_headers_conformance,
]


@pytest.fixture(params=BACKENDS, scope="module")
def served_schema(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, str, str]]:
    """A server over a store with a recorded sample, its schema, and an admin token."""
    tmp_path: Path = tmp_path_factory.mktemp(f"schema-{request.param}")
    for store in make_store(request.param, tmp_path):
        app = LedgerApplication(store.settings)
        record_sample(app, amendments=3)
        _, token = app.issue_token(
            principal="schemathesis", org="", role="admin", actor=Actor("setup", "admin", "")
        )
        app.close()
        server = Server(_unlimited(store))
        try:
            schema = schemathesis.openapi.from_url(server.base + "/openapi.json")
            yield schema, server.base, token
        finally:
            server.stop()


def _unlimited(store: Store) -> Store:
    """The same store, served without the per-token write limit (the test writes fast)."""

    class Unlimited(Store):
        def env(self) -> dict[str, str]:
            return {**super().env(), "LEDGER_WRITE_RATE": "0"}

    return Unlimited(store.kind, store.settings, store.schema)


def test_api_conforms_to_its_schema(served_schema: tuple[Any, str, str]) -> None:
    """Generated requests for every operation: collect every failure, then report them all."""
    schema, base, token = served_schema
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: Any) -> None:
            case.call_and_validate(base_url=base, headers=headers, checks=CHECKS)

        try:
            exercise()
        except (Exception, BaseExceptionGroup) as exc:  # every failure, and its operation
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:2000])
    assert operations >= 40, f"only {operations} operations in the schema"
    assert not failures, "\n\n".join(failures)
