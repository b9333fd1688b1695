"""Every core: ``serve --workers K`` runs K worker processes, each serving a shard of the fleet.

The supervisor starts worker *j* as ``p8815-sim serve ... --shard j/K`` (with ``--shard i/N``
too: shard ``i + N*j`` of ``N*K``, a part of shard i), each with a ready file and a state
file of its own and the supervisor's wall time as its clock's anchor, so a fixed start runs
in step everywhere. Once every worker is ready it names them to each other (the peers file
of :mod:`simulator.api.fanout`, so one control plane reaches all), writes one ready file for
all the devices and prints one readiness line. SIGINT and SIGTERM stop every worker; a
worker that exits (at start-up too) stops the others and the supervisor exits non-zero,
naming that worker and its last words.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import signal
import sys
import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.api.fanout import PEERS_ENV, peers_document
from simulator.clock import wall_time
from simulator.schema.scenario import Scenario, ScenarioTLSConfig, fleet_devices
from simulator.tls import CertificateAuthority

#: The environment variable giving a worker's clock the supervisor's wall time as its anchor.
EPOCH_ENV = "P8815_SIM_WORKER_EPOCH"
#: The environment variable giving the workers the run's one CA (certificate and key paths,
#: separated by os.pathsep), so that one CA file verifies every worker's devices.
CA_ENV = "P8815_SIM_WORKER_CA"
#: How long a worker may take to stop before it is killed.
STOP_GRACE = 20.0
#: How often the supervisor looks for the workers' ready files.
POLL = 0.05

WriteDoc = Callable[[str, dict[str, Any]], None]


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def parse_workers(text: str) -> int:
    """Parse ``--workers``: a number >= 1, or ``auto`` (one per core)."""
    if text.strip().lower() == "auto":
        return cores()
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--workers: {text!r} is not a number >= 1 or 'auto'")
    return int(text)


def wall_anchor(environ: dict[str, str] | os._Environ[str]) -> float | None:
    """The wall time a worker's clock counts from (None: its own start-up)."""
    raw = environ.get(EPOCH_ENV)
    try:
        return None if raw is None else float(raw)
    except ValueError:
        return None


def sub_shard(shard: tuple[int, int], count: int, j: int) -> tuple[int, int]:
    """Worker ``j``'s part of ``shard`` when ``count`` workers split it."""
    i, n = shard
    return i + n * j, n * count


def sites_in(scenario: Scenario, shard: tuple[int, int]) -> int:
    """How many sites ``shard`` serves (a site's doors stay together, in one worker)."""
    return len(scenario.site_groups(shard))


def state_file(db: str, shard: tuple[int, int]) -> str:
    """A worker's own SQLite file: ``state.db`` -> ``state.shard-1-of-4.db``."""
    if db == ":memory:":
        return db
    p = Path(db)
    return str(p.with_name(f"{p.stem}.shard-{shard[0]}-of-{shard[1]}{p.suffix}"))


@dataclass
class Worker:
    """A worker process: its shard, ready file, process and the tail of what it said."""

    shard: tuple[int, int]
    ready: Path
    proc: asyncio.subprocess.Process | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=8))
    relay: asyncio.Task[None] | None = None

    def name(self) -> str:
        """How messages name the worker."""
        pid = "" if self.proc is None else f", pid {self.proc.pid}"
        return f"worker {self.shard[0]}/{self.shard[1]}{pid}"

    def last_words(self) -> str:
        """The last line it wrote to stderr (its error, mostly)."""
        lines = [x.strip() for x in self.tail if x.strip()]
        return lines[-1].removeprefix("p8815-sim: ") if lines else "no message"


class WorkerFailed(Exception):
    """A worker exited: which one, how, and what it said last."""


def _die_with_parent() -> None:
    """In a worker: be sent SIGTERM when the supervisor dies (Linux), so none is orphaned."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


async def _relay(worker: Worker, stream: asyncio.StreamReader) -> None:
    """Copy a worker's stderr to ours, line by line, keeping its last lines."""
    while line := await stream.readline():
        sys.stderr.buffer.write(line)
        sys.stderr.flush()
        worker.tail.append(line.decode("utf-8", "replace"))


async def _start(worker: Worker, argv: list[str], env: dict[str, str], db: str) -> None:
    """Start a worker: ``serve`` with the same options, its shard, ready file and state file."""
    i, n = worker.shard
    cmd = [sys.executable, "-m", "simulator", *argv, "--workers", "1", "--shard", f"{i}/{n}"]
    cmd += ["--ready-file", str(worker.ready)]
    if db != ":memory:":
        cmd += ["--db", state_file(db, worker.shard)]
    worker.proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        preexec_fn=_die_with_parent,
    )
    assert worker.proc.stderr is not None
    worker.relay = asyncio.create_task(_relay(worker, worker.proc.stderr))


async def _exited(worker: Worker) -> None:
    """Wait for a worker to exit; raise :class:`WorkerFailed` naming it."""
    assert worker.proc is not None
    code = await worker.proc.wait()
    if worker.relay is not None:
        await worker.relay
    how = f"status {code}" if code >= 0 else f"signal {-code}"
    raise WorkerFailed(f"{worker.name()} exited ({how}): {worker.last_words()}")


async def _stop(workers: list[Worker]) -> None:
    """SIGTERM every worker still running; SIGKILL those still there after the grace time."""
    procs = [w.proc for w in workers if w.proc is not None and w.proc.returncode is None]
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            p.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), STOP_GRACE)
    except TimeoutError:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
        await asyncio.gather(*(p.wait() for p in procs))
    await asyncio.gather(*(w.relay for w in workers if w.relay is not None))


def with_shared_ca(scenario: Scenario, environ: dict[str, str] | os._Environ[str]) -> Scenario:
    """A worker's scenario: issuing from the supervisor's CA unless the scenario has its own."""
    raw = environ.get(CA_ENV)
    if not raw or scenario.tls is not None:
        return scenario
    cert, key = raw.split(os.pathsep, 1)
    return scenario.model_copy(update={"tls": ScenarioTLSConfig(ca_cert=cert, ca_key=key)})


def merged_document(
    scenario: Scenario, docs: list[dict[str, Any]], workers: list[Worker], ca: str | None = None
) -> Any:
    """One ready document for all the workers: every device in fleet order, the run's CA."""
    index = fleet_devices(scenario.devices).index_of
    devices = sorted((d for doc in docs for d in doc["devices"]), key=lambda d: index(d["id"]) or 0)
    first = docs[0]
    return {
        "scenario": first["scenario"],
        "control": first["control"],
        "ca": ca if ca is not None else first.get("ca"),
        "devices": devices,
        "workers": [
            {"shard": f"{w.shard[0]}/{w.shard[1]}", "control": doc["control"]["url"]}
            for w, doc in zip(workers, docs, strict=True)
        ],
    }


def readiness_line(doc: dict[str, Any], count: int) -> str:
    """The line that says every worker is up, naming where (the first and last devices)."""
    urls = [f"{d['id']} {d['url']}" for d in doc["devices"]]
    where = ", ".join(urls) if len(urls) <= 4 else f"{', '.join(urls[:2])}, ..., {urls[-1]}"
    return (
        f"p8815-sim: {len(urls)} device(s) of '{doc['scenario']}' listening in {count} "
        f"worker processes: {where}; Ctrl-C stops"
    )


async def _ready(workers: list[Worker], stop: asyncio.Event) -> list[dict[str, Any]] | None:
    """Every worker's ready document once all are there (None: stopped before)."""
    while not stop.is_set():
        for w in workers:
            if w.proc is not None and w.proc.returncode is not None:
                await _exited(w)
        if all(w.ready.exists() for w in workers):
            return [json.loads(w.ready.read_text()) for w in workers]
        await asyncio.sleep(POLL)
    return None


@dataclass
class Plan:
    """What the supervisor runs: the workers' command line, environment and files."""

    argv: list[str]
    env: dict[str, str]
    db: str
    ready_file: str | None
    write: WriteDoc
    note: str
    ca: str | None = None


async def supervise(scenario: Scenario, workers: list[Worker], plan: Plan) -> None:
    """Run the workers until SIGINT/SIGTERM; raise :class:`WorkerFailed` if one exits."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        for w in workers:
            await _start(w, plan.argv, plan.env, plan.db)
        docs = await _ready(workers, stop)
        if docs is None:
            return
        origins = [str(d["control"]["url"] or "").removesuffix("/sim/v1/") for d in docs]
        ids = [[d["id"] for d in doc["devices"]] for doc in docs]
        peers = [(w.shard, o, i) for w, o, i in zip(workers, origins, ids, strict=True)]
        plan.write(plan.env[PEERS_ENV], peers_document(peers))
        doc = merged_document(scenario, docs, workers, plan.ca)
        if plan.ready_file:
            try:
                plan.write(plan.ready_file, doc)
            except OSError as e:
                raise WorkerFailed(f"--ready-file {plan.ready_file}: {e.strerror or e}") from None
        if plan.note:
            print(plan.note, flush=True)
        print(readiness_line(doc, len(workers)), flush=True)
        watch = [asyncio.create_task(_exited(w)) for w in workers]
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopped, *watch], return_when=asyncio.FIRST_COMPLETED)
        for t in (stopped, *watch):
            t.cancel()
        if stop.is_set():  # Ctrl-C reaches the workers too: they may have exited first
            return
        for t in done:
            if t is not stopped and not t.cancelled() and (failure := t.exception()) is not None:
                raise failure
    finally:
        await _stop(workers)


def run(
    args: argparse.Namespace,
    scenario: Scenario,
    argv: list[str],
    token: str | None,
    note: str,
    write: WriteDoc,
) -> int:
    """``serve --workers K``: supervise K workers of the fleet (fewer if it has fewer sites)."""
    count = min(args.workers, max(sites_in(scenario, args.shard), 1))
    with tempfile.TemporaryDirectory(prefix="p8815-sim-workers.") as tmp:
        env = {**os.environ, PEERS_ENV: str(Path(tmp) / "peers.json")}
        env[EPOCH_ENV] = repr(wall_time())
        if token is not None:
            env["P8815_SIM_CONTROL_TOKEN"] = token
        ca = None
        if not args.no_https and scenario.tls is None:  # one CA for every worker's devices
            ca, key = CertificateAuthority.generate().write(Path(tmp))
            env[CA_ENV] = os.pathsep.join((ca, key))
        workers = [
            Worker(sub_shard(args.shard, count, j), Path(tmp) / f"ready-{j}.json")
            for j in range(count)
        ]
        plan = Plan(argv, env, args.db, args.ready_file, write, note, ca)
        try:
            asyncio.run(supervise(scenario, workers, plan))
        except WorkerFailed as e:
            print(f"p8815-sim: {e}", file=sys.stderr)
            return 1
    return 0
