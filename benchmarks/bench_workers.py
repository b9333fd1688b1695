"""Every core, run by hand: ``python benchmarks/bench_workers.py [--seconds 10]``.

Throughput of ``serve fleet-1000 --workers K`` for K = 1, 2 and one per core: readings
(``GET /a3dpc/api/occupancy``, a valid Digest header) of ``--devices`` devices drawn at
random from the fleet, each loaded by its own ``wrk`` (one thread, ``--connections``
connections; wrk keeps to one address, and each device has its own port). Prints requests/s
summed over the devices, the ratio to K = 1 measured in the same run, and the resident memory
of the serving processes (the supervisor and its workers). The load generator shares the
cores with the server: on a small machine the ratio understates what separate client
machines would see.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from bench_http import digest_header, proc_kib
from requests.auth import HTTPDigestAuth

ROOT = Path(__file__).resolve().parent.parent
OCC = "/a3dpc/api/occupancy"


def start(k: int, ready: Path, scenario: str) -> subprocess.Popen[bytes]:
    """``serve SCENARIO --workers K`` on free ports, clock frozen; once it is ready."""
    argv = [sys.executable, "-m", "simulator", "serve", scenario, "--port", "0"]
    argv += ["--workers", str(k), "--ready-file", str(ready), "--speed", "0"]
    argv += ["--start", "2024-06-07T12:00:00Z", "--log-level", "warning"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"serve --workers {k} did not start")
        time.sleep(0.1)
    return proc


def family(pid: int) -> list[int]:
    """A process and its children."""
    kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *(int(k) for k in kids)]


def wrk_all(urls: list[str], seconds: int, connections: int) -> float:
    """Requests/s summed over one wrk per device URL, all at once."""
    procs = []
    for url in urls:
        header = digest_header(url, "viewer", "viewer")
        requests.get(url, auth=HTTPDigestAuth("viewer", "viewer"), timeout=30)  # warm its days
        argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-H", f"Authorization: {header}"]
        procs.append(subprocess.Popen([*argv, url], stdout=subprocess.PIPE, text=True))
    total = 0.0
    for p in procs:
        out, _ = p.communicate(timeout=seconds + 60)
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if m is None or "Non-2xx" in out:
            raise SystemExit(f"wrk failed or got errors:\n{out}")
        total += float(m.group(1))
    return total


def measure(k: int, args: argparse.Namespace, picks: list[int]) -> tuple[float, float]:
    """Requests/s of the fleet served by ``k`` workers, and their resident memory (MiB)."""
    with tempfile.TemporaryDirectory() as tmp:
        ready = Path(tmp) / "ready.json"
        proc = start(k, ready, args.scenario)
        try:
            devices = json.loads(ready.read_text())["devices"]
            urls = [devices[i]["url"] + OCC for i in picks]
            rate = wrk_all(urls, args.seconds, args.connections)
            rss = sum(proc_kib(p, "VmRSS") for p in family(proc.pid)) / 1024
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    return rate, rss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--devices", type=int, default=8, help="devices read at once (8)")
    ap.add_argument("--connections", type=int, default=8, help="connections per device (8)")
    ap.add_argument("--scenario", default="fleet-1000")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk: apt-get install wrk")
    cores = len(os.sched_getaffinity(0))
    picks = random.Random(8815).sample(range(1000), args.devices)
    print(f"{args.scenario}: {args.devices} random devices, {cores} core(s), {args.seconds} s each")
    base = None
    for k in sorted({1, 2, cores}):
        rate, rss = measure(k, args, picks)
        base = base or rate
        print(f"  --workers {k:<3}: {rate:9.0f} req/s  x{rate / base:4.2f}  RSS {rss:7.1f} MiB")


if __name__ == "__main__":
    main()
