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
