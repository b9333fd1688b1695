"""The model core imports numpy and the standard library only: no schema, no rest of the package."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

MODEL = Path(__file__).resolve().parent.parent / "simulator" / "model"
ALLOWED = frozenset(sys.stdlib_module_names) | {"numpy"}


def foreign_imports(source: str) -> list[str]:
    """The modules a model source imports that are neither stdlib, numpy nor the model."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "simulator":  # from simulator import scenario
                names += [f"simulator.{a.name}" for a in node.names]
            else:
                names.append(node.module)
    return [
        n
        for n in names
        if not (n == "simulator.model" or n.startswith("simulator.model."))
        and n.split(".")[0] not in ALLOWED
    ]


@pytest.mark.parametrize(
    ("source", "foreign"),
    [
        ("from simulator.scenario import CrowdConfig", ["simulator.scenario"]),
        ("import pydantic", ["pydantic"]),
        ("from simulator import scenario, model", ["simulator.scenario"]),
        ("if TYPE_CHECKING:\n    from simulator.device import Device", ["simulator.device"]),
        ("from simulator.model.bins import IntArray\nfrom . import rng", []),
        ("import numpy.typing as npt\nfrom datetime import date", []),
    ],
)
def test_the_check_finds_foreign_imports(source: str, foreign: list[str]) -> None:
    assert foreign_imports(source) == foreign


def test_model_modules_import_only_numpy_stdlib_and_the_model() -> None:
    files = sorted(MODEL.glob("*.py"))
    assert len(files) >= 9
    found = {
        f.name: bad for f in files if (bad := foreign_imports(f.read_text(encoding="utf-8")))
    }
    assert found == {}


# ---- only the edge imports the API ---------------------------------------------------------
PACKAGE = MODEL.parent
#: What may import simulator.api: the API itself and the entry points that serve or render it
#: (export writes the HTTP export's exact bytes with the API's own validator and encoders).
API_USERS = frozenset({"server.py", "testing.py", "plugin.py", "cli.py", "export.py"})


def runtime_imports(source: str) -> list[str]:
    """The modules a source imports at run time (``if TYPE_CHECKING:`` blocks left out)."""
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
            names.extend(f"{node.module}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return names


def imports_api(source: str) -> bool:
    """Whether a source imports simulator.api (or a module of it) at run time."""
    names = runtime_imports(source)
    return any(n == "simulator.api" or n.startswith("simulator.api.") for n in names)


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("from simulator.api.faults import Faults", True),
        ("from simulator import api", True),
        ("import simulator.api.render as r", True),
        ("def f():\n    from simulator.api import a3dpc", True),
        ("if TYPE_CHECKING:\n    from simulator.api.app import AUTH", False),
        ("from simulator.apis import x\nfrom simulator.fleet import Fleet", False),
    ],
)
def test_the_check_finds_api_imports(source: str, found: bool) -> None:
    assert imports_api(source) is found


def test_nothing_below_the_api_imports_it() -> None:
    files = [
        f
        for f in sorted(PACKAGE.rglob("*.py"))
        if f.relative_to(PACKAGE).parts[0] != "api"
        and not (f.parent == PACKAGE and f.name in API_USERS)
    ]
    assert len(files) >= 30
    bad = [str(f.relative_to(PACKAGE)) for f in files if imports_api(f.read_text("utf-8"))]
    assert bad == []
