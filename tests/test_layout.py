"""The layout DESIGN.md promises, checked on the source: each domain's problem types live in its
`problems.py`, beside the exceptions that carry them, and its answers' models outside its
router, so no router imports another: a router that needs another domain's problem types or
answers imports that domain's problems or views module.

Read with `ast`, not by importing: what is checked is what the files say, whatever a module
happens to pull in when imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HUB = Path(__file__).resolve().parent.parent / "hub"
PROBLEM_DOMAINS = ("card", "connectors", "permits", "schemas", "verification")


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _calls(tree: ast.AST, name: str) -> list[int]:
    """The lines where `tree` calls a function by the bare name `name`."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name
    ]


def _module(path: Path) -> str:
    return ".".join(path.relative_to(HUB.parent).with_suffix("").parts)


def _imported(tree: ast.Module) -> set[str]:
    """Every module `tree` imports, `from hub.x import api` counted as `hub.x.api`."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _routers(under: Path) -> list[Path]:
    """The modules under `under` that build an APIRouter: the domains' api modules."""
    return sorted(path for path in under.rglob("*.py") if _calls(_tree(path), "APIRouter"))


@pytest.mark.parametrize("domain", PROBLEM_DOMAINS)
def test_a_domains_problem_types_are_defined_in_its_problems_module(domain: str) -> None:
    routers = _routers(HUB / domain)
    assert routers, domain
    defined = {str(path.relative_to(HUB)): _calls(_tree(path), "problem_type") for path in routers}
    assert {path: lines for path, lines in defined.items() if lines} == {}
    assert _calls(_tree(HUB / domain / "problems.py"), "problem_type")


def test_no_router_imports_another() -> None:
    routers = {_module(path): path for path in _routers(HUB)}
    assert {"hub.permits.api", "hub.connectors.api", "hub.connectors.deadletters"} <= set(routers)
    crossings = {
        name: sorted(_imported(_tree(path)) & set(routers) - {name})
        for name, path in routers.items()
    }
    assert {name: imported for name, imported in crossings.items() if imported} == {}
