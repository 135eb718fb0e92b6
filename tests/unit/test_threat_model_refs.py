"""docs/THREAT-MODEL.md: every test file and test it cites as proof exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_cited_test_exists() -> None:
    text = (ROOT / "docs" / "THREAT-MODEL.md").read_text()
    cited = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", text)
    assert len(cited) > 15
    for path, name in cited:
        source = (ROOT / path).read_text()
        if name:
            assert re.search(rf"^def {name}\(", source, re.M), f"{path}::{name} is missing"
