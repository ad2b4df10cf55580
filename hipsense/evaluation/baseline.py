"""A simple offline peak counter: the bar the product's counter has to clear.

Issue 10: a counter tuned on two people can fit their recordings instead of people. A plain
offline counter with a handful of parameters chosen once, from physiology, cannot fit
anything, so when it beats the product somewhere that is a warning, not noise. It sees the
whole recording at once (the product streams), and it is *not* the product's code: nothing
here is imported from ``hipsense.signal``.

The method, the same for every data set (UCI 25 Hz with a gyroscope, MEx 100 Hz
accelerometer only, CMU 100 Hz):

1. the accelerometer, zero-phase low-passed at :data:`LOWPASS_HZ`, normalised: the direction
   of gravity in the sensor frame (units do not matter, the gyroscope is not used);
2. projected on its first principal axis: the thigh's main tilt, in degrees;
3. turned so that excursions point up: rest is where the thigh spends most time (the median),
   and reps go to the side that reaches farther from it. Reps that go both ways from the middle
   (the catalogue's ``bidirectional``, side to side) count every swing to either side: the
   distance from the median;
4. ``scipy.signal.find_peaks`` with a prominence of :data:`PROMINENCE_FRACTION` of the
   signal's own 1-99 % range and peaks at least :data:`MIN_DISTANCE_S` apart.

Where the parameters come from (chosen once, before any data set was scored, never per data
set): the fastest deliberate rep of a hip exercise takes about a second, so a 2 Hz low-pass
keeps its shape and removes tremor (4-12 Hz) and heel knocks; two reps are never closer than
0.8 s (the product's twitch bar, a physiological figure); a rep rises at least a quarter of
the largest movement in the recording — a protocol's "low amplitude" rep (half range) counts,
a held leg's sway of a few degrees against tens does not.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from scipy.signal import butter, find_peaks, sosfiltfilt

LOWPASS_HZ = 2.0
PROMINENCE_FRACTION = 0.25
MIN_DISTANCE_S = 0.8
PARAMETERS = {"lowpass_hz": LOWPASS_HZ, "prominence_fraction_of_1_99_range": PROMINENCE_FRACTION,
              "min_distance_s": MIN_DISTANCE_S}
METHOD = ("offline: accelerometer low-passed (zero-phase Butterworth, 2nd order) at lowpass_hz, "
          "normalised, projected on its first principal axis, excursions turned away from the median; "
          "scipy.signal.find_peaks with prominence = prominence_fraction x the 1-99 % range and "
          "distance = min_distance_s (hipsense/evaluation/baseline.py)")


def tilt_signal(t_s: np.ndarray, acc: np.ndarray, lowpass_hz: float = LOWPASS_HZ) -> np.ndarray:
    """The thigh's main tilt, degrees: low-passed gravity direction on its first principal axis."""
    fs = 1.0 / float(np.median(np.diff(t_s)))
    sos = butter(2, min(lowpass_hz, 0.45 * fs), fs=fs, output="sos")
    g = sosfiltfilt(sos, np.asarray(acc, dtype=float), axis=0) if len(t_s) > 15 else np.asarray(acc, float)
    u = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-9)
    u = u - u.mean(axis=0)
    axis = np.linalg.svd(u, full_matrices=False)[2][0]
    return np.degrees(np.arcsin(np.clip(u @ axis, -1.0, 1.0)))


def count_peaks(t_s: np.ndarray, acc: np.ndarray, *, both_ways: bool = False,
                lowpass_hz: float = LOWPASS_HZ, prominence_fraction: float = PROMINENCE_FRACTION,
                min_distance_s: float = MIN_DISTANCE_S) -> int:
    """Reps in one recording (``both_ways``: swings to either side of the middle each count)."""
    t_s = np.asarray(t_s, dtype=float)
    if len(t_s) < 3:
        return 0
    x = tilt_signal(t_s, acc, lowpass_hz)
    x = x - np.median(x)
    if both_ways:
        x = np.abs(x)
    elif -np.percentile(x, 1) > np.percentile(x, 99):
        x = -x
    lo, hi = np.percentile(x, [1, 99])
    fs = 1.0 / float(np.median(np.diff(t_s)))
    peaks, _ = find_peaks(x, prominence=max(prominence_fraction * (hi - lo), 1e-6),
                          distance=max(1, int(round(min_distance_s * fs))))
    return int(len(peaks))


def score(pairs: Iterable[tuple[int | None, int]]) -> dict[str, Any]:
    """exact / within ±1 / MAE of (counted, true) pairs; None counts as 0."""
    pairs = [(c or 0, t) for c, t in pairs]
    if not pairs:
        return {"sets": 0, "exact_rate": None, "within1_rate": None, "mae": None, "reps_true": 0, "reps_counted": 0}
    errs = [abs(c - t) for c, t in pairs]
    return {"sets": len(pairs), "exact_rate": round(errs.count(0) / len(errs), 4),
            "within1_rate": round(sum(e <= 1 for e in errs) / len(errs), 4),
            "mae": round(sum(errs) / len(errs), 4),
            "reps_true": sum(t for _, t in pairs), "reps_counted": sum(c for c, _ in pairs)}


def grouped(sets: list[dict[str, Any]], key: str, group: str) -> dict[str, dict[str, Any]]:
    """:func:`score` of ``s[key]`` against ``s["true"]`` per value of ``s[group]`` (sorted)."""
    names = sorted({s[group] for s in sets})
    return {n: score((s[key], s["true"]) for s in sets if s[group] == n) for n in names}
