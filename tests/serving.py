"""Run ``p8815-sim serve`` as a real process in tests: start, wait for it, stop it."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

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
