"""The command declarations (ledger.domain) are not stricter than what the ledger records
today: every command the demo records, and every line the benchmark's generator writes for
`ledger import`, passes ``validate`` (and is then recorded as before)."""

from __future__ import annotations

import inspect
import io
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson

from bench.generate import generate
from ledger.application import LedgerApplication
from ledger.demo import record_demo
from ledger.domain import COMMANDS, validate
from tests.conftest import Store


def _checking(seen: Counter[str]) -> type[LedgerApplication]:
    """The application, with every declared command validated before it runs."""

    def wrap(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(method)

        def checked(self: LedgerApplication, *args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(self, *args, **kwargs).arguments
            validate(name, {k: v for k, v in bound.items() if k not in ("self", "actor")})
            seen[name] += 1
            return method(self, *args, **kwargs)

        return checked

    members = {name: wrap(name, getattr(LedgerApplication, name)) for name in COMMANDS}
    return type("CheckedApplication", (LedgerApplication,), members)


def test_every_command_the_demo_records_is_valid(store: Store) -> None:
    seen: Counter[str] = Counter()
    app = _checking(seen)(store.settings)
    try:
        record_demo(app)
    finally:
        app.close()
    assert sum(seen.values()) > 100
    assert {"schedule_meeting", "record_meeting_held", "record_meeting_outcome"} <= set(seen)
    assert {"table_proposal", "propose_amendment", "decide_amendment"} <= set(seen)


def test_every_line_the_generator_writes_is_valid() -> None:
    out = io.BytesIO()
    counts = generate(out, 3000, seed=7)
    lines = out.getvalue().splitlines()
    for number, raw in enumerate(lines, 1):
        line = orjson.loads(raw)
        try:
            validate(line["command"], line["args"])
        except Exception as exc:
            raise AssertionError(f"line {number} ({line['command']}): {exc}") from exc
    assert len(counts) >= 15
