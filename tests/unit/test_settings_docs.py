"""docs/OPERATING.md's configuration reference names every setting, its default and meaning."""

from __future__ import annotations

import re
from pathlib import Path

from ledger.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _default(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def test_every_setting_is_documented_with_its_default_and_meaning() -> None:
    text = (ROOT / "docs" / "OPERATING.md").read_text()
    rows = {
        m.group(1): (m.group(2), m.group(3))
        for m in re.finditer(r"^\| `(LEDGER_[A-Z_]+)` \| `?([^|`]*?)`? \| (.*) \|$", text, re.M)
    }
    documented = set(rows)
    expected = {f"LEDGER_{name.upper()}" for name in Settings.model_fields}
    assert documented == expected
    for name, info in Settings.model_fields.items():
        default, meaning = rows[f"LEDGER_{name.upper()}"]
        assert default == _default(info.default), name
        assert info.description, f"{name} has no description"
        assert meaning == info.description, name
