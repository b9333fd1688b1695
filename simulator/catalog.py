"""``p8815-sim scenarios``: the shipped scenarios, by name, with one line each."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from simulator.schema.load import shipped_scenarios


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``scenarios`` subcommand."""
    sub.add_parser(
        "scenarios", help="list the shipped scenarios (use a name wherever a file is taken)"
    )


def describe(path: Path) -> str:
    """A scenario file's ``description:``, else the first line of its top comment."""
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if isinstance(data, dict) and str(data.get("description") or "").strip():
        return str(data["description"]).strip()
    for line in text.splitlines():
        if line.startswith("#") and line.lstrip("# ").strip():
            return line.lstrip("# ").strip()
    return ""


def run(args: argparse.Namespace) -> int:
    """Print each shipped scenario's name and description."""
    shipped = shipped_scenarios()
    width = max(map(len, shipped))
    for name, path in shipped.items():
        print(f"{name:<{width}}  {describe(path)}")
    return 0
