"""Golden exports: a year of minute counts and occupancy peaks, pinned by their digests.

The numbers a scenario and seed produce are a contract (the same scenario and seed give
byte-identical exports, release after release). Any change to them must be deliberate: when
the model changes on purpose, regenerate with ``P8815_GOLDEN_UPDATE=1 pytest tests/test_golden.py``
and say why in the changelog.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from simulator.cli import main

ROOT = Path(__file__).resolve().parent.parent
DIGESTS = Path(__file__).with_name("golden.json")
NOW = "2025-01-01T00:00:00+00:00"

#: (scenario file, device, seed): two shipped scenarios, two seeds of the default one.
CASES = [
    ("default.yaml", "entrance", 42),
    ("default.yaml", "entrance", 7),
    ("mall.yaml", "street", 7),
]
#: (data, format, resolution): a year of minute traffic as CSV, of hourly peaks as JSON
#: (occupancy peaks come by hour or day only, as on the device).
EXPORTS = [("traffic", "csv", "minute"), ("occupancy", "json", "hour")]


def _digest(tmp_path: Path, scenario: str, device: str, seed: int, export: tuple[str, ...]) -> str:
    data, fmt, resolution = export
    out = tmp_path / f"{data}.{fmt}"
    argv = ["export", str(ROOT / "scenarios" / scenario), "--device", device]
    argv += ["--seed", str(seed), "--start", "20240101", "--end", "20241231"]
    argv += ["--resolution", resolution, "--format", fmt, "--data", data, "--now", NOW]
    assert main([*argv, "-o", str(out), "--no-progress"]) == 0
    return hashlib.sha256(out.read_bytes()).hexdigest()


def _key(scenario: str, device: str, seed: int, export: tuple[str, ...]) -> str:
    data, fmt, resolution = export
    return f"{scenario}:{device}:seed={seed}:{data}:{resolution}.{fmt}"


@pytest.mark.parametrize(("scenario", "device", "seed"), CASES)
def test_a_year_of_exports_matches_its_golden_digest(
    tmp_path: Path, scenario: str, device: str, seed: int
) -> None:
    pinned = json.loads(DIGESTS.read_text()) if DIGESTS.exists() else {}
    got = {
        _key(scenario, device, seed, e): _digest(tmp_path, scenario, device, seed, e)
        for e in EXPORTS
    }
    if os.environ.get("P8815_GOLDEN_UPDATE"):
        DIGESTS.write_text(json.dumps({**pinned, **got}, indent=2, sort_keys=True) + "\n")
        return
    for key, digest in got.items():
        assert pinned.get(key) == digest, f"{key}: the exported numbers changed"
