"""The counter's frame rate: per-minute mean rates, the frame counter and rolling averages.

A minute's mean rate is the nominal rate, dipping as more people pass (the counter works
harder on a crowded scene), with a little jitter, times an optional injected factor, never
below a floor. The frame counter is the integral of that rate since boot. The rolling
averages the legacy API reports (over the last 5/50/100/1000 frames) add per-frame interval
noise, drawn from generators keyed by frame number, so they shrink towards the minute's mean
as the window grows and the same instant always reads the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator.model.bins import IntArray
from simulator.model.specs import FramesSpec

FloatArray = npt.NDArray[np.float64]

#: Tag of the frame-rate random streams, so they never overlap the crowd's (seed, device, day).
FRAMES_TAG = 0x46505331  # "FPS1"
#: The windows (in frames) of the rolling averages.
WINDOWS = (5, 50, 100, 1000)
#: Frames per block of interval noise drawn from one generator.
BLOCK = 1024


def day_rng(seed: int, device_index: int, day_ordinal: int) -> np.random.Generator:
    """The frame-rate stream of one device-day, apart from the crowd's stream of that day."""
    return np.random.default_rng(
        np.random.SeedSequence([seed, device_index, day_ordinal, FRAMES_TAG])
    )


def minute_rates(
    people: IntArray,
    cfg: FramesSpec,
    rng: np.random.Generator,
    factor: FloatArray | None = None,
) -> FloatArray:
    """Mean frame rate of each minute: nominal × crowd dip × jitter × injected factor."""
    n = len(people)
    dip = 1.0 - cfg.crowd_drop * (1.0 - np.exp(-people.astype(np.float64) / cfg.crowd_scale))
    jitter = 1.0 + cfg.minute_jitter * rng.standard_normal(n)
    rates = cfg.nominal_fps * dip * np.clip(jitter, 0.5, 1.5)
    if factor is not None:
        rates = rates * factor
    return np.maximum(rates, cfg.min_fps)


def frames_until(rates: FloatArray, start: float, t: float) -> float:
    """Frames rendered from ``start`` (minute 0 of ``rates``) until ``t``, within the day."""
    if t <= start:
        return 0.0
    elapsed = min(t - start, 60.0 * len(rates))
    i = int(elapsed // 60)
    done = 60.0 * float(rates[:i].sum())
    if i < len(rates):
        done += float(rates[i]) * (elapsed - 60.0 * i)
    return done


def interval_noise(key: tuple[int, ...], first: int, last: int, sd: float) -> FloatArray:
    """Relative deviations of the intervals of frames ``first`` to ``last - 1``.

    Frame ``k``'s deviation comes from the generator of block ``k // BLOCK`` keyed by
    ``key``, so it is the same whichever request asks for it.
    """
    if last <= first or sd == 0:
        return np.zeros(max(0, last - first))
    parts = []
    for block in range(first // BLOCK, (last - 1) // BLOCK + 1):
        rng = np.random.default_rng(np.random.SeedSequence([*key, FRAMES_TAG, block]))
        parts.append(rng.standard_normal(BLOCK))
    z = np.concatenate(parts)[first - (first // BLOCK) * BLOCK :][: last - first]
    return np.clip(sd * z, -0.5, 0.5)


def _span(recent: FloatArray, into: float, n: float) -> float:
    """Seconds the last ``n`` frames took, walking back through the recent minutes' rates."""
    rate = float(recent[-1])
    here = rate * into
    if n <= here:
        return n / rate
    need, span = n - here, into
    for r in recent[-2::-1]:
        whole = float(r) * 60.0
        if need <= whole:
            return span + need / float(r)
        need -= whole
        span += 60.0
    return span + need / float(recent[0])


@dataclass(frozen=True)
class FrameStats:
    """What ``/stereo/fps.json`` reports: real-time rate, rolling averages, frame counter."""

    fps: float
    averages: dict[int, float]
    frames: int


def frame_stats(recent: FloatArray, into: float, frames: int, noise: FloatArray) -> FrameStats:
    """Real-time fps and the rolling averages at a moment.

    ``recent`` holds the mean rates of the last minutes, the current one last; ``into`` is
    the seconds elapsed in the current minute; ``frames`` the counter since boot; ``noise``
    the interval deviations of the last ``min(frames, max(WINDOWS))`` frames, oldest first.
    A window longer than the frames since boot averages over the frames there are.
    """
    rate = float(recent[-1])
    if frames <= 0:
        return FrameStats(rate, {w: 0.0 for w in WINDOWS}, 0)
    averages = {}
    for w in WINDOWS:
        n = min(w, frames)
        span = _span(recent, into, n) * (1.0 + float(noise[len(noise) - n :].mean()))
        averages[w] = n / span
    return FrameStats(rate / (1.0 + float(noise[-1])), averages, frames)
