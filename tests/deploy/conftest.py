"""Shared helpers for the deploy tests: the files under deploy/ and the validators."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SYSTEMD = DEPLOY / "systemd"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"

CI = os.environ.get("CI", "").lower() == "true"


def missing(reason: str) -> None:
    """Skip for a missing validator on a developer's machine; fail under CI=true."""
    if CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def require_module(name: str, dist: str) -> ModuleType:
    """Import a validator library, or skip (fail under CI) naming the package to install."""
    try:
        return __import__(name)
    except ImportError:
        missing(f"{name} is not installed (pip install {dist}; it belongs in the dev extra)")
        raise  # unreachable: missing() raises


def require_tool(name: str, hint: str) -> str:
    """A validator executable next to this Python (the venv) or on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        missing(f"{name} not found ({hint})")
    assert found is not None
    return found


def load_yaml_all(path: Path) -> list[Any]:
    yaml = require_module("yaml", "pyyaml")
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def load_yaml(path: Path) -> Any:
    (doc,) = load_yaml_all(path)
    return doc


_VAR = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: Any, variables: dict[str, str]) -> Any:
    """Compose's variable interpolation (${VAR}, ${VAR:-default}, ${VAR:?error}, $$)."""
    if isinstance(value, dict):
        return {k: interpolate(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, variables) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        got = variables.get(name)
        if op in (":-", "-") and (got is None or (op == ":-" and got == "")):
            return arg
        if op in (":?", "?") and (got is None or (op == ":?" and got == "")):
            raise KeyError(f"compose needs {name}: {arg}")
        return got or ""

    return _VAR.sub(one, value)
