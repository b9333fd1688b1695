"""One delivery attempt over HTTP(S), TLS trust like the device, and the retry backoff."""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from functools import lru_cache

import aiohttp
import numpy as np

from simulator.schema.scenario import PushConfig

READ_LIMIT = 64 * 1024  # bytes of a receiver's answer read at most; the rest is never read


class PushSetupError(ValueError):
    """A push configuration that cannot be used (e.g. an unreadable CA file)."""


@dataclass(frozen=True)
class Attempt:
    """The outcome of one POST: the HTTP status (None if there was none), error, latency."""

    status: int | None
    error: str | None
    latency_s: float
    received: int = 0  # bytes of the answer's body read (at most READ_LIMIT)

    @property
    def ok(self) -> bool:
        """A 2xx answer: delivered."""
        return self.status is not None and 200 <= self.status < 300


@lru_cache(maxsize=64)
def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Verification like the device: public (system) root CAs, plus a custom root CA file."""
    ctx = ssl.create_default_context()
    if ca_file is not None:
        try:
            ctx.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as e:
            raise PushSetupError(f"push ca_file {ca_file!r}: cannot load: {e}") from None
    return ctx


# A device posts with libcurl, which sends no User-Agent unless the application sets one
# (CURLOPT_USERAGENT defaults to none) and no Accept-Encoding unless asked to; aiohttp would
# add both, so they are left out.
SKIP_AUTO_HEADERS = frozenset({"User-Agent", "Accept-Encoding"})


def headers(cfg: PushConfig) -> dict[str, str]:
    """Request headers as libcurl sends them: ``Accept: */*``, JSON, and the Bearer token."""
    h = {"Accept": "*/*", "Content-Type": "application/json"}
    if cfg.token:
        h["Authorization"] = f"Bearer {cfg.token}"
    return h


async def post(session: aiohttp.ClientSession, cfg: PushConfig, body: str) -> Attempt:
    """POST one body; every failure (refused, timeout, TLS, non-2xx) becomes an Attempt.

    ``timeout_s`` bounds the whole attempt (connect, send, answer); at most
    :data:`READ_LIMIT` bytes of the answer are read, then the connection is closed.
    """
    t0 = time.perf_counter()
    try:
        async with asyncio.timeout(cfg.timeout_s):
            async with session.post(
                cfg.url,
                data=body.encode(),
                headers=headers(cfg),
                skip_auto_headers=SKIP_AUTO_HEADERS,
                ssl=tls_context(cfg.ca_file),
                timeout=aiohttp.ClientTimeout(total=None),
                allow_redirects=False,
            ) as resp:
                received = await read_bounded(resp)
                status = resp.status
    except TimeoutError:
        return Attempt(None, f"timeout after {cfg.timeout_s:g}s", time.perf_counter() - t0)
    except aiohttp.ClientConnectorCertificateError as e:
        return Attempt(None, f"TLS certificate rejected: {e.certificate_error}", _since(t0))
    except aiohttp.ClientSSLError as e:
        return Attempt(None, f"TLS failure: {e.os_error}", _since(t0))
    except aiohttp.ClientConnectorError as e:
        reason = e.os_error.strerror or str(e.os_error)
        return Attempt(None, f"cannot connect to {e.host}:{e.port}: {reason}", _since(t0))
    except (aiohttp.ClientError, OSError) as e:
        return Attempt(None, f"{type(e).__name__}: {e}", _since(t0))
    err = None if 200 <= status < 300 else f"HTTP {status}"
    return Attempt(status, err, _since(t0), received)


async def read_bounded(resp: aiohttp.ClientResponse) -> int:
    """Read the answer's body up to its end or :data:`READ_LIMIT` bytes; the byte count.

    An answer longer than that is cut: its connection is closed, not reused.
    """
    n = 0
    while n < READ_LIMIT:
        chunk = await resp.content.read(READ_LIMIT - n)
        if not chunk:
            return n
        n += len(chunk)
    if not resp.content.at_eof():
        resp.close()
    return n


def _since(t0: float) -> float:
    return time.perf_counter() - t0


def backoff(cfg: PushConfig, attempt: int, rng: np.random.Generator) -> float:
    """Wall seconds before retry ``attempt`` + 1: capped exponential, minus up to jitter."""
    base = cfg.backoff_initial_s * cfg.backoff_factor ** min(attempt - 1, 64)
    return min(cfg.backoff_max_s, base) * (1.0 - cfg.backoff_jitter * float(rng.random()))
