"""Every module's ``__all__`` names exactly its public definitions."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts)
    for package in ("ledger", "api", "projections")
    for p in (ROOT / package).rglob("*.py")
    if p.name != "__init__.py"
)


def _is_route(decorator: ast.expr) -> bool:
    """``@router.get(...)`` and friends: handlers reached through the router, not imports."""
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(target, ast.Attribute) and getattr(target.value, "id", "") == "router"


@pytest.mark.parametrize("name", MODULES)
def test_all_is_complete_and_exists(name: str) -> None:
    """Names in __all__ exist, and every public top-level class or function is listed."""
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        pytest.skip(f"{name} has no __all__ (a script or a routes module)")
    for item in exported:
        assert hasattr(module, item), f"{name}.__all__ names missing {item}"
    tree = ast.parse(Path(module.__file__ or "").read_text())
    defined = {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.ClassDef)
        and not node.name.startswith("_")
        and not any(_is_route(d) for d in node.decorator_list)
    }
    assert defined <= set(exported), f"{name}.__all__ lacks {sorted(defined - set(exported))}"
