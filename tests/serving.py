"""Run ``p8815-sim serve`` as a real process in tests: start it, wait for it (for its first
answer, or for its ready file), stop it."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from requests.auth import HTTPDigestAuth


def free_port(count: int = 1) -> int:
    """A port p with p .. p + count - 1 all free on 127.0.0.1 right now.

    Drawn below the kernel's ephemeral range (32768 and up), where outgoing connections of
    other tests never take a port between this check and the simulator binding it.
    """
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32000 - count)
        socks = [socket.socket() for _ in range(count)]
        try:
            for i, s in enumerate(socks):
                s.bind(("127.0.0.1", base + i))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    raise AssertionError(f"no {count} neighbouring free ports")


@contextmanager
def serving(*args: str) -> Iterator[subprocess.Popen[str]]:
    """``python -m simulator serve ARGS``; on leaving, SIGTERM and a check of a clean exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def first_answer(
    proc: subprocess.Popen[str], url: str, user: str = "viewer", timeout: float = 30
) -> requests.Response:
    """The first answer of ``url`` once the server listens (Digest as ``user``)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return requests.get(url, auth=HTTPDigestAuth(user, user), timeout=5)
        except requests.ConnectionError:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, f"{url} did not answer"
            time.sleep(0.1)


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
