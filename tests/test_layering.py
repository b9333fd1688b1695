"""The model core imports numpy and the standard library only: no schema, no rest of the package."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator
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
        ("from simulator.schema.scenario import CrowdConfig", ["simulator.schema.scenario"]),
        ("import pydantic", ["pydantic"]),
        ("from simulator import schema, model", ["simulator.schema"]),
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
    found = {f.name: bad for f in files if (bad := foreign_imports(f.read_text(encoding="utf-8")))}
    assert found == {}


# ---- no import cycles in the package ---------------------------------------------------------

PACKAGE = MODEL.parent

#: Import cycles that are known and accepted, each as the set of its modules (none today).
KNOWN_CYCLES: frozenset[frozenset[str]] = frozenset()


def module_names(root: Path) -> dict[str, Path]:
    """Every module of the package under ``root``, by dotted name (a package by its own)."""
    names: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _type_checking(node: ast.If) -> bool:
    """Whether the test of an ``if`` is ``TYPE_CHECKING`` (or ``typing.TYPE_CHECKING``)."""
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(nodes: Iterable[ast.AST]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import among ``nodes``, at any depth, except in ``if TYPE_CHECKING:`` bodies."""
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _type_checking(node):
            yield from _import_nodes(node.orelse)
        else:
            yield from _import_nodes(ast.iter_child_nodes(node))


def imports_of(source: str, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The modules of ``known`` that a module's source imports (lazily or not)."""
    package = module if is_package else module.rpartition(".")[0]
    out: set[str] = set()
    for node in _import_nodes(ast.parse(source).body):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
            continue
        base = node.module or ""
        if node.level:
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*parts, *([node.module] if node.module else [])])
        out |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return {m for m in out if m in known and m != module}


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    names = module_names(root)
    known = set(names)
    return {
        m: imports_of(p.read_text(encoding="utf-8"), m, p.name == "__init__.py", known)
        for m, p in names.items()
    }


def cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: set[frozenset[str]] = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.add(frozenset([v, *component]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_check_finds_lazy_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "from pkg import b\n",
        "b.py": "def f():\n    from pkg.sub.c import x\n",
        "sub/__init__.py": "",
        "sub/c.py": "from .. import a\nfrom typing import TYPE_CHECKING\n",
        "d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import e\n",
        "e.py": "import pkg.d\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text, encoding="utf-8")
    graph = import_graph(pkg)
    assert graph["pkg.sub.c"] == {"pkg.a"}
    assert graph["pkg.d"] == set()
    assert cycles(graph) == {frozenset({"pkg.a", "pkg.b", "pkg.sub.c"})}


def test_the_package_has_no_import_cycles() -> None:
    graph = import_graph(PACKAGE)
    assert len(graph) >= 40
    assert cycles(graph) - KNOWN_CYCLES == set()


# ---- only the edge imports the API ---------------------------------------------------------
PACKAGE = MODEL.parent
#: What may import simulator.api: the API itself and the entry points that serve or render it
#: (export writes the HTTP export's exact bytes with the API's own validator and encoders).
API_USERS = frozenset({"server.py", "testing.py", "plugin.py", "cli.py", "export.py", "workers.py"})


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
