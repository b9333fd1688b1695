"""Scale benchmark, run by hand: ``python benchmarks/bench_scale.py [--counts 1000,10000]``.

For each fleet size, a ``fleet:`` scenario (temporary file) is served by one
``p8815-sim serve`` process twice: every device on its own address (``--ip-per-device``
from 127.1.0.1, one port) and every device on its own port (127.0.0.1, consecutive ports
from ``--base-port``). Printed per run: seconds from the process's start to its
``--ready-file``; then every device answers a reading (``GET /a3dpc/api/occupancy``) and
yesterday's hourly export (``/a3dpc/api/export/json?start=yesterday&end=today&resolution=hour``)
with Digest authentication (aiohttp, ``--concurrency`` requests at a time), and the server's
memory after (VmRSS, and its peak VmHWM, from /proc). Targets at 10,000 devices: start
under 5 s, RSS under 500 MB.

``--profile`` instead builds and binds the largest fleet in this process under cProfile
(start-up) and answers every device's reading and export in process under tracemalloc
(memory), printing where time and bytes go.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import ipaddress
import json
import os
import pstats
import resource
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from requests.auth import HTTPDigestAuth
from requests.utils import parse_dict_header

from simulator.cli import raise_open_files_limit

ROOT = Path(__file__).resolve().parent.parent
READING = "/a3dpc/api/occupancy"
EXPORT = "/a3dpc/api/export/json?start=yesterday&end=today&resolution=hour"
START = "2024-06-07T12:00:00+02:00"


def fleet_yaml(count: int) -> str:
    """A fleet of ``count`` stores from one template, like scenarios/fleet-1000.yaml."""
    return (
        f"name: fleet-{count}\nseed: 1000\nstart: {START}\n"
        f"fleet:\n  count: {count}\n  id_prefix: door-\n  serial_start: ACCC8E100000\n"
        "  template:\n    timezone: Europe/Stockholm\n    installed: 2024-05-01\n"
        "    crowd:\n      daily_visitors: 900\n"
    )


def write_scenario(directory: str, count: int) -> Path:
    """The scenario of ``count`` devices in a file of ``directory``."""
    path = Path(directory) / f"fleet-{count}.yaml"
    path.write_text(fleet_yaml(count))
    return path


def ports_free(host: str, base: int, count: int) -> bool:
    """Whether ``count`` consecutive ports from ``base`` can be bound on ``host``."""
    for p in range(base, base + count):
        with socket.socket() as s:
            try:
                s.bind((host, p))
            except OSError:
                return False
    return True


def proc_mb(pid: int, field: str) -> float:
    """A memory figure of a process's /proc status (VmRSS, VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (the machine may be busy: wall is noisy)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    """A running ``serve`` process and its devices' base URLs."""

    proc: subprocess.Popen[bytes]
    urls: list[str]
    start_seconds: float
    start_cpu: float
    ready: Path
    t0: float

    def wait_ready(self) -> None:
        """Wait for the ready file; note the seconds and CPU seconds it took."""
        while not self.ready.exists():
            if self.proc.poll() is not None:
                raise SystemExit(f"serve exited with {self.proc.returncode}")
            time.sleep(0.01)
        self.start_seconds = time.perf_counter() - self.t0
        self.start_cpu = cpu_seconds(self.proc.pid)
        doc = json.loads(self.ready.read_text())
        self.urls = [d["url"] for d in doc["devices"]]

    def stop(self) -> None:
        """Terminate the process."""
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def open_files_limit(n: int) -> None:
    """In the child about to exec ``serve``: allow ``n`` open files (root may raise the hard
    limit; ``serve`` lifts its soft limit to the hard one)."""
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))


def start_server(
    scenario: Path,
    count: int,
    mode: str,
    base_port: int,
    extra: list[str] | None = None,
    wait: bool = True,
    nofile: int = 0,
) -> Server:
    """Start ``serve`` (``mode`` "ip": an address per device; "port": a port per device)."""
    tag = "-".join(extra or []).replace("/", "of")
    ready = scenario.with_suffix(f".{mode}{tag}.ready.json")
    ready.unlink(missing_ok=True)
    if mode == "ip":
        where = ["--ip-per-device", "--host", "127.1.0.1", "--port", str(base_port)]
        first = ipaddress.ip_address("127.1.0.1")
        urls = [f"http://{first + i}:{base_port}" for i in range(count)]
    else:
        where = ["--host", "127.0.0.1", "--port", str(base_port)]
        urls = [f"http://127.0.0.1:{base_port + i}" for i in range(count)]
    argv = [sys.executable, "-m", "simulator", "serve", str(scenario), *where]
    argv += ["--ready-file", str(ready), "--log-level", "warning", *(extra or [])]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        preexec_fn=(lambda: open_files_limit(nofile)) if nofile else None,
    )
    server = Server(proc, urls, 0.0, 0.0, ready, t0)
    if wait:
        server.wait_ready()
    return server


def digest(challenge: str) -> HTTPDigestAuth:
    """A Digest client (viewer) primed with a device's challenge."""
    auth = HTTPDigestAuth("viewer", "viewer")
    auth.init_per_thread_state()
    auth._thread_local.chal = parse_dict_header(challenge.removeprefix("Digest "))
    return auth


async def authed_get(s: aiohttp.ClientSession, auth: HTTPDigestAuth, url: str) -> tuple[int, bytes]:
    """GET ``url`` with a fresh Digest header (next nc, new cnonce)."""
    h = auth.build_digest_header("GET", url)
    assert h is not None
    async with s.get(url, headers={"Authorization": h}) as r:
        return r.status, await r.read()


async def challenge(s: aiohttp.ClientSession, url: str) -> HTTPDigestAuth:
    """A device's Digest client, from the challenge of an unauthenticated request."""
    async with s.get(url) as r:
        await r.read()
        return digest(r.headers["WWW-Authenticate"])


async def ask_every_device(urls: list[str], concurrency: int) -> float:
    """Every device answers a reading and yesterday's hourly export; wall seconds."""
    queue = list(reversed(urls))
    conn = aiohttp.TCPConnector(limit=concurrency, force_close=True)
    t0 = time.perf_counter()
    async with aiohttp.ClientSession(connector=conn) as s:

        async def worker() -> None:
            while queue:
                base = queue.pop()
                auth = await challenge(s, base + READING)
                for path in (READING, EXPORT):
                    status, body = await authed_get(s, auth, base + path)
                    if status != 200:
                        raise SystemExit(f"{base + path}: {status} {body[:200]!r}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0


def measure(args: argparse.Namespace, scenario: Path, count: int, mode: str) -> None:
    """One run: start-up, every device asked, memory after."""
    if mode == "port" and not ports_free("127.0.0.1", args.base_port, count):
        print(f"{count} ports from {args.base_port} not all free: port mode skipped")
        return
    port = args.base_port if mode == "port" else args.base_port + count
    server = start_server(scenario, count, mode, port)
    try:
        rss0 = proc_mb(server.proc.pid, "VmRSS")
        asked = asyncio.run(ask_every_device(server.urls, args.concurrency))
        rss, hwm = proc_mb(server.proc.pid, "VmRSS"), proc_mb(server.proc.pid, "VmHWM")
    finally:
        server.stop()
    label = "address per device" if mode == "ip" else "port per device"
    print(
        f"{count:>6} devices, {label:18}: ready in {server.start_seconds:5.2f} s "
        f"({server.start_cpu:5.2f} s CPU, RSS {rss0:4.0f} MB); every device's reading + "
        f"hourly export in {asked:5.1f} s "
        f"({3 * count / asked:5.0f} req/s); then RSS {rss:5.0f} MB, peak {hwm:5.0f} MB"
    )


def shards(args: argparse.Namespace, scenario: Path, count: int, n: int) -> None:
    """``n`` processes serving ``--shard i/n`` of the fleet at once (an address per device):
    start-up and RSS of each, then ``--sample`` devices of each asked, and RSS again."""
    servers = [
        start_server(
            scenario,
            count,
            "ip",
            args.base_port,
            [f"--shard={i}/{n}"],
            wait=False,
            nofile=count + 4096,
        )
        for i in range(n)
    ]
    try:
        for s in servers:
            s.wait_ready()
        for i, s in enumerate(servers):
            rss0 = proc_mb(s.proc.pid, "VmRSS")
            sample = s.urls[:: max(1, len(s.urls) // args.sample)][: args.sample]
            asked = asyncio.run(ask_every_device(sample, args.concurrency))
            rss = proc_mb(s.proc.pid, "VmRSS")
            print(
                f"{count:>7} devices, shard {i}/{n} ({len(s.urls)} devices): ready in "
                f"{s.start_seconds:5.2f} s ({s.start_cpu:5.2f} s CPU), RSS {rss0:4.0f} MB; "
                f"{len(sample)} devices asked in {asked:5.1f} s, then RSS {rss:4.0f} MB"
            )
    finally:
        for s in servers:
            s.stop()


def profile(count: int, top: int, mem_devices: int) -> None:
    """Start-up under cProfile, then ``mem_devices`` devices' readings and exports under
    tracemalloc (traced per device)."""
    from simulator.cli import load
    from simulator.clock import SimClock
    from simulator.runtime.runtime import Runtime
    from simulator.server import serve_fleet

    with tempfile.TemporaryDirectory() as tmp:
        scenario = load(str(write_scenario(tmp, count)))
    assert scenario.start is not None
    clock = SimClock(start=scenario.start.timestamp(), speed=0)

    async def run() -> None:
        prof = cProfile.Profile()
        prof.enable()
        runtime = Runtime(scenario, clock)
        served = await serve_fleet(runtime, "127.1.0.1", 0, ip_per_device=True)
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(top)
        pstats.Stats(prof).sort_stats("tottime").print_stats(top)
        tracemalloc.start(4)
        snap0 = tracemalloc.take_snapshot()
        now = clock.now()
        asked = runtime.fleet.devices[:mem_devices]
        for d in asked:
            d.realtime(now)
            day = d.local_date(now)
            grid = d.grid(day)
            list(d.traffic(grid.start - 86400, grid.start, "hour", now))
        snap = tracemalloc.take_snapshot()
        grown = sum(s.size_diff for s in snap.compare_to(snap0, "filename"))
        print(f"{len(asked)} devices answered: {grown / len(asked) / 1024:.1f} KiB traced each")
        for stat in snap.compare_to(snap0, "traceback")[:top]:
            print(stat)
            for line in stat.traceback.format()[-8:]:
                print("   ", line)
        await served.cleanup()

    asyncio.run(run())


def main() -> None:
    """Run each fleet size in each mode (or profile the largest)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--counts", default="1000,10000", help="fleet sizes, comma-separated")
    p.add_argument("--modes", default="ip,port", help="ip (address per device), port, or both")
    p.add_argument("--base-port", type=int, default=20000, help="first port (port per device)")
    p.add_argument("--concurrency", type=int, default=16, help="requests at a time")
    p.add_argument("--shards", type=int, default=0, help="N processes of --shard i/N instead")
    p.add_argument("--sample", type=int, default=1000, help="devices asked per shard")
    p.add_argument("--profile", action="store_true", help="cProfile + tracemalloc in process")
    p.add_argument("--mem-devices", type=int, default=1000, help="devices traced (profile)")
    p.add_argument("--top", type=int, default=25, help="lines of each profile")
    args = p.parse_args()
    raise_open_files_limit()  # the clients' sockets
    counts = [int(c) for c in args.counts.split(",")]
    if args.profile:
        profile(max(counts), args.top, args.mem_devices)
        return
    with tempfile.TemporaryDirectory() as tmp:
        for count in counts:
            scenario = write_scenario(tmp, count)
            if args.shards:
                shards(args, scenario, count, args.shards)
                continue
            for mode in args.modes.split(","):
                measure(args, scenario, count, mode)


if __name__ == "__main__":
    main()
