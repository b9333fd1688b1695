"""HTTP benchmarks, run by hand: ``python benchmarks/bench_http.py [--seconds 10]``.

(a) requests/s of ``GET /a3dpc/api/occupancy`` with a valid Digest header, against a bare
    aiohttp hello-world measured in the same run, as a ratio (target >= 0.7). The load
    generator is ``wrk`` (Debian package ``wrk``), pinned to its own core with ``taskset``;
    each server is pinned to the other core.
(b) time and server memory growth to serve one year of minute bins as CSV
    (targets: < 0.5 s, < 50 MB growth).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import requests
from requests.auth import HTTPDigestAuth
from requests.utils import parse_dict_header

ROOT = Path(__file__).resolve().parent.parent
HELLO = textwrap.dedent(
    """
    import sys
    from aiohttp import web

    async def hello(request):
        return web.Response(text="Hello, world")

    app = web.Application()
    app.router.add_get("/", hello)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(core: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *argv] if shutil.which("taskset") else argv


def wait_up(url: str, auth: HTTPDigestAuth | None = None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(url, auth=auth, timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not start")


def wrk(url: str, seconds: int, headers: list[str]) -> float:
    argv = ["wrk", "-t1", "-c32", f"-d{seconds}s"]
    for h in headers:
        argv += ["-H", h]
    out = subprocess.run(pinned(1, [*argv, url]), capture_output=True, text=True, check=True)
    m = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out.stdout)
    if m is None or non2xx is not None:
        raise SystemExit(f"wrk failed or got errors:\n{out.stdout}\n{out.stderr}")
    return float(m.group(1))


def digest_header(url: str, user: str, password: str) -> str:
    chal = requests.get(url, timeout=5).headers["WWW-Authenticate"]
    auth = HTTPDigestAuth(user, password)
    auth.init_per_thread_state()
    auth._thread_local.chal = parse_dict_header(chal.removeprefix("Digest "))
    header = auth.build_digest_header("GET", url)
    assert header is not None
    return header


def proc_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk: apt-get install wrk")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    port = free_port()
    hello = subprocess.Popen(pinned(0, [sys.executable, "-c", HELLO, str(port)]), env=env)
    try:
        wait_up(f"http://127.0.0.1:{port}/")
        base = wrk(f"http://127.0.0.1:{port}/", args.seconds, [])
    finally:
        hello.terminate()
        hello.wait()

    port = free_port()
    sim = subprocess.Popen(
        pinned(
            0,
            [
                sys.executable,
                "-m",
                "simulator",
                "serve",
                "--port",
                str(port),
                "--speed",
                "0",
                "--start",
                "2024-06-07T15:30:00+02:00",
            ],
        ),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    try:
        occ = f"http://127.0.0.1:{port}/a3dpc/api/occupancy"
        wait_up(occ)
        header = digest_header(occ, "viewer", "viewer")
        rate = wrk(occ, args.seconds, [f"Authorization: {header}"])

        export = (
            f"http://127.0.0.1:{port}/a3dpc/api/export/csv"
            "?start=20230608&end=today&resolution=minute"
        )
        auth = HTTPDigestAuth("viewer", "viewer")
        requests.get(occ, auth=auth, timeout=10)
        rss0 = proc_kib(sim.pid, "VmRSS")
        t = time.perf_counter()
        r = requests.get(export, auth=auth, timeout=60)
        cold = time.perf_counter() - t
        peak_growth = (proc_kib(sim.pid, "VmHWM") - rss0) / 1024
        t = time.perf_counter()
        r2 = requests.get(export, auth=auth, timeout=60)
        warm = time.perf_counter() - t
        assert r.status_code == 200 and r.content == r2.content
        rows = r.text.count("\n") - 1
    finally:
        sim.terminate()
        sim.wait()

    print(f"(a) hello-world baseline      : {base:10.0f} req/s")
    print(f"    GET /a3dpc/api/occupancy  : {rate:10.0f} req/s (valid Digest header)")
    print(f"    ratio                     : {rate / base:10.2f}   (target >= 0.70)")
    print(f"(b) one year of minute bins   : {rows} rows, {len(r.content) / 1e6:.1f} MB")
    print(f"    first request (cold)      : {cold:10.3f} s    (target < 0.5 s)")
    print(f"    second request (cached)   : {warm:10.3f} s")
    print(f"    server peak memory growth : {peak_growth:10.1f} MB   (target < 50 MB)")


if __name__ == "__main__":
    main()
