"""Every device serves HTTPS too: a certificate per device from the run's CA, or the scenario's."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import requests
import trustme
import urllib3
from requests.auth import HTTPDigestAuth

from simulator.schema.load import ScenarioError, load_scenario
from simulator.testing import Simulator, SimulatorHandle, ThreadedSimulator
from tests.serving import ROOT, free_port, serve_ready

OCC = "/a3dpc/api/occupancy"
VIEWER = HTTPDigestAuth("viewer", "viewer")
TWO_DOORS = """\
name: two-doors
devices:
  - {id: east, serial: ACCC8E000001, ip_address: 10.0.0.1%s}
  - {id: west, serial: ACCC8E000002, ip_address: 10.0.0.2}
"""


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorHandle]:
    """Two devices served in a thread, each over HTTP and HTTPS (free ports)."""
    where = tmp_path_factory.mktemp("https")
    with ThreadedSimulator(load_scenario(write_tmp(TWO_DOORS % "", where))) as s:
        yield SimulatorHandle(s)


def write_tmp(text: str, where: Path) -> Path:
    """Write a scenario file into ``where``."""
    (where / "scenario.yaml").write_text(text)
    return where / "scenario.yaml"


def peer_certificate(url: str, cafile: str) -> dict[str, Any]:
    """The verified certificate the server at ``url`` presents (the host name checked too)."""
    parts = urlsplit(url)
    ctx = ssl.create_default_context(cafile=cafile)
    with (
        socket.create_connection((parts.hostname, parts.port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=parts.hostname) as tls,
    ):
        cert = tls.getpeercert()
    assert cert is not None
    return dict(cert)


def test_https_with_the_ca_verified_and_unverified(sim: SimulatorHandle) -> None:
    url, ca = sim.https_url("east"), sim.ca_path
    assert url is not None and url.startswith("https://127.0.0.1:") and ca is not None
    r = requests.get(url + OCC, auth=VIEWER, verify=ca, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["serial"] == "ac:cc:8e:00:00:01"
    with pytest.warns(urllib3.exceptions.InsecureRequestWarning):
        r = requests.get(url + OCC, auth=VIEWER, verify=False, timeout=10)
    assert r.status_code == 200
    with pytest.raises(requests.exceptions.SSLError):  # not a publicly trusted certificate
        requests.get(url + OCC, auth=VIEWER, timeout=10)


def test_each_device_has_its_own_certificate_named_as_axis_os_names_it(
    sim: SimulatorHandle,
) -> None:
    ca = sim.ca_path
    assert ca is not None
    east = peer_certificate(str(sim.https_url(0)), ca)
    west = peer_certificate(str(sim.https_url(1)), ca)
    assert east["subject"] == ((("commonName", "axis-accc8e000001"),),)
    assert west["subject"] == ((("commonName", "axis-accc8e000002"),),)
    alt = set(east["subjectAltName"])
    assert {("DNS", "axis-accc8e000001"), ("IP Address", "10.0.0.1")} <= alt
    assert {("IP Address", "127.0.0.1"), ("DNS", "localhost")} <= alt
    assert east["serialNumber"] != west["serialNumber"]


def test_a_digest_nonce_from_http_is_good_over_https(sim: SimulatorHandle) -> None:
    auth = HTTPDigestAuth("viewer", "viewer")
    first = requests.get(sim.devices["east"].url + OCC, auth=auth, timeout=10)
    assert first.status_code == 200 and len(first.history) == 1  # challenged once
    again = requests.get(f"{sim.https_url('east')}{OCC}", auth=auth, verify=sim.ca_path, timeout=10)
    assert again.status_code == 200 and again.history == []  # same realm, same nonce
    bare = requests.get(f"{sim.https_url('east')}{OCC}", verify=sim.ca_path, timeout=10)
    assert 'realm="AXIS_ACCC8E000001"' in bare.headers["WWW-Authenticate"]


def test_param_cgi_over_https_says_https(sim: SimulatorHandle) -> None:
    url = f"{sim.https_url(0)}/axis-cgi/param.cgi?action=list&group=Properties.HTTPS.HTTPS"
    r = requests.get(url, auth=VIEWER, verify=sim.ca_path, timeout=10)
    assert r.status_code == 200 and "Properties.HTTPS.HTTPS=yes" in r.text


def test_the_ca_is_served_without_a_token(sim: SimulatorHandle) -> None:
    ca = Path(str(sim.ca_path)).read_bytes()
    for base in (sim.url, sim.https_url(0)):
        r = requests.get(f"{base}/sim/v1/ca.pem", verify=sim.ca_path, timeout=10)
        assert r.status_code == 200 and r.content == ca
    assert ca.startswith(b"-----BEGIN CERTIFICATE-----")


def test_plain_http_to_the_https_port_is_refused_not_served(sim: SimulatorHandle) -> None:
    plain = "http" + str(sim.https_url(0))[5:]
    with pytest.raises(requests.ConnectionError):
        requests.get(plain + OCC, auth=VIEWER, timeout=10)
    r = requests.get(f"{sim.https_url(0)}{OCC}", auth=VIEWER, verify=sim.ca_path, timeout=10)
    assert r.status_code == 200  # the device keeps serving


async def test_aiohttp_with_an_ssl_context_from_the_ca() -> None:
    async with Simulator("ci", devices=["entrance"]) as s:
        info = s.devices["entrance"]
        assert info.https_url is not None and s.ca_path is not None
        ctx = ssl.create_default_context(cafile=s.ca_path)
        user, password = next(iter(info.users.items()))
        auth = aiohttp.DigestAuthMiddleware(user, password)
        async with aiohttp.ClientSession(middlewares=(auth,)) as session:
            for _ in range(3):  # one kept-alive TLS connection
                async with session.get(info.https_url + OCC, ssl=ctx) as r:
                    assert r.status == 200, await r.text()
                    assert "occupancy" in await r.json()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_with_cacert(sim: SimulatorHandle) -> None:
    out = subprocess.run(
        ["curl", "-sS", "--cacert", str(sim.ca_path), "--digest", "-u", "viewer:viewer",
         "-w", "\n%{http_code}", f"{sim.https_url(1)}{OCC}"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    body, code = out.stdout.rsplit("\n", 1)
    assert code == "200" and '"serial": "ac:cc:8e:00:00:02"' in body


def test_https_only_redirects_plain_http(tmp_path: Path) -> None:
    scenario = load_scenario(write_tmp(TWO_DOORS % ", https_only: true", tmp_path))
    with ThreadedSimulator(scenario) as s:
        east, west = s.devices["east"], s.devices["west"]
        r = requests.get(east.url + OCC + "?x=1", allow_redirects=False, timeout=10)
        assert r.status_code == 302
        assert r.headers["Location"] == f"{east.https_url}{OCC}?x=1"
        assert "The document has moved" in r.text
        (entry,) = s.control.calls(device="east", status=302)  # journaled like any answer
        assert (entry["path"], entry["auth"]) == (OCC, "none")
        r = requests.get(east.url + OCC, auth=VIEWER, verify=s.ca_path, timeout=10)
        assert r.status_code == 200 and r.url == f"{east.https_url}{OCC}"  # followed
        assert requests.get(west.url + OCC, auth=VIEWER, timeout=10).status_code == 200
        health = requests.get(east.url + "/sim/v1/health", timeout=10)
        assert health.status_code == 200  # the simulator's control plane is no device's


@pytest.fixture(scope="module")
def test_ca() -> trustme.CA:
    """A CA of the test's own, as a user would bring one."""
    return trustme.CA()


def test_a_scenario_certificate_is_served(tmp_path: Path, test_ca: trustme.CA) -> None:
    leaf = test_ca.issue_cert("door.example", "127.0.0.1")
    (tmp_path / "certs").mkdir()
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "certs" / "door.crt"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "certs" / "door.key"))
    test_ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    own = ", tls: {cert: certs/door.crt, key: certs/door.key}"
    scenario = load_scenario(write_tmp(TWO_DOORS % own, tmp_path))
    with ThreadedSimulator(scenario) as s:
        east, west = s.devices["east"], s.devices["west"]
        cert = peer_certificate(str(east.https_url), str(tmp_path / "ca.pem"))
        assert ("DNS", "door.example") in cert["subjectAltName"]
        r = requests.get(f"{east.https_url}{OCC}", auth=VIEWER, verify=tmp_path / "ca.pem",
                         timeout=10)  # fmt: skip
        assert r.status_code == 200
        with pytest.raises(requests.exceptions.SSLError):  # west: the run's own CA
            requests.get(f"{west.https_url}{OCC}", verify=tmp_path / "ca.pem", timeout=10)


def test_a_scenario_ca_issues_the_certificates(tmp_path: Path, test_ca: trustme.CA) -> None:
    test_ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    test_ca.private_key_pem.write_to_path(str(tmp_path / "ca.key"))
    text = "tls: {ca_cert: ca.crt, ca_key: ca.key}\n" + TWO_DOORS % ""
    with ThreadedSimulator(load_scenario(write_tmp(text, tmp_path))) as s:
        for info in s.devices.values():
            r = requests.get(f"{info.https_url}{OCC}", auth=VIEWER, verify=tmp_path / "ca.crt",
                             timeout=10)  # fmt: skip
            assert r.status_code == 200
        served = requests.get(f"{s.url}/sim/v1/ca.pem", timeout=10).content
        assert served == (tmp_path / "ca.crt").read_bytes()


@pytest.mark.parametrize(
    ("tls", "field", "words"),
    [
        ("devices_tls: {cert: nope.crt, key: door.key}", "devices.0.tls.cert", "nope.crt"),
        ("devices_tls: {cert: door.crt, key: other.key}", "devices.0.tls", "no PEM certificate"),
        ("tls: {ca_cert: door.crt, ca_key: door.key}", "tls.ca_cert", "not a CA"),
        ("tls: {ca_cert: ca.crt, ca_key: door.key}", "tls.ca_key", "is not the key of"),
        ("tls: {ca_cert: ca.crt, ca_key: missing.key}", "tls.ca_key", "cannot read"),
    ],
)
def test_bad_certificates_are_named(
    tmp_path: Path, test_ca: trustme.CA, tls: str, field: str, words: str
) -> None:
    leaf = test_ca.issue_cert("door.example")
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "door.crt"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "door.key"))
    test_ca.issue_cert("other.example").private_key_pem.write_to_path(str(tmp_path / "other.key"))
    test_ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    if tls.startswith("devices_tls"):
        text = TWO_DOORS % (", tls: " + tls.split(": ", 1)[1])
    else:
        text = tls + "\n" + TWO_DOORS % ""
    with pytest.raises(ScenarioError) as e:
        load_scenario(write_tmp(text, tmp_path))
    assert f"{field}: " in str(e.value) and words in str(e.value)


def test_serve_names_a_missing_certificate(tmp_path: Path) -> None:
    path = write_tmp(TWO_DOORS % ", tls: {cert: door.crt, key: door.key}", tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "simulator", "serve", str(path), "--port", "0"],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"devices.0.tls.cert: cannot read {str(tmp_path / 'door.crt')!r}" in out.stderr


def test_serve_ready_file_lists_https_urls_and_the_ca(tmp_path: Path) -> None:
    with serve_ready(tmp_path, "ci", "--speed", "0") as s:
        ca = s.ready["ca"]
        assert ca and Path(ca).read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
        for d in s.ready["devices"]:
            assert d["url"].startswith("http://127.0.0.1:")
            assert d["https_url"].startswith("https://127.0.0.1:")
            r = requests.get(d["https_url"] + OCC, auth=VIEWER, verify=ca, timeout=10)
            assert r.status_code == 200, r.text
        line = s.out.read_text()
        assert f"HTTPS CA {ca}" in line
    assert not Path(ca).exists()  # the run's directory goes with the run


def test_serve_https_port_and_no_https(tmp_path: Path) -> None:
    base = free_port(3)
    with serve_ready(tmp_path, "ci", "--https-port", str(base)) as s:
        ports = [urlsplit(d["https_url"]).port for d in s.ready["devices"]]
        assert ports == [base + i for i in range(len(ports))]
    env = {"P8815_SIM_NO_HTTPS": "1"}
    with serve_ready(tmp_path, "ci", env=env) as s:
        assert s.ready["ca"] is None
        assert all(d["https_url"] is None for d in s.ready["devices"])
        r = requests.get(s.url() + "/sim/v1/ca.pem", timeout=10)
        assert r.status_code == 404 and "HTTPS is off" in r.json()["error"]["message"]


async def test_a_handshake_that_fails_leaves_the_connection_count_right() -> None:
    async with Simulator("ci", devices=["entrance"]) as s:
        guard = s._served.guard if s._served else None
        assert guard is not None
        parts = urlsplit(str(s.devices["entrance"].https_url))
        for _ in range(5):  # clients that do not trust the certificate hang up in the handshake
            with pytest.raises(ssl.SSLCertVerificationError):
                await asyncio.open_connection(parts.hostname, parts.port, ssl=True)
        for _ in range(100):
            if guard.pending == 0 and not guard.open:
                break
            await asyncio.sleep(0.02)
        assert guard.pending == 0 and not guard.open
