"""The layout DESIGN.md promises, checked on the source: each domain's problem types live in its
`problems.py`, beside the exceptions that carry them, and its answers' models outside its
router, so no router imports another: a router that needs another domain's problem types or
answers imports that domain's problems or views module.

Read with `ast`, not by importing: what is checked is what the files say, whatever a module
happens to pull in when imported.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

HUB = Path(__file__).resolve().parent.parent / "hub"
PROBLEM_DOMAINS = ("card", "connectors", "permits", "schemas", "verification")
"""The domains with routes; publishing has problem types but no routes of its own."""


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


ENTRY_POINTS = ("hub.app", "hub.cli", "hub.deps", "hub.jobs", "hub.demo", "hub.demo_activity")
"""What may take the whole Hub besides the routers: the app, the command line, the routers'
dependencies, the scheduled jobs and the demo loader, which each start a unit of work."""


def test_services_take_bundles_not_the_hub() -> None:
    """A service names what it needs (permits' Lifecycle, Verification, Offline, Exchange,
    Outbound, card's Issuer), built by the composition root; only entry points see the Hub."""
    routers = {_module(path) for path in _routers(HUB)}
    takers = {
        _module(path) for path in HUB.rglob("*.py") if "hub.composition" in _imported(_tree(path))
    }
    assert "hub.permits.api" in takers
    assert takers - routers - set(ENTRY_POINTS) == set()


def test_no_test_module_imports_another() -> None:
    """Shared builders live in tests/factories.py and the packages' helpers modules: a test
    module importing another's runs that module's fixtures and tests' imports, and ties two
    files that change for different reasons."""
    tests = HUB.parent / "tests"
    modules = {
        ".".join(path.relative_to(HUB.parent).with_suffix("").parts): path
        for path in tests.rglob("test_*.py")
    }
    assert len(modules) > 50
    crossings = {
        name: sorted(_imported(_tree(path)) & set(modules)) for name, path in modules.items()
    }
    assert {name: imported for name, imported in crossings.items() if imported} == {}


@pytest.mark.parametrize("package", ["verification", "publishing"])
def test_what_builds_or_discloses_a_holder_record_imports_no_exchange_module(package: str) -> None:
    """A tap discloses what publishing builds, as the relay, the feed and a look-up send it;
    neither reaches it through the exchange's modules (only the departments' links, config)."""
    crossings = {
        path.name: sorted(
            name
            for name in _imported(_tree(path))
            if name.startswith("hub.connectors") and not name.startswith("hub.connectors.config")
        )
        for path in sorted((HUB / package).glob("*.py"))
    }
    assert {name: imported for name, imported in crossings.items() if imported} == {}


WINDOW_MAY_IMPORT = ("hub.card.layout", "hub.card.protocol", "hub.text")
"""The card's formats, which both sides speak, the bilingual `Text`; and any domain's pure
`domain` module."""


def test_the_window_imports_no_server_module() -> None:
    """The window talks to the hub over HTTP: of the hub it imports its own package, the card's
    formats and pure domain rules, never a service, a store or a router."""
    modules = {_module(path).removesuffix(".__init__") for path in HUB.rglob("*.py")}
    crossings = {}
    for path in sorted((HUB / "window").glob("*.py")):
        imported = _imported(_tree(path)) & modules
        outside = {
            name
            for name in imported
            if name.startswith("hub.")
            and not name.startswith("hub.window")
            and name not in WINDOW_MAY_IMPORT
            and not name.endswith(".domain")
            and not any(other.startswith(f"{name}.") for other in imported)  # a package
        }
        if outside:
            crossings[path.name] = sorted(outside)
    assert crossings == {}


def _loaded_after(statement: str) -> set[str]:
    """The modules a fresh interpreter has loaded after `statement`: what a command pays for
    at start-up, whatever else this test process has imported."""
    script = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return set(done.stdout.split())


def test_the_command_line_loads_only_click_until_a_command_runs() -> None:
    """`hub --help` answers at once: no settings, database, schema or web library loaded."""
    loaded = _loaded_after("import hub.cli")
    assert {module for module in loaded if module.startswith("hub")} == {"hub", "hub.cli"}
    assert not loaded & {"sqlalchemy", "pydantic", "fastapi", "jsonschema", "authlib"}


def test_a_command_s_hub_loads_no_web_framework_and_no_router() -> None:
    """`build_hub` (what `hub clients add`, `hub db upgrade` and the jobs start from) lives in
    hub.composition: no router, no FastAPI, and no IRI parser for formats nobody checks."""
    loaded = _loaded_after("from hub.composition import build_hub")
    assert not {
        module for module in loaded if module.startswith("hub.") and module.endswith(".api")
    }
    assert not loaded & {"fastapi", "starlette", "hub.app", "rfc3987_syntax", "lark"}
