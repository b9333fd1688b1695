"""Run ``p8815-sim serve`` as a real process that says when it is ready (``--ready-file``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Served:
    """A running serve process, its ready document and its output files."""

    proc: subprocess.Popen[bytes]
    ready: dict[str, Any]
    out: Path
    err: Path

    def url(self, index: int = 0) -> str:
        """The URL of the ``index``-th device."""
        return str(self.ready["devices"][index]["url"])

    @property
    def token(self) -> str:
        """The control plane's token."""
        return str(self.ready["control"]["token"])


def wait_ready(proc: subprocess.Popen[bytes], ready: Path, err: Path, timeout: float = 60) -> Any:
    """The ready file's document once it is there (the process must not exit before)."""
    deadline = time.monotonic() + timeout
    while not ready.exists():
        assert proc.poll() is None, err.read_text()
        assert time.monotonic() < deadline, "the simulator did not get ready"
        time.sleep(0.05)
    return json.loads(ready.read_text())


@contextmanager
def serve_ready(
    tmp: Path,
    *args: str,
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
    command: tuple[str, ...] = ("-m", "simulator", "serve"),
) -> Iterator[Served]:
    """``serve --port 0 --ready-file F ARGS``; on leaving, SIGTERM and a check of a clean exit."""
    ready, out, err = tmp / "ready.json", tmp / "out.txt", tmp / "err.txt"
    ready.unlink(missing_ok=True)
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(
            [sys.executable, *command, "--port", "0", "--ready-file", str(ready), *args],
            stdout=o,
            stderr=e,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            preexec_fn=preexec_fn,
        )
    try:
        yield Served(proc, wait_ready(proc, ready, err), out, err)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    text = err.read_text()
    assert proc.returncode == 0, text
    assert "Traceback" not in text, text
