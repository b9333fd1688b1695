"""Unit tests for simulator.api.auth (server-side HTTP Digest), no network."""

from __future__ import annotations

import base64
import hashlib
import re
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from requests.auth import HTTPDigestAuth
from requests.utils import parse_dict_header

from simulator.api.auth import (
    ROLE_RANK,
    AuthResult,
    DigestAuthenticator,
    _parse_client,
    _parse_fast,
    parse_auth_params,
    role_allows,
)

REALM = "AXIS_ACCC8EF3D92E"
USERS = {
    "root": ("pass", "administrator"),
    "op": ("op-secret", "operator"),
    "guest": ("guest", "viewer"),
}
SECRET = b"s" * 32


class FakeWall:
    """Injectable clock."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(algorithm: str = "MD5", **kw: object) -> DigestAuthenticator:
    kw.setdefault("secret", SECRET)
    return DigestAuthenticator(REALM, USERS, algorithm=algorithm, **kw)  # type: ignore[arg-type]


def parse_challenge(value: str) -> dict[str, str]:
    scheme, _, rest = value.partition(" ")
    assert scheme == "Digest"
    return parse_dict_header(rest)


def client_header(
    chal: dict[str, str],
    method: str,
    uri: str,
    user: str = "root",
    password: str = "pass",
    nc: int = 1,
    cnonce: str = "0a4f113b",
    qop: str | None = "auth",
    send_algorithm: bool = True,
    realm: str | None = None,
) -> str:
    """Independent RFC 7616 client: compute the response for a parsed challenge."""
    algorithm = chal.get("algorithm", "MD5")
    hname = {"MD5": "md5", "SHA-256": "sha256"}[algorithm]

    def h(s: str) -> str:
        return hashlib.new(hname, s.encode()).hexdigest()

    realm = chal["realm"] if realm is None else realm
    nonce = chal["nonce"]
    ha1 = h(f"{user}:{chal['realm']}:{password}")
    ha2 = h(f"{method}:{uri}")
    ncv = f"{nc:08x}"
    response = h(f"{ha1}:{nonce}:{ncv}:{cnonce}:{qop}:{ha2}")
    parts = [
        f'username="{user}"',
        f'realm="{realm}"',
        f'nonce="{nonce}"',
        f'uri="{uri}"',
        f'response="{response}"',
    ]
    if send_algorithm:
        parts.append(f"algorithm={algorithm}")
    if qop is not None:
        parts += [f"qop={qop}", f"nc={ncv}", f'cnonce="{cnonce}"']
    return "Digest " + ", ".join(parts)


def requests_header(
    chal: dict[str, str],
    method: str,
    url: str,
    user: str = "root",
    password: str = "pass",
    client: HTTPDigestAuth | None = None,
) -> tuple[str, HTTPDigestAuth]:
    client = client or HTTPDigestAuth(user, password)
    client.init_per_thread_state()
    client._thread_local.chal = chal
    header = client.build_digest_header(method, url)
    assert header is not None
    return header, client


# ---------------------------------------------------------------- challenge / roles

CHALLENGE_RE = re.compile(
    r'^Digest realm="AXIS_ACCC8EF3D92E", nonce="[A-Za-z0-9_-]+", '
    r'algorithm=(MD5|SHA-256), qop="auth"(, stale=true)?$'
)


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_challenge_format_exact(algorithm: str) -> None:
    a = make(algorithm)
    plain = a.challenge()
    m = CHALLENGE_RE.match(plain)
    assert m and m.group(1) == algorithm and m.group(2) is None
    stale = a.challenge(stale=True)
    m = CHALLENGE_RE.match(stale)
    assert m and m.group(2) == ", stale=true"
    assert parse_challenge(plain)["nonce"] != parse_challenge(a.challenge())["nonce"]


def test_role_allows_ordering() -> None:
    assert ROLE_RANK["viewer"] < ROLE_RANK["operator"] < ROLE_RANK["administrator"]
    order = ["viewer", "operator", "administrator"]
    for i, have in enumerate(order):
        for j, need in enumerate(order):
            assert role_allows(have, need) is (i >= j)
    assert not role_allows("nobody", "viewer")
    assert not role_allows("administrator", "god")


def test_unknown_role_rejected_at_init() -> None:
    with pytest.raises(ValueError):
        DigestAuthenticator(REALM, {"x": ("y", "superuser")})


# ---------------------------------------------------------------- success paths


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
@pytest.mark.parametrize(
    ("user", "password", "role"),
    [
        ("root", "pass", "administrator"),
        ("op", "op-secret", "operator"),
        ("guest", "guest", "viewer"),
    ],
)
def test_success_own_client(algorithm: str, user: str, password: str, role: str) -> None:
    a = make(algorithm)
    chal = parse_challenge(a.challenge())
    uri = "/local/occupancy/.api?live.json"
    res = a.check("GET", uri, client_header(chal, "GET", uri, user, password))
    assert res == AuthResult(ok=True, user=user, role=role, stale=False, reason="ok")


def test_absent_algorithm_means_md5() -> None:
    a = make("MD5")
    chal = parse_challenge(a.challenge())
    hdr = client_header(chal, "GET", "/axis-cgi/x.cgi", send_algorithm=False)
    assert a.check("GET", "/axis-cgi/x.cgi", hdr).ok


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
@pytest.mark.parametrize(
    ("url", "uri"),
    [
        ("http://cam/axis-cgi/basicdeviceinfo.cgi", "/axis-cgi/basicdeviceinfo.cgi"),
        ("http://cam:8080/local/occupancy/.api?live.json", "/local/occupancy/.api?live.json"),
        ("http://cam/axis-cgi/param.cgi?action=list&group=root.Brand", None),
    ],
)
def test_requests_interop(algorithm: str, url: str, uri: str | None) -> None:
    uri = uri or "/axis-cgi/param.cgi?action=list&group=root.Brand"
    a = make(algorithm, strict_nc=True)
    chal = parse_challenge(a.challenge())
    header, client = requests_header(chal, "POST", url)
    assert 'algorithm="' in header  # requests quotes the algorithm
    res = a.check("POST", uri, header)
    assert res.ok and res.user == "root" and res.role == "administrator", res
    # requests reuses the nonce with nc=2, 3: strict mode accepts increasing nc
    for expected_nc in (2, 3):
        header, _ = requests_header(chal, "POST", url, client=client)
        assert f"nc={expected_nc:08x}" in header
        assert a.check("POST", uri, header).ok
    # a wrong password through requests fails cleanly
    bad, _ = requests_header(chal, "POST", url, password="nope")
    assert a.check("POST", uri, bad).reason == "bad-response"


# ---------------------------------------------------------------- credential failures


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_wrong_password(algorithm: str) -> None:
    a = make(algorithm)
    chal = parse_challenge(a.challenge())
    res = a.check("GET", "/x", client_header(chal, "GET", "/x", password="wrong"))
    assert res == AuthResult(ok=False, user=None, role=None, stale=False, reason="bad-response")


def test_wrong_method_is_bad_response() -> None:
    a = make()
    chal = parse_challenge(a.challenge())
    assert a.check("POST", "/x", client_header(chal, "GET", "/x")).reason == "bad-response"


def test_unknown_user() -> None:
    a = make()
    chal = parse_challenge(a.challenge())
    res = a.check("GET", "/x", client_header(chal, "GET", "/x", user="mallory", password="pass"))
    assert not res.ok and not res.stale and res.reason == "unknown-user" and res.user is None


def test_forged_nonces() -> None:
    a = make()
    good = parse_challenge(a.challenge())["nonce"]
    flipped = good[:5] + ("A" if good[5] != "A" else "B") + good[6:]
    other = parse_challenge(make(secret=b"x" * 32).challenge())["nonce"]
    random_ok_shape = base64.urlsafe_b64encode(b"\x01" * 28).decode().rstrip("=")
    for nonce in [flipped, other, random_ok_shape, "abc", "", "!" * 38, good + "A", good[:-1]]:
        hdr = client_header({"realm": REALM, "nonce": nonce}, "GET", "/x")
        res = a.check("GET", "/x", hdr)
        assert res.reason == "bad-nonce" and not res.ok and not res.stale, nonce


# ---------------------------------------------------------------- expiry / stale


def test_expired_nonce_correct_password_is_stale_freezegun() -> None:
    a = make(nonce_lifetime=300.0)  # default wall: must follow freezegun
    t0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    with freeze_time(t0) as frozen:
        chal = parse_challenge(a.challenge())
        hdr = client_header(chal, "GET", "/x")
        frozen.move_to(t0 + timedelta(seconds=300))
        assert a.check("GET", "/x", hdr).ok  # age == lifetime still fresh
        frozen.move_to(t0 + timedelta(seconds=301))
        res = a.check("GET", "/x", hdr)
        assert res == AuthResult(ok=False, user=None, role=None, stale=True, reason="stale-nonce")
        bad = client_header(chal, "GET", "/x", password="wrong")
        res = a.check("GET", "/x", bad)
        assert not res.stale and res.reason == "bad-response"
        # the client retries with the stale challenge's new nonce and succeeds
        retry = parse_challenge(a.challenge(stale=True))
        assert retry["stale"] == "true"
        assert a.check("GET", "/x", client_header(retry, "GET", "/x")).ok


def test_expired_nonce_injected_wall() -> None:
    wall = FakeWall()
    a = make("SHA-256", nonce_lifetime=10.0, wall=wall)
    chal = parse_challenge(a.challenge())
    hdr = client_header(chal, "GET", "/x")
    wall.now += 9.5
    assert a.check("GET", "/x", hdr).ok
    wall.now += 1.0
    assert a.check("GET", "/x", hdr).reason == "stale-nonce"
    assert a.check("GET", "/x", hdr).stale
    wrong = client_header(chal, "GET", "/x", password="nope")
    assert a.check("GET", "/x", wrong) == AuthResult(False, None, None, False, "bad-response")


# ---------------------------------------------------------------- nonce counts


def test_strict_nc_replay() -> None:
    a = make(strict_nc=True, wall=FakeWall())
    chal = parse_challenge(a.challenge())
    assert a.check("GET", "/x", client_header(chal, "GET", "/x", nc=1)).ok
    res = a.check("GET", "/x", client_header(chal, "GET", "/x", nc=1))
    assert res == AuthResult(ok=False, user=None, role=None, stale=True, reason="replayed-nc")
    assert a.check("GET", "/x", client_header(chal, "GET", "/x", nc=2)).ok
    assert a.check("GET", "/x", client_header(chal, "GET", "/x", nc=7)).ok
    assert a.check("GET", "/x", client_header(chal, "GET", "/x", nc=5)).reason == "replayed-nc"
    # a replay with a wrong password is a credential failure, not a stale one
    bad = a.check("GET", "/x", client_header(chal, "GET", "/x", nc=1, password="x"))
    assert bad.reason == "bad-response" and not bad.stale
    # another nonce has its own counter
    chal2 = parse_challenge(a.challenge())
    assert a.check("GET", "/x", client_header(chal2, "GET", "/x", nc=1)).ok


def test_non_strict_allows_reuse_and_keeps_no_state() -> None:
    a = make(strict_nc=False)
    chal = parse_challenge(a.challenge())
    hdr = client_header(chal, "GET", "/x", nc=1)
    for _ in range(3):
        assert a.check("GET", "/x", hdr).ok
    assert a._nc_seen == {}


def test_strict_nc_memory_pruned_and_capped() -> None:
    wall = FakeWall()
    a = make(strict_nc=True, nonce_lifetime=60.0, wall=wall)
    for _ in range(5):
        chal = parse_challenge(a.challenge())
        assert a.check("GET", "/x", client_header(chal, "GET", "/x")).ok
    assert len(a._nc_seen) == 5
    wall.now += 61
    chal = parse_challenge(a.challenge())
    assert a.check("GET", "/x", client_header(chal, "GET", "/x")).ok
    assert len(a._nc_seen) == 1  # expired entries dropped on insert
    a.nc_table_size = 3
    for _ in range(10):
        chal = parse_challenge(a.challenge())
        assert a.check("GET", "/x", client_header(chal, "GET", "/x")).ok
        assert len(a._nc_seen) <= 3


# ---------------------------------------------------------------- request matching


def test_uri_matching() -> None:
    a = make()
    chal = parse_challenge(a.challenge())
    ok_exact = client_header(chal, "GET", "/a?b=1")
    assert a.check("GET", "/a?b=1", ok_exact).ok
    # Apache leniency: header uri is the bare path while the request has a query
    assert a.check("GET", "/a?b=1", client_header(chal, "GET", "/a")).ok
    assert a.check("GET", "/a", ok_exact).reason == "uri-mismatch"
    assert a.check("GET", "/a?b=2", ok_exact).reason == "uri-mismatch"
    assert a.check("GET", "/other", client_header(chal, "GET", "/a")).reason == "uri-mismatch"


def test_wrong_realm() -> None:
    a = make()
    chal = parse_challenge(a.challenge())
    hdr = client_header(chal, "GET", "/x", realm="AXIS_000000000000")
    assert a.check("GET", "/x", hdr).reason == "wrong-realm"


def test_algorithm_mismatch() -> None:
    md5, sha = make("MD5"), make("SHA-256")
    chal = parse_challenge(sha.challenge())
    assert md5.check("GET", "/x", client_header(chal, "GET", "/x")).reason == (
        "unsupported-algorithm"
    )
    chal = parse_challenge(md5.challenge())
    assert sha.check("GET", "/x", client_header(chal, "GET", "/x")).reason == (
        "unsupported-algorithm"
    )
    # no algorithm param means MD5, which the SHA-256 authenticator refuses
    hdr = client_header(chal, "GET", "/x", send_algorithm=False)
    assert sha.check("GET", "/x", hdr).reason == "unsupported-algorithm"


def test_qop_required() -> None:
    a = make()
    chal = parse_challenge(a.challenge())
    assert a.check("GET", "/x", client_header(chal, "GET", "/x", qop=None)).reason == (
        "unsupported-qop"
    )
    hdr = client_header(chal, "GET", "/x", qop="auth-int")
    assert a.check("GET", "/x", hdr).reason == "unsupported-qop"


@pytest.mark.parametrize("nc", ["1", "0000001", "000000001", "0000000g", ""])
def test_bad_nc_is_malformed(nc: str) -> None:
    a = make()
    chal = parse_challenge(a.challenge())
    hdr = client_header(chal, "GET", "/x").replace("nc=00000001", f"nc={nc}")
    assert a.check("GET", "/x", hdr).reason == "malformed"


# ---------------------------------------------------------------- parsing


def test_lenient_but_correct_parsing() -> None:
    user, password, uri = 'we,ird "user"', "p,w", "/a,b?c=d,e"
    a = DigestAuthenticator(REALM, {user: (password, "viewer")}, secret=SECRET)
    nonce = parse_challenge(a.challenge())["nonce"]

    def h(s: str) -> str:
        return hashlib.md5(s.encode()).hexdigest()

    ha1, ha2 = h(f"{user}:{REALM}:{password}"), h(f"GET:{uri}")
    response = h(f"{ha1}:{nonce}:00000001:0a4f113b:auth:{ha2}")
    escaped = user.replace('"', '\\"')
    ugly = (
        f'  dIgEsT   USERNAME = "{escaped}" ,Realm="{REALM}",,  nonce={nonce} ,'
        f'URI="{uri}",response={response.upper()}, Algorithm=md5, QOP="auth",'
        f'NC=00000001,cnonce=0a4f113b , opaque="ignored, really"  '
    )
    res = a.check("GET", uri, ugly)
    assert res.ok and res.user == user and res.role == "viewer", res


def test_non_ascii_values_do_not_raise() -> None:
    a = make()
    chal = parse_challenge(a.challenge())
    hdr = client_header(chal, "GET", "/x")
    hdr = re.sub(r'response="[0-9a-f]+"', 'response="\u00e9\udcff\ud800"', hdr)
    assert a.check("GET", "/x", hdr).reason == "bad-response"
    hdr = client_header(chal, "GET", "/\u00e9", user="\u00fc")
    assert a.check("GET", "/\u00e9", hdr).reason == "unknown-user"


def test_parse_auth_params() -> None:
    assert parse_auth_params('a=1, B="x, y", c="q\\"q"') == {"a": "1", "b": "x, y", "c": 'q"q'}
    assert parse_auth_params("") == {}
    assert parse_auth_params('a="unterminated') is None
    assert parse_auth_params("a=1 b=2") is None
    assert parse_auth_params("a=1, a=2") is None
    assert parse_auth_params("=1") is None
    assert parse_auth_params("a") is None


CLIENT_LISTS = [
    # requests' HTTPDigestAuth, httpx's DigestAuth (algorithm and qop bare)
    'username="viewer", realm="AXIS_X", nonce="n0", uri="/a?b=1", response="ab12", '
    'algorithm="MD5", qop="auth", nc=00000001, cnonce="c0ffee"',
    'username="viewer", realm="AXIS_X", nonce="n0", uri="/a", response="ab12", '
    'algorithm=SHA-256, qop=auth, nc=0000000a, cnonce="c0ffee"',
    'username="", realm="", nonce="", uri="", response="", algorithm="", qop=, nc=, cnonce=""',
    'username="a, b=c", realm="r\tq", nonce="n", uri="/", response="r", algorithm=MD5, '
    'qop="auth", nc=00000001, cnonce="c"',
]


@pytest.mark.parametrize("text", CLIENT_LISTS)
def test_client_shaped_parse_is_the_general_parse(text: str) -> None:
    """The one-match parse of real clients' lists gives what the general parser gives; any
    other list (here: each one cut or changed one character at a time) is left to it."""
    assert _parse_client(text) is not None
    assert _parse_client(text) == _parse_fast(text) == parse_auth_params(text)
    variants = {text[:i] for i in range(len(text))}
    for i in range(len(text)):
        for other in ('"', "\\", ",", " ", "\t", "\n", "=", "X"):
            variants.add(text[:i] + other + text[i + 1 :])
    for v in variants:
        client = _parse_client(v)
        assert client is None or client == _parse_fast(v), v


MALFORMED = [
    "",
    "   ",
    "Digest",
    "Digest ",
    "Digest ,,,",
    "Digest =",
    "Digest ===",
    'Digest username="root',
    'Digest username="root", realm="x',
    'Digest username=root"',
    "Digest username",
    "Digest username=",
    'Digest username="root" realm="x"',
    'Digest username="root", username="root"',
    'Digest username="a\\',
    "Basic cm9vdDpwYXNz",
    "Bearer abc.def.ghi",
    "Digestusername=root",
    "Digest username=root, realm=AXIS_ACCC8EF3D92E",
    'Digest username="r", realm="AXIS_ACCC8EF3D92E", nonce="n", uri="/x", response="r"',
    "Digest \x00\x01\x02=\x03",
    "Digest username=\udcff\ud800, realm=\u00e9",
    "\u2603 snowman",
    'Digest username="root", realm="AXIS_ACCC8EF3D92E", nonce="aaaa", uri="/x", '
    'response="\u00e9\u00e9", qop=auth, nc=00000001, cnonce="c"',
]


@pytest.mark.parametrize("value", MALFORMED)
@pytest.mark.parametrize("strict", [False, True])
def test_malformed_never_raises(value: str, strict: bool) -> None:
    a = make(strict_nc=strict)
    res = a.check("GET", "/x", value)
    assert isinstance(res, AuthResult)
    assert not res.ok and not res.stale and res.user is None
    assert res.reason in {"missing", "malformed", "unsupported-qop", "bad-nonce"}


def test_missing_header() -> None:
    res = make().check("GET", "/x", None)
    assert res == AuthResult(ok=False, user=None, role=None, stale=False, reason="missing")
    assert make().check("GET", "/x", "Basic cm9vdDpwYXNz").reason in {"missing", "malformed"}


def test_fresh_headers_keep_a_device_checkers_memory_bounded() -> None:
    """Clients that never repeat a header (new nc and cnonce, new URIs) leave a device's
    checker no bigger after thousands of requests than after a few hundred: 10,000 devices
    each keep a bounded memo."""
    a = make()
    chal = parse_challenge(a.challenge())

    def ask(i: int) -> None:
        uri = f"/a3dpc/api/export/json?start={i}"
        hdr = client_header(chal, "GET", uri, nc=i + 1, cnonce=f"{i:016x}")
        assert a.check("GET", uri, hdr).ok

    for i in range(300):
        ask(i)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for i in range(300, 3000):
            ask(i)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(d.size_diff for d in after.compare_to(before, "filename"))
    assert grown < 16_384, grown  # 2,700 more requests: a few memo entries at most
