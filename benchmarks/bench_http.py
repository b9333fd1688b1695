"""HTTP benchmarks, run by hand: ``python benchmarks/bench_http.py [--seconds 10] [--only a]``.

(a) requests/s of ``GET /a3dpc/api/occupancy`` with valid Digest credentials, as a ratio to
    a bare aiohttp hello-world measured in the same run and driven the same way: the same
    path with the same fresh Digest headers (which it ignores), so it parses as much (targets:
    >= 0.8 on the default asyncio loop, >= 1.0 on uvloop, fresh headers). The load generator
    is ``wrk`` (Debian package ``wrk``) pinned to one core with ``taskset``; each server runs
    as its own ``python`` process pinned to the other core, on asyncio then on uvloop (the
    simulator: ``serve --loop asyncio|uvloop``). The simulator answers these readings on its
    fast path (``simulator/api/fast.py``: straight from the request's bytes, with the same
    answer, journal entry and metrics as through aiohttp); the hello-world goes through
    aiohttp's whole request handling, as any aiohttp application does.

    How real clients authenticate: ``requests``' ``HTTPDigestAuth`` (like curl and most
    device clients) answers the first 401, then sends a *fresh* header on every request: the
    same nonce, the next ``nc`` and a new random ``cnonce``, so every header is different
    and the server parses and hashes each one. A fleet of such clients is many connections,
    each client with its own nonce and its own strictly increasing ``nc``. The benchmark does
    exactly that: ``CONNS`` wrk threads of one connection each; before the load, one 401
    per connection fetches a nonce and ``N`` headers are precomputed for it (``nc`` = 1..N,
    random ``cnonce``, the right ``response`` for the URI), one file per connection, which
    the Lua script of that thread cycles through in order. With one connection per nonce
    the requests of one nonce arrive in ``nc`` order, so the run holds under
    ``auth.strict_nc: true`` too (the simulator checks nc strictly: no window, any nc not
    above the highest seen for that nonce is a replay) - the "strict nc" row runs the same
    load against a scenario with ``strict_nc: true``, and any 401 fails the benchmark.
    Enough headers are computed that no thread wraps round (checked). The "repeated
    header" row sends one precomputed header again and again (what a naive client that
    copies a header does; the server's memo of verified headers answers it).
    Columns: the best requests/s of the rounds and the server's CPU time per request (user +
    system, from /proc, the least of the rounds); "ratio" is against the hello-world on the
    same loop, "vs asyncio hello" against the hello-world on asyncio (the targets: 0.8 for
    the simulator on asyncio, 1.0 on uvloop). On a machine shared with other work the CPU
    ratio is the steadier figure: requests/s move with whatever else runs.
(b) time and server memory growth to serve one year of minute bins as CSV
    (targets: < 0.5 s, < 50 MB growth).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from requests.auth import HTTPDigestAuth
from requests.utils import parse_dict_header

ROOT = Path(__file__).resolve().parent.parent
CONNS = 8  # wrk threads, one connection each: one client (one nonce) per connection
MAX_RATE = 25_000  # requests/s no server here reaches: sizes the header files
HELLO = textwrap.dedent(
    """
    import asyncio, sys
    from aiohttp import web

    async def hello(request):
        return web.Response(text="Hello, world")

    app = web.Application()
    app.router.add_get("/a3dpc/api/occupancy", hello)
    if sys.argv[2] == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None,
                loop=loop)
    """
)
LUA = textwrap.dedent(
    """
    -- one header file per thread (one connection per thread): its headers go in order
    local n, threads = 0, {}
    function setup(thread)
      thread:set("idx", n)
      n = n + 1
      threads[#threads + 1] = thread
    end

    function init(args)
      reqs, i, wraps = {}, 0, 0
      for line in io.lines(args[1] .. "." .. idx) do
        reqs[#reqs + 1] = wrk.format(nil, nil, {["Authorization"] = line})
      end
    end

    function request()
      i = i + 1
      if i > #reqs then
        i = 1
        if #reqs > 1 then wraps = wraps + 1 end
      end
      return reqs[i]
    end

    function done(summary, latency, requests)
      local w = 0
      for _, t in ipairs(threads) do
        w = w + t:get("wraps")
      end
      io.write(string.format("wrapped: %d\\n", w))
    end
    """
)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(core: int, argv: list[str]) -> list[str]:
    """``argv`` run on one core when taskset is there."""
    return ["taskset", "-c", str(core), *argv] if shutil.which("taskset") else argv


def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    """Wait until ``url`` answers (any status)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server for {url} exited with {proc.returncode}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not start")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(
    url: str, seconds: int, pid: int, script: Path | None = None, arg: str = ""
) -> tuple[float, float]:
    """Requests/s wrk measures (CONNS threads of one connection) and the server's CPU µs
    per request; any non-2xx fails."""
    argv = ["wrk", f"-t{CONNS}", f"-c{CONNS}", f"-d{seconds}s"]
    if script is not None:
        argv += ["-s", str(script)]
    argv += [url]
    if arg:
        argv += [arg]
    cpu = cpu_seconds(pid)
    out = subprocess.run(pinned(1, argv), capture_output=True, text=True, check=True)
    cpu = cpu_seconds(pid) - cpu
    m = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    total = re.search(r"(\d+) requests in", out.stdout)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out.stdout)
    wrapped = re.search(r"wrapped: (\d+)", out.stdout)
    if m is None or total is None or bad is not None or (wrapped and wrapped.group(1) != "0"):
        raise SystemExit(f"wrk failed, got errors or ran out of headers:\n{out.stdout}{out.stderr}")
    return float(m.group(1)), cpu / int(total.group(1)) * 1e6


def digest_headers(url: str, user: str, password: str, count: int) -> Iterator[str]:
    """What HTTPDigestAuth sends after one 401: nc = 1..count on one nonce, fresh cnonces."""
    chal = parse_dict_header(requests.get(url, timeout=5).headers["WWW-Authenticate"][7:])
    realm, nonce, algorithm = chal["realm"], chal["nonce"], chal.get("algorithm", "MD5")
    h = hashlib.md5 if algorithm.upper() == "MD5" else hashlib.sha256
    uri = "/" + url.split("/", 3)[3]
    ha1 = h(f"{user}:{realm}:{password}".encode()).hexdigest()
    ha2 = h(f"GET:{uri}".encode()).hexdigest()
    prefix = f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
    for nc in range(1, count + 1):
        ncv, cnonce = f"{nc:08x}", os.urandom(8).hex()
        resp = h(f"{ha1}:{nonce}:{ncv}:{cnonce}:auth:{ha2}".encode()).hexdigest()
        yield (
            f'{prefix}response="{resp}", algorithm="{algorithm}", qop="auth", '
            f'nc={ncv}, cnonce="{cnonce}"'
        )


def digest_header(url: str, user: str, password: str) -> str:
    """One header, sent again and again (the repeated-header figures of other benchmarks)."""
    return next(digest_headers(url, user, password, 1))


def write_headers(base: Path, url: str, seconds: int, repeated: bool) -> None:
    """One header file per connection (``base.0``, ``base.1``, ...), each on its own nonce."""
    count = 1 if repeated else seconds * MAX_RATE // CONNS + 1000
    for i in range(CONNS):
        lines = digest_headers(url, "viewer", "viewer", count)
        Path(f"{base}.{i}").write_text("\n".join(lines) + "\n")


@contextmanager
def server(argv: list[str], url: str, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A server process pinned to core 0, up at ``url``; terminated on leaving."""
    proc = subprocess.Popen(
        pinned(0, argv), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT
    )
    try:
        wait_up(url, proc)
        yield proc
    finally:
        proc.terminate()
        proc.wait()


def sim_argv(port: int, loop: str, scenario: str | None) -> list[str]:
    """``python -m simulator serve`` on ``port`` with a frozen clock, on event loop ``loop``.

    HTTP only: several simulators run at once, and HTTPS would take the same default port.
    """
    argv = [sys.executable, "-m", "simulator", "serve", "--port", str(port), "--speed", "0"]
    argv += ["--start", "2024-06-07T15:30:00+02:00", "--loop", loop, "--no-https"]
    return argv + ([scenario] if scenario else [])


def strict_scenario(tmp: Path) -> str:
    """The default scenario with ``auth.strict_nc: true``."""
    text = (ROOT / "simulator" / "scenarios" / "default.yaml").read_text()
    path = tmp / "strict.yaml"
    path.write_text(text.replace("strict_nc: false", "strict_nc: true"))
    return str(path)


def proc_kib(pid: int, field: str) -> int:
    """A field of /proc/PID/status in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def bench_rates(
    seconds: int, rounds: int, loops: list[str], env: dict[str, str], tmp: Path
) -> None:
    """(a): hello-world and the occupancy API, per event loop, and their ratios.

    Every server runs at once (idle but one); the runs take turns, ``rounds`` times, and
    each keeps its best figure: on a shared machine noise only ever slows a run down.
    """
    script = tmp / "headers.lua"
    script.write_text(LUA)
    strict = strict_scenario(tmp)
    best: dict[tuple[str, str], float] = {}
    cost: dict[tuple[str, str], float] = {}
    with contextlib.ExitStack() as stack:
        #: loop, label, url, the URL whose challenge the headers answer, repeated, pid
        runs: list[tuple[str, str, str, str, bool, int]] = []
        for loop in loops:
            port = free_port()
            url = f"http://127.0.0.1:{port}/a3dpc/api/occupancy"
            hello = stack.enter_context(
                server([sys.executable, "-c", HELLO, str(port), loop], url, env)
            )
            hello_run = len(runs)
            for label, scenario in (("", None), (", strict nc", strict)):
                port = free_port()
                occ = f"http://127.0.0.1:{port}/a3dpc/api/occupancy"
                sim = stack.enter_context(server(sim_argv(port, loop, scenario), occ, env))
                if scenario is None:  # the hello-world is sent this simulator's headers
                    runs.insert(hello_run, (loop, "hello-world", url, occ, False, hello.pid))
                runs.append((loop, "occupancy, fresh headers" + label, occ, occ, False, sim.pid))
                if scenario is None:
                    runs.append((loop, "occupancy, repeated header", occ, occ, True, sim.pid))
        for _ in range(rounds):
            for loop, label, url, source, repeated, pid in runs:
                write_headers(tmp / "h", source, seconds, repeated)
                rate, us = wrk(url, seconds, pid, script, str(tmp / "h"))
                best[loop, label] = max(rate, best.get((loop, label), 0.0))
                cost[loop, label] = min(us, cost.get((loop, label), us))
    for loop in loops:
        base, base_us = best[loop, "hello-world"], cost[loop, "hello-world"]
        target = 0.8 if loop == "asyncio" else 1.0
        print(
            f"(a) {loop:8s} {'hello-world baseline':36s}: {base:7.0f} req/s"
            f" {base_us:6.1f} µs CPU/req"
        )
        for lp, label, *_ in runs:
            if lp == loop and label != "hello-world":
                rate, us = best[loop, label], cost[loop, label]
                ref, ref_us = (
                    best.get(("asyncio", "hello-world"), base),
                    cost.get(("asyncio", "hello-world"), base_us),
                )
                print(
                    f"    {loop:8s} {label:36s}: {rate:7.0f} req/s {us:6.1f} µs CPU/req"
                    f"  ratio {rate / base:4.2f} (CPU {base_us / us:4.2f})"
                    f"  vs asyncio hello {rate / ref:4.2f} (CPU {ref_us / us:4.2f};"
                    f" target >= {target:.1f})"
                )


def bench_export(env: dict[str, str]) -> None:
    """(b): one year of minute bins as CSV, time and memory."""
    port = free_port()
    occ = f"http://127.0.0.1:{port}/a3dpc/api/occupancy"
    with server(sim_argv(port, "auto", None), occ, env) as sim:
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
    print(f"(b) one year of minute bins   : {rows} rows, {len(r.content) / 1e6:.1f} MB")
    print(f"    first request (cold)      : {cold:10.3f} s    (target < 0.5 s)")
    print(f"    second request (cached)   : {warm:10.3f} s")
    print(f"    server peak memory growth : {peak_growth:10.1f} MB   (target < 50 MB)")


def main() -> None:
    """Run the benchmarks the command line asks for."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3, help="runs of each, the best kept")
    ap.add_argument("--only", choices=("a", "b"), help="run only (a) or (b)")
    ap.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        action="append",
        help="event loop(s) for (a) (default: both, uvloop if importable)",
    )
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk: apt-get install wrk")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    loops = args.loop or ["asyncio"]
    if not args.loop:
        try:
            import uvloop  # noqa: F401

            loops.append("uvloop")
        except ImportError:
            pass
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "a"):
            bench_rates(args.seconds, args.rounds, loops, env, Path(tmp))
    if args.only in (None, "b"):
        bench_export(env)


if __name__ == "__main__":
    main()
