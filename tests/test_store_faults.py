"""A database the simulator cannot write is refused at start-up, naming the file."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.store import Action, Store, StoreError
from tests.serving import free_port

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def without_root_overrides() -> None:
    """In the child before exec: give up root's right to ignore file permissions.

    A root process (as in CI) may write a 0444 file; without these two capabilities it
    meets permissions like any user, so the read-only file is really read-only to it.
    """
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.fixture
def read_only_db(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A complete simulator database, chmod 0444 (its directory 0555 if asked)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "RO.db"
    store = Store(db)
    store.add(Action("d", 0.0, "adjust", 1))
    store.close()
    db.chmod(0o444)
    if request.param == "directory too":
        folder.chmod(0o555)
    yield db
    folder.chmod(0o755)


@pytest.mark.parametrize("read_only_db", ["file", "directory too"], indirect=True)
def test_serve_refuses_a_read_only_db(read_only_db: Path) -> None:
    port = str(free_port())
    proc = subprocess.run(
        [sys.executable, "-m", "simulator", "serve", "--db", str(read_only_db), "--port", port],
        preexec_fn=without_root_overrides,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2, proc.stderr
    assert str(read_only_db) in proc.stderr
    assert "not writable" in proc.stderr or "readonly" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_locked_store_fails_fast_and_a_later_write_works(tmp_path: Path) -> None:
    import sqlite3
    import time

    from simulator.store import StoreBusy

    store = Store(tmp_path / "s.db")
    other = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    t = time.perf_counter()
    with pytest.raises(StoreBusy, match="locked"):
        store.add(Action("d", 1.0, "adjust", 3))
    with pytest.raises(StoreBusy):
        store.outbox_produce([("d", 60.0, "{}")], {"d": 60.0}, {"d": 10})
    assert time.perf_counter() - t < 1.0  # a few ms each, not SQLite's default 5 s
    assert store.outbox_size("d") == 0 and store.push_cursor("d") is None  # nothing half-done
    assert store.actions("d", "adjust", 0, 10) == []
    other.execute("COMMIT")
    store.outbox_produce([("d", 60.0, "{}")], {"d": 60.0}, {"d": 10})
    assert store.outbox_size("d") == 1 and store.push_cursor("d") == 60.0
    assert isinstance(StoreBusy("x"), StoreError)
    store.close()
    other.close()
