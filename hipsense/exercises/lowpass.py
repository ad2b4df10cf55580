"""Zero-phase second-order Butterworth low-pass in numpy: ``scipy.signal.butter(2, ...)`` and
``filtfilt(..., padtype="odd")``, without importing scipy.

Why not scipy: the recogniser runs in the Pi's service, and ``scipy.signal`` pulls in
scipy.stats, optimize, interpolate and sparse: about 55 MB resident and 2 s of start-up on a
Pi-class machine, for two textbook formulas (issue 14). The tests check this module against
scipy's own output to 1e-9 (tests/exercises/test_lowpass.py).

How it stays fast without a per-sample Python loop: a second-order IIR filter is linear, so
over a block of ``n`` samples its output is the input convolved with the filter's impulse
response (``np.convolve``, in C) plus the response to its initial state, a combination of two
fixed sequences. Those sequences depend only on the cut-off and ``n``; they are computed once by
the recurrence itself (direct form II transposed, as scipy's ``lfilter``) and cached, and the
impulse response is cut where it has decayed below 1e-17 of its peak (below double rounding).
The result is the recurrence's numbers up to rounding, at about scipy's speed (0.3-0.5 ms for a
15 s window of three axes at 25 Hz, scipy 0.43 ms). A dense n × n matrix of the whole filtfilt
would be three times faster but cache 1.1 MB per cut-off: not worth it at one window per 5 s.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = ["butter2_lowpass", "filtfilt_lowpass"]


@lru_cache(maxsize=16)
def butter2_lowpass(cutoff_hz: float, fs_hz: float) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """``(b, a)`` of the 2nd-order Butterworth low-pass, as ``scipy.signal.butter(2, fc/(fs/2))``.

    The analogue prototype ``1 / (s² + √2 s + 1)`` through the bilinear transform, with the
    cut-off pre-warped (``K = tan(π fc / fs)``) so that the -3 dB point lands exactly on ``fc``.
    """
    if not 0.0 < cutoff_hz < fs_hz / 2:
        raise ValueError(f"cut-off {cutoff_hz} Hz must lie between 0 and the Nyquist frequency {fs_hz / 2} Hz")
    k = math.tan(math.pi * cutoff_hz / fs_hz)
    norm = 1.0 / (1.0 + math.sqrt(2.0) * k + k * k)
    b0 = k * k * norm
    a1 = 2.0 * (k * k - 1.0) * norm
    a2 = (1.0 - math.sqrt(2.0) * k + k * k) * norm
    return (b0, 2.0 * b0, b0), (1.0, a1, a2)


def _steady_state(b: tuple[float, ...], a: tuple[float, ...]) -> np.ndarray:
    """The filter state after a unit step has settled (``scipy.signal.lfilter_zi``)."""
    i_minus_a = np.array([[1.0 + a[1], -1.0], [a[2], 1.0]])
    return np.linalg.solve(i_minus_a, np.array([b[1] - a[1] * b[0], b[2] - a[2] * b[0]]))


@lru_cache(maxsize=32)
def _responses(b: tuple[float, ...], a: tuple[float, ...], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Impulse response, and the outputs from initial states (1, 0) and (0, 1), ``n`` samples each.

    Direct form II transposed, as scipy's ``lfilter``: ``y = b0 x + s0``,
    ``s0 ← b1 x − a1 y + s1``, ``s1 ← b2 x − a2 y``.
    """
    out = np.zeros((3, n))
    for row, (x0, s0, s1) in enumerate(((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))):
        for i in range(n):
            x = x0 if i == 0 else 0.0
            y = b[0] * x + s0
            s0, s1 = b[1] * x - a[1] * y + s1, b[2] * x - a[2] * y
            out[row, i] = y
    out.setflags(write=False)
    return out[0], out[1], out[2]


@lru_cache(maxsize=32)
def _taps(b: tuple[float, ...], a: tuple[float, ...], n: int) -> np.ndarray:
    """The impulse response over ``n`` samples, cut where it has decayed below double rounding."""
    impulse = _responses(b, a, n)[0]
    significant = np.flatnonzero(np.abs(impulse) > 1e-17 * np.abs(impulse).max())
    return impulse[: significant[-1] + 1]


def _lfilter(b: tuple[float, ...], a: tuple[float, ...], x: np.ndarray, state: np.ndarray) -> np.ndarray:
    """Filter each column of ``x`` (n, k) from initial states ``state`` (2, k)."""
    n = len(x)
    _, from_s0, from_s1 = _responses(b, a, n)
    taps = _taps(b, a, n)
    y = np.empty_like(x)
    for j in range(x.shape[1]):
        y[:, j] = np.convolve(x[:, j], taps)[:n]
    return y + np.outer(from_s0, state[0]) + np.outer(from_s1, state[1])


def _filtfilt_direct(x: np.ndarray, b: tuple[float, ...], a: tuple[float, ...]) -> np.ndarray:
    """scipy's filtfilt with ``padtype="odd"``, ``padlen=min(n - 1, 9)``, on the columns of ``x``."""
    n = len(x)
    pad = min(n - 1, 3 * len(b))
    ext = np.concatenate([2.0 * x[0] - x[pad:0:-1], x, 2.0 * x[-1] - x[-2:-pad - 2:-1]])
    zi = _steady_state(b, a)
    forward = _lfilter(b, a, ext, np.outer(zi, ext[0]))
    backward = _lfilter(b, a, forward[::-1], np.outer(zi, forward[-1]))[::-1]
    return backward[pad:n + pad]


def filtfilt_lowpass(x: np.ndarray, cutoff_hz: float, fs_hz: float) -> np.ndarray:
    """Zero-phase low-pass of ``x`` (n,) or (n, k) along axis 0.

    Equals ``scipy.signal.filtfilt(b, a, x, axis=0, padtype="odd", padlen=min(n - 1, 9))`` with
    ``b, a = butter(2, cutoff_hz / (fs_hz / 2))``: odd extension of 9 samples at each end, the
    forward pass started from the steady state of the first extended sample, the backward pass
    from that of the last forward output.
    """
    x = np.asarray(x, dtype=float)
    if len(x) < 2:
        raise ValueError("filtfilt needs at least two samples")
    out = _filtfilt_direct(x[:, None] if x.ndim == 1 else x, *butter2_lowpass(float(cutoff_hz), float(fs_hz)))
    return out[:, 0] if x.ndim == 1 else out
