"""Counter-based randomness: every random number is a pure function of where it is used.

A value is ``splitmix64(key + (j + 1) × γ)``: the ``j``-th output of the SplitMix64
generator (Steele, Lea & Flood 2014; Java's ``SplittableRandom``) started at ``key``. A
key names one *lane* of one site-day — ``(seed, site, day, lane)`` hashed — so the numbers
of a site-day do not depend on which other days are computed with it, or in what order,
and a whole year can be drawn in a few numpy calls. Only the numbers actually needed are
computed (``bits(keys, j)`` for any index array ``j``), so sparse draws cost nothing for the
rest.

The scalar samplers here (Poisson, gamma) draw one value per key, exactly (rejection
samplers whose attempt ``r`` reads indices ``k·r .. k·r + k − 1`` of the key's lane).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

U64Array = npt.NDArray[np.uint64]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_LANE = np.uint64(0xD1B54A32D192ED03)
_MASK64 = (1 << 64) - 1
_TWO53 = 2.0**-53
_MAX_ROUNDS = 64


def name_key(*parts: object) -> int:
    """A stable 64-bit key from names and numbers (not Python's salted ``hash``)."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def mix(z: U64Array) -> U64Array:
    """The SplitMix64 finaliser, applied in place to ``z`` (which it returns)."""
    t = np.empty_like(z)
    np.right_shift(z, np.uint64(30), out=t)
    np.bitwise_xor(z, t, out=z)
    np.multiply(z, _M1, out=z)
    np.right_shift(z, np.uint64(27), out=t)
    np.bitwise_xor(z, t, out=z)
    np.multiply(z, _M2, out=z)
    np.right_shift(z, np.uint64(31), out=t)
    np.bitwise_xor(z, t, out=z)
    return z


def lane_keys(base: int, days: npt.ArrayLike, lane: int) -> U64Array:
    """Keys of one lane for each day ordinal in ``days``, under a site's ``base`` key."""
    row: U64Array = lane_table(base, days, [lane])[0]
    return row


def lane_table(base: int, days: npt.ArrayLike, lanes: Sequence[int]) -> U64Array:
    """Keys of several lanes (rows) for each day ordinal in ``days`` (columns)."""
    d = np.asarray(days, dtype=np.uint64)
    z = mix(np.uint64(base) + (d + np.uint64(1)) * GAMMA)
    steps = np.array([((lane + 1) * int(_LANE)) & _MASK64 for lane in lanes], dtype=np.uint64)
    return mix(z[None, :] + steps[:, None])


def bits(keys: U64Array, j: npt.ArrayLike) -> U64Array:
    """64 random bits: output ``j`` of the stream of each key (both broadcast)."""
    z = (np.atleast_1d(np.asarray(j, dtype=np.uint64)) + np.uint64(1)) * GAMMA
    return mix(z + keys)


_ramp = np.zeros(0, dtype=np.uint64)


def _steps(n: int) -> U64Array:
    """``k × γ`` for k in 0..n−1 (a cached constant)."""
    global _ramp
    if len(_ramp) < n:
        _ramp = np.arange(max(n, 2 * len(_ramp)), dtype=np.uint64) * GAMMA
    return _ramp[:n]


def runs(keys: U64Array, start: IntArray, length: IntArray) -> U64Array:
    """Outputs ``start[s] .. start[s] + length[s] − 1`` of each key's stream, end to end.

    The same values as ``bits(np.repeat(keys, length), j)``, in fewer passes.
    """
    total = int(length.sum())
    before = np.cumsum(length) - length
    base = keys + (start.astype(np.uint64) + np.uint64(1)) * GAMMA
    base -= before.astype(np.uint64) * GAMMA
    z = np.repeat(base, length)
    z += _steps(total)
    return mix(z)


def uniform(keys: U64Array, j: npt.ArrayLike) -> FloatArray:
    """Uniform doubles in [0, 1) with 53 random bits: output ``j`` of each key's stream."""
    return to_unit(bits(keys, j))


def uniforms(keys: U64Array, first: int, count: int) -> FloatArray:
    """Outputs ``first .. first + count − 1`` of each key's stream as uniforms (rows)."""
    j = (np.arange(first, first + count, dtype=np.uint64) + np.uint64(1)) * GAMMA
    return to_unit(mix(keys[:, None] + j[None, :]))


def to_unit(b: U64Array) -> FloatArray:
    """Uniform doubles in [0, 1) from random words (their top 53 bits)."""
    result: FloatArray = (b >> np.uint64(11)).astype(np.float64) * _TWO53
    return result


def box_muller(u1: FloatArray, u2: FloatArray) -> FloatArray:
    """A standard normal value from two uniforms."""
    result: FloatArray = np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)
    return result


def gamma(keys: U64Array, shape: FloatArray) -> FloatArray:
    """One Gamma(shape, 1) value per key, exactly (Marsaglia & Tsang 2000).

    Attempt ``r`` uses outputs ``4r .. 4r + 3``. A shape below 1 is boosted: Gamma(a) =
    Gamma(a + 1) · U^(1/a), with U from output ``4·64``.
    """
    a = np.asarray(shape, dtype=np.float64)
    out = np.zeros(len(keys))
    boost = a < 1.0
    d = np.where(boost, a + 1.0, a) - 1.0 / 3.0
    c = 1.0 / np.sqrt(9.0 * d)
    todo = np.flatnonzero(a > 0)
    for r in range(_MAX_ROUNDS):
        if len(todo) == 0:
            break
        draws = uniforms(keys[todo], 4 * r, 3)
        x = box_muller(draws[:, 0], draws[:, 1])
        v = (1.0 + c[todo] * x) ** 3
        u = draws[:, 2]
        pos = v > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            logv = np.log(np.where(pos, v, 1.0))
        ok = pos & (
            (u < 1.0 - 0.0331 * x**4) | (np.log(u) < 0.5 * x * x + d[todo] * (1.0 - v + logv))
        )
        out[todo[ok]] = d[todo[ok]] * v[ok]
        todo = todo[~ok]
    if len(todo):  # pragma: no cover - probability below 1e-100
        out[todo] = d[todo]
    if boost.any():
        i = np.flatnonzero(boost)
        u = uniform(keys[i], np.uint64(4 * _MAX_ROUNDS))
        out[i] *= (1.0 - u) ** (1.0 / a[i])
    return out


def poisson(keys: U64Array, lam: FloatArray) -> IntArray:
    """One Poisson(lam) value per key, exactly.

    Below a mean of 10 by inversion (output 0); from 10 on by Hörmann's transformed
    rejection PTRS (1993), the method numpy uses, attempt ``r`` reading outputs ``2r, 2r+1``.
    """
    lam = np.asarray(lam, dtype=np.float64)
    out = np.zeros(len(keys), dtype=np.int64)
    small = np.flatnonzero((lam > 0) & (lam < 10))
    if len(small):
        out[small] = _poisson_inversion(keys[small], lam[small])
    big = np.flatnonzero(lam >= 10)
    if len(big):
        out[big] = _poisson_ptrs(keys[big], lam[big])
    return out


def _poisson_inversion(keys: U64Array, lam: FloatArray) -> IntArray:
    """Poisson by sequential search of the CDF (small means)."""
    u = uniform(keys, np.uint64(0))
    k = np.zeros(len(keys), dtype=np.int64)
    p = np.exp(-lam)
    f = p.copy()
    active = u > f
    n = 0
    while active.any() and n < 1000:
        n += 1
        k += active
        p = np.where(active, p * lam / np.maximum(k, 1), p)
        f = np.where(active, f + p, f)
        active &= u > f
    return k


def _poisson_ptrs(keys: U64Array, lam: FloatArray) -> IntArray:
    """Poisson by transformed rejection with squeeze (PTRS), means of 10 and more."""
    out = np.zeros(len(keys), dtype=np.int64)
    slam = np.sqrt(lam)
    loglam = np.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2.0)
    todo = np.arange(len(keys))
    for r in range(_MAX_ROUNDS):
        if len(todo) == 0:
            break
        draws = uniforms(keys[todo], 2 * r, 2)
        u = draws[:, 0] - 0.5
        v = draws[:, 1]
        us = 0.5 - np.abs(u)
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.floor((2.0 * a[todo] / us + b[todo]) * u + lam[todo] + 0.43)
        quick = (us >= 0.07) & (v <= vr[todo])
        reject = ~quick & ((k < 0) | ((us < 0.013) & (v > us)))
        test = np.flatnonzero(~quick & ~reject)
        ok = quick.copy()
        if len(test):
            t = todo[test]
            kt = k[test]
            lg = np.array([math.lgamma(x + 1.0) for x in kt.tolist()])
            with np.errstate(divide="ignore"):
                lhs = np.log(v[test]) + np.log(invalpha[t]) - np.log(a[t] / us[test] ** 2 + b[t])
            ok[test] = lhs <= -lam[t] + kt * loglam[t] - lg
        out[todo[ok]] = k[ok].astype(np.int64)
        todo = todo[~ok]
    if len(todo):  # pragma: no cover - probability below 1e-60
        out[todo] = np.rint(lam[todo]).astype(np.int64)
    return out
