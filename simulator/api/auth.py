"""Server-side HTTP Digest authentication (RFC 7616 / 2617), as Apache mod_auth_digest does it.

Pure module (no aiohttp): the HTTP layer passes the method, the request URI and the raw
``Authorization`` header to :meth:`DigestAuthenticator.check` and puts the value of
:meth:`DigestAuthenticator.challenge` into ``WWW-Authenticate`` on a 401.

Nonces are stateless: ``base64url(timestamp_us | sequence | HMAC-SHA256(secret, ...)[:16])``,
so forged nonces are rejected without a nonce table. Only ``strict_nc`` keeps (bounded) state,
and fails closed when it loses some: a nonce whose sequence number is not above every one the
table dropped (when full, or as expired) may have been used already, so it is stale, never fresh.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from simulator.clock import wall_time

Role = Literal["viewer", "operator", "administrator"]
ROLE_RANK: dict[str, int] = {"viewer": 0, "operator": 1, "administrator": 2}

_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{43}")
_NC_RE = re.compile(r"[0-9a-fA-F]{8}")
_MAC_LEN = 16
_RAW_LEN = 16  # 8-byte timestamp (µs) + 8-byte sequence number
_NC_CAP = 100_000
# The memos below are per device: small, so that 10,000 devices polled by clients that never
# repeat a header (a new nc and cnonce each request) keep a bounded, small memory.
_VERIFIED_CAP = 64  # nonces known to be ours (a client keeps one nonce for many requests)
_HA2_CAP = 64  # H(method:uri)
_MEMO_CAP = 8  # whole headers verified (only a client repeating its header meets one again)
_WS = " \t"


def role_allows(have: str, need: str) -> bool:
    """Return True when role ``have`` is at least as privileged as role ``need``."""
    if have not in ROLE_RANK or need not in ROLE_RANK:
        return False
    return ROLE_RANK[have] >= ROLE_RANK[need]


def _b(text: str) -> bytes:
    """Encode header text to bytes, tolerating surrogates from lenient header decoding."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class AuthResult:
    """Outcome of checking one request's ``Authorization`` header."""

    ok: bool
    user: str | None
    role: str | None
    stale: bool
    reason: str


def _fail(reason: str, stale: bool = False) -> AuthResult:
    """Build a failed :class:`AuthResult`."""
    return AuthResult(ok=False, user=None, role=None, stale=stale, reason=reason)


_PARAM = r'[ \t,]*([^ \t,="]+)[ \t]*=[ \t]*(?:"([^"\\]*(?:\\.[^"\\]*)*)"|([^ \t,"]*))[ \t]*(?:,|$)'
#: One pass over a parameter list: each match is a parameter, the separators at its end, or
#: one character that fits neither (then the list is not well-formed: the slow parser decides).
_SCAN_RE = re.compile(_PARAM + r"|[ \t,]+\Z|(.)", re.DOTALL)
_UNESCAPE_RE = re.compile(r"\\(.)")
_REQUIRED = frozenset(("username", "realm", "nonce", "uri", "response"))


_Q = r'"([^"\\]*)"'  # a quoted value without escapes
_QB = r'(?:"([^"\\]*)"|([^ \t,"]*))'  # the same, or a bare one
#: The parameters as ``requests`` and ``httpx`` lay them out (their order, ", " between,
#: no escapes; algorithm and qop quoted or bare). A list of this shape parses to the same
#: dictionary as by :data:`_SCAN_RE`, in one match (the common case of the common case).
_CLIENT_RE = re.compile(
    rf"username={_Q}, realm={_Q}, nonce={_Q}, uri={_Q}, response={_Q}, "
    rf"algorithm={_QB}, qop={_QB}, nc=([^ \t,\"]*), cnonce={_Q}"
)


def _parse_client(text: str) -> dict[str, str] | None:
    """The parameters of a list in :data:`_CLIENT_RE`'s shape; None if not of that shape."""
    m = _CLIENT_RE.fullmatch(text)
    if m is None:
        return None
    user, realm, nonce, uri, response, alg_q, alg, qop_q, qop, nc, cnonce = m.groups()
    return {
        "username": user, "realm": realm, "nonce": nonce, "uri": uri, "response": response,
        "algorithm": alg if alg_q is None else alg_q, "qop": qop if qop_q is None else qop_q,
        "nc": nc, "cnonce": cnonce,
    }  # fmt: skip


def _parse_fast(text: str) -> dict[str, str] | None:
    """Regex parse of well-formed parameter lists (the common case); None to fall back."""
    params: dict[str, str] = {}
    for key, quoted, bare, junk in _SCAN_RE.findall(text):
        if junk:
            return None
        if not key:
            continue  # the separators at the end
        key = key.lower()
        if key in params:
            return None
        if "\\" in quoted:
            quoted = _UNESCAPE_RE.sub(r"\1", quoted)
        params[key] = quoted or bare
    return params


def parse_auth_params(text: str) -> dict[str, str] | None:
    """Parse ``k=v, k="v", ...`` into a dict with lower-cased keys; None when unparsable."""
    fast = _parse_client(text) or _parse_fast(text)
    if fast is not None:
        return fast
    params: dict[str, str] = {}
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _WS + ",":
            i += 1
        if i >= n:
            return params
        j = i
        while j < n and text[j] not in _WS + ',="':
            j += 1
        key = text[i:j].lower()
        i = j
        while i < n and text[i] in _WS:
            i += 1
        if not key or i >= n or text[i] != "=":
            return None
        i += 1
        while i < n and text[i] in _WS:
            i += 1
        if i < n and text[i] == '"':
            i += 1
            buf: list[str] = []
            while True:
                if i >= n:
                    return None  # unbalanced quote
                ch = text[i]
                if ch == "\\" and i + 1 < n:
                    buf.append(text[i + 1])
                    i += 2
                elif ch == '"':
                    i += 1
                    break
                else:
                    buf.append(ch)
                    i += 1
            value = "".join(buf)
        else:
            j = i
            while j < n and text[j] not in _WS + ",":
                j += 1
            value, i = text[i:j], j
            if '"' in value:
                return None
        if key in params:
            return None  # duplicated parameter
        params[key] = value
        while i < n and text[i] in _WS:
            i += 1
        if i < n and text[i] != ",":
            return None


class DigestAuthenticator:
    """Validate Digest credentials (qop=auth) against a fixed user table for one realm."""

    def __init__(
        self,
        realm: str,
        users: Mapping[str, tuple[str, str]],
        algorithm: Literal["MD5", "SHA-256"] = "MD5",
        nonce_lifetime: float = 300.0,
        strict_nc: bool = False,
        secret: bytes | None = None,
        wall: Callable[[], float] = wall_time,
        nc_table_size: int = _NC_CAP,
    ) -> None:
        if algorithm not in ("MD5", "SHA-256"):
            raise ValueError(f"unsupported digest algorithm: {algorithm!r}")
        self.realm = realm
        self.algorithm: str = algorithm
        self.nonce_lifetime = float(nonce_lifetime)
        self.strict_nc = strict_nc
        self.nc_table_size = nc_table_size
        self._hash = hashlib.md5 if algorithm == "MD5" else hashlib.sha256
        self._secret = secret if secret is not None else os.urandom(32)
        self._wall = wall
        # user -> HA1 and the user's successful result (immutable: shared by every request)
        self._ha1: dict[str, tuple[str, AuthResult]] = {}
        for name, (password, role) in users.items():
            if role not in ROLE_RANK:
                raise ValueError(f"unknown role {role!r} for user {name!r}")
            ok = AuthResult(True, name, role, False, "ok")
            self._ha1[name] = (self._h(name, realm, password), ok)
        self._dummy_ha1 = self._h("\0unknown", realm, os.urandom(16).hex())
        # (method, digest uri) -> HA2, a bounded memo: a client asks for few URIs
        self._ha2: dict[tuple[str, str], str] = {}
        # nonce -> (issue time, sequence, highest nc seen); insertion-ordered for pruning
        self._nc_seen: dict[str, tuple[float, int, int]] = {}
        # nonces are numbered from the creation time in µs (above those of an earlier run with
        # the same secret); the nc table forgot every nonce numbered up to ``_forgotten``
        self._next_seq = max(0, int(self._wall() * 1_000_000))
        self._forgotten = self._next_seq - 1
        # nonces whose signature was already checked -> issue time, sequence (a bounded memo)
        self._verified: dict[str, tuple[float, int]] = {}
        # (method, uri, header) whose digest was verified -> result, nonce, issue time,
        # sequence, nc; a repeated header skips parsing and hashing, not the age/replay checks
        self._memo: dict[tuple[str, str, str], tuple[AuthResult, str, float, int, int]] = {}

    def _h(self, *parts: str) -> str:
        """Hex digest of the ``:``-joined parts with the configured algorithm."""
        return self._hash(_b(":".join(parts))).hexdigest()

    def _mac(self, raw: bytes) -> bytes:
        """Truncated HMAC-SHA256 of the nonce payload."""
        return hmac.new(self._secret, raw, hashlib.sha256).digest()[:_MAC_LEN]

    def make_nonce(self) -> str:
        """Issue a fresh stateless nonce stamped with the current wall time."""
        stamp = max(0, int(self._wall() * 1_000_000)).to_bytes(8, "big")
        raw = stamp + (self._next_seq % 2**64).to_bytes(8, "big")
        self._next_seq += 1
        return base64.urlsafe_b64encode(raw + self._mac(raw)).decode("ascii").rstrip("=")

    def nonce_issued_at(self, nonce: str) -> tuple[float, int] | None:
        """Return the issue time and sequence of a nonce we signed; None if forged or garbled."""
        known = self._verified.get(nonce)
        if known is not None:
            return known
        if not _NONCE_RE.fullmatch(nonce):
            return None
        blob = base64.urlsafe_b64decode(nonce + "==")
        raw, mac = blob[:_RAW_LEN], blob[_RAW_LEN:]
        if len(mac) != _MAC_LEN or not hmac.compare_digest(mac, self._mac(raw)):
            return None
        issued = int.from_bytes(raw[:8], "big") / 1_000_000, int.from_bytes(raw[8:], "big")
        if len(self._verified) >= _VERIFIED_CAP:
            self._verified.clear()
        self._verified[nonce] = issued
        return issued

    def challenge(self, stale: bool = False) -> str:
        """Return the value of one ``WWW-Authenticate`` header with a fresh nonce."""
        realm = self.realm.replace("\\", "\\\\").replace('"', '\\"')
        value = (
            f'Digest realm="{realm}", nonce="{self.make_nonce()}", '
            f'algorithm={self.algorithm}, qop="auth"'
        )
        return value + ", stale=true" if stale else value

    def check(self, method: str, uri: str, authorization: str | None) -> AuthResult:
        """Validate an ``Authorization`` header for ``method`` on request ``uri``; never raises."""
        memo = self._memo.get((method, uri, authorization)) if authorization else None
        if memo is not None:
            return self._fresh(*memo)
        if authorization is None or not authorization.strip():
            return _fail("missing")
        scheme, _, rest = authorization.strip().partition(" ")
        if scheme.lower() != "digest":
            return _fail("malformed")
        p = parse_auth_params(rest)
        if p is None or not p.keys() >= _REQUIRED:
            return _fail("malformed")
        if p.get("algorithm", "MD5").upper() != self.algorithm:
            return _fail("unsupported-algorithm")
        qop = p.get("qop")
        if qop is None or qop.lower() != "auth":
            return _fail("unsupported-qop")
        nc_text, cnonce = p.get("nc", ""), p.get("cnonce", "")
        if not _NC_RE.fullmatch(nc_text) or not cnonce:
            return _fail("malformed")
        if p["realm"] != self.realm:
            return _fail("wrong-realm")
        path, qmark, _query = uri.partition("?")
        if p["uri"] != uri and not (qmark and p["uri"] == path):
            return _fail("uri-mismatch")
        nonce = p["nonce"]
        stamp = self.nonce_issued_at(nonce)
        if stamp is None:
            return _fail("bad-nonce")

        user = p["username"]
        entry = self._ha1.get(user)
        ha1, ok = entry if entry is not None else (self._dummy_ha1, None)
        ha2 = self._ha2.get((method, p["uri"]))
        if ha2 is None:
            if len(self._ha2) >= _HA2_CAP:
                self._ha2.clear()
            ha2 = self._ha2[method, p["uri"]] = self._h(method, p["uri"])
        expected = self._h(ha1, nonce, nc_text, cnonce, qop, ha2)
        matches = hmac.compare_digest(expected.encode(), _b(p["response"].lower()))
        if ok is None:
            return _fail("unknown-user")
        if not matches:
            return _fail("bad-response")
        verified = (ok, nonce, *stamp, int(nc_text, 16))
        if len(self._memo) >= _MEMO_CAP:
            self._memo.clear()
        self._memo[(method, uri, authorization)] = verified
        return self._fresh(*verified)

    def _fresh(self, ok: AuthResult, nonce: str, issued: float, seq: int, nc: int) -> AuthResult:
        """Apply the time-dependent checks to verified credentials: nonce age, nc replay."""
        now = self._wall()
        if now - issued > self.nonce_lifetime:
            return _fail("stale-nonce", stale=True)
        if self.strict_nc:
            why = self._nc_refused(nonce, issued, seq, nc, now)
            if why is not None:
                return _fail(why, stale=True)
        return ok

    def _nc_refused(self, nonce: str, issued: float, seq: int, nc: int, now: float) -> str | None:
        """Record ``nc`` for ``nonce``; why it is refused (replay, state forgotten), or None."""
        seen = self._nc_seen.get(nonce)
        if seen is not None:
            if nc <= seen[2]:
                return "replayed-nc"
            self._nc_seen[nonce] = (issued, seq, nc)
            return None
        if seq <= self._forgotten:
            return "forgotten-nonce"  # its highest nc may have been dropped: fail closed
        horizon = now - self.nonce_lifetime
        while self._nc_seen:
            oldest = next(iter(self._nc_seen))
            oldest_issued, oldest_seq, _ = self._nc_seen[oldest]
            if oldest_issued >= horizon and len(self._nc_seen) < self.nc_table_size:
                break
            del self._nc_seen[oldest]
            self._forgotten = max(self._forgotten, oldest_seq)
        self._nc_seen[nonce] = (issued, seq, nc)
        return None
