"""Times given on the command line, shared by its subcommands."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from simulator.clock import check_time


def parse_start(text: str) -> float:
    """Parse an ISO 8601 time (a time without an offset is UTC) to epoch seconds."""
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--start: {text!r} is not ISO 8601, e.g. 2024-05-04T10:00:00+02:00"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    try:
        return check_time(t.timestamp(), "--start")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
