"""A served device keeps its web server's limits: read timeouts, keep-alive, open connections."""

from __future__ import annotations

import contextlib
import resource
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from requests.auth import HTTPDigestAuth
from requests.utils import parse_dict_header

from simulator.server import Limits, Throttle, parse_read_timeout
from tests.serving import Served, serve_ready

FLEET = "seed: 5\nstart: 2024-06-07T12:00:00Z\nspeed: 0\nfleet: {count: 3}\n"
SHORT = ("--read-timeout", "header=1-2,MinRate=500 body=1", "--keep-alive-timeout", "0.5")


def connect(url: str) -> socket.socket:
    """A raw TCP connection to a device's URL."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname or "", parts.port or 80), timeout=10)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a 10 s bound)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def short(tmp_path: Path) -> Served:
    scenario = tmp_path / "fleet.yaml"
    scenario.write_text(FLEET)
    with serve_ready(tmp_path, str(scenario), *SHORT) as served:
        yield served  # type: ignore[misc]


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(short: Served) -> None:
    with connect(short.url()) as sock:
        t0 = time.monotonic()
        assert read_all(sock) == b""  # closed without an answer, as Apache does
        assert time.monotonic() - t0 >= 0.9


def dribble_headers(sock: socket.socket, chunk: bytes, every: float) -> tuple[bytes, float]:
    """Send a request's first line, then a header's value forever: the answer and when it came."""
    t0 = time.monotonic()
    sock.sendall(b"GET /a3dpc/api/occupancy HTTP/1.1\r\nX-Slow: ")
    for _ in range(int(8 / every)):
        time.sleep(every)
        try:
            sock.sendall(chunk)
        except OSError:
            break
    answer = read_all(sock)
    return answer, time.monotonic() - t0


def test_headers_dribbled_below_the_minimum_rate_get_408_at_the_header_timeout(
    short: Served,
) -> None:
    with connect(short.url()) as sock:
        answer, took = dribble_headers(sock, b"a", 0.2)  # 5 bytes/s: no extension to speak of
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert 0.9 <= took < 1.9


def test_headers_that_never_end_get_408_at_the_header_timeout_maximum(short: Served) -> None:
    with connect(short.url()) as sock:
        answer, took = dribble_headers(sock, b"a" * 400, 0.2)  # 2000 bytes/s: extended to 2 s
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert 1.9 <= took < 8


def test_a_slow_body_gets_408_from_the_handler(short: Served) -> None:
    with connect(short.url()) as sock:
        sock.sendall(
            b"POST /sim/v1/clock/advance HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {short.token}\r\n".encode()
            + b'Content-Type: application/json\r\nContent-Length: 40\r\n\r\n{"by": '
        )
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")


def test_a_slow_body_to_a_device_gets_apaches_408_page(short: Served) -> None:
    url = short.url() + "/axis-cgi/a3dpc.cgi"
    digest = HTTPDigestAuth("root", "pass")
    digest.init_per_thread_state()
    challenge = requests.post(url, timeout=10).headers["WWW-Authenticate"]
    digest._thread_local.chal = parse_dict_header(challenge.removeprefix("Digest "))
    header = digest.build_digest_header("POST", url) or ""
    with connect(short.url()) as sock:
        sock.sendall(
            b"POST /axis-cgi/a3dpc.cgi HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: {header}\r\n".encode()
            + b'Content-Type: application/json\r\nContent-Length: 40\r\n\r\n{"method": '
        )  # credentials are good: the handler waits for the rest of the body
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"\r\nServer: Apache\r\n" in answer
    assert answer.endswith(
        b"<p>Server timeout waiting for the HTTP request from the client.</p>\n</body></html>\n"
    )


def test_a_kept_alive_connection_closes_after_the_keep_alive_timeout(short: Served) -> None:
    with connect(short.url()) as sock:
        sock.sendall(b"GET /sim/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        t0 = time.monotonic()
        assert first.startswith(b"HTTP/1.1 200 OK\r\n") and b'"status": "ok"' in first
        assert read_all(sock) == b""
        assert time.monotonic() - t0 >= 0.4
    # and a client that keeps asking keeps its connection
    with requests.Session() as s:
        for _ in range(4):
            s.get(short.url() + "/sim/v1/health", timeout=10).raise_for_status()
            time.sleep(0.2)


def _lower_open_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


def test_a_flood_of_idle_and_slow_connections_does_not_lock_clients_out(tmp_path: Path) -> None:
    scenario = tmp_path / "fleet.yaml"
    scenario.write_text(FLEET)
    with serve_ready(tmp_path, str(scenario), preexec_fn=_lower_open_files) as served:
        host, port = urlsplit(served.url(1)).hostname or "", urlsplit(served.url(1)).port or 0
        flood: list[socket.socket] = []
        stop = threading.Event()
        try:
            for i in range(300):  # more than the process may open
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex((host, port))
                flood.append(s)
                if i % 2:
                    time.sleep(0.002)
            time.sleep(0.5)
            for s in flood[1::2]:  # half of them dribble a request line
                with contextlib.suppress(OSError):
                    s.send(b"GET / HTTP/1.1\r\nX: ")

            def dribble() -> None:
                while not stop.wait(0.5):
                    for s in flood[1::2]:
                        with contextlib.suppress(OSError):
                            s.send(b"a")

            threading.Thread(target=dribble, daemon=True).start()
            t0 = time.monotonic()
            r = requests.get(
                served.url(1) + "/a3dpc/api/occupancy",
                auth=HTTPDigestAuth("viewer", "viewer"),
                timeout=10,
            )
            elapsed = time.monotonic() - t0
            assert r.status_code == 200, r.text
            assert r.json()["serial"] == "ac:cc:8e:00:00:01"
            head = {"Authorization": f"Bearer {served.token}"}
            c = requests.get(served.url(2) + "/sim/v1/clock", headers=head, timeout=10)
            assert c.status_code == 200
            print(f"answered during the flood in {elapsed:.3f} s")
        finally:
            stop.set()
            for s in flood:
                s.close()
    log = served.err.read_text().splitlines()
    assert len(log) < 20, log  # the evictions are summarised, never a line per connection
    assert any("waited longest" in line for line in log)


def test_read_timeout_takes_apaches_syntax() -> None:
    assert parse_read_timeout("header=20-40,MinRate=500 body=20,MinRate=500") == Limits()
    limits = parse_read_timeout("header=10 body=5,minrate=100")
    assert (limits.header_timeout, limits.header_timeout_max) == (10, 10)
    assert (limits.body_timeout, limits.min_rate) == (5, 100)
    for bad in ("", "header=", "header=5-2", "body=0", "head=5", "header=5,MinRate=0"):
        with pytest.raises(ValueError):
            parse_read_timeout(bad)


def test_throttle_reports_at_most_once_an_interval_with_the_count() -> None:
    t = Throttle(5)
    assert [t.hit(x) for x in (0, 1, 2, 4.9, 5.0, 6)] == [1, 0, 0, 0, 4, 0]
