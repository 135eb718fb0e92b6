"""`ledger commands`, run as a user runs it: every declared command, its fields, types and
role, as text, JSON and the Markdown of docs/COMMANDS.md."""

from __future__ import annotations

import os
import re

import orjson

from ledger.domain import COMMANDS
from tests.integration.test_cli import ROOT, ledger


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}


def test_commands_lists_every_declared_command_with_its_fields_and_role() -> None:
    """Every command, including those without a docstring, that only `ledger import` takes
    (record_consultation_response, embargo_publication) and that only HTTP takes."""
    result = ledger(_env(), "commands")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    listed = re.findall(r"^([a-z_]+) {2,}", result.stdout, flags=re.MULTILINE)
    assert listed == list(COMMANDS)
    blocks = re.split(r"^(?=[a-z_]+ {2,})", result.stdout, flags=re.MULTILINE)[1:]
    for block, c in zip(blocks, COMMANDS.values(), strict=True):
        assert block.startswith(f"{c.name} ")
        assert c.summary in block
        assert f"{c.method} {c.path}" in block
        assert (
            "role: " + " or ".join(r for r in ("recorder", "publisher", "admin") if r in c.roles)
            in block
        )
        for f in c.fields:
            assert re.search(rf"^ +{f.name} +{re.escape(f.type.describe())}", block, re.M), (
                c.name,
                f.name,
            )
    assert "record_consultation_response" in listed
    assert "embargo_publication" in listed
    meeting = blocks[list(COMMANDS).index("schedule_meeting")]
    assert "one of on_record, non_attributed, chatham_house, private" in meeting
    assert "RFC 3339 date-time with offset" in meeting


def test_commands_json_is_the_registry() -> None:
    result = ledger(_env(), "commands", "--json")
    assert result.returncode == 0, result.stderr
    found = orjson.loads(result.stdout)
    assert [c["name"] for c in found] == list(COMMANDS)
    for shown, c in zip(found, COMMANDS.values(), strict=True):
        assert shown == c.as_json()
        assert [f["name"] for f in shown["fields"]] == [f.name for f in c.fields]
    outcome = found[list(COMMANDS).index("record_meeting_outcome")]
    items = outcome["fields"][1]
    assert items["items"]["type"] == "object"
    kind = items["items"]["fields"][0]
    assert kind["name"] == "kind"
    assert kind["values"] == ["decision", "action", "agreement", "disagreement", "option"]


def test_commands_markdown_is_docs_commands_md() -> None:
    result = ledger(_env(), "commands", "--markdown")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (ROOT / "docs" / "COMMANDS.md").read_text(encoding="utf-8")


def test_commands_takes_one_shape() -> None:
    result = ledger(_env(), "commands", "--json", "--markdown")
    assert result.returncode != 0
    assert "not allowed with argument" in result.stderr
    assert "Traceback" not in result.stderr
