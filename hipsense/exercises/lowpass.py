"""Zero-phase second-order Butterworth low-pass in numpy: ``scipy.signal.butter(2, ...)`` and
``filtfilt(..., padtype="odd")``, without importing scipy.

Why not scipy: the recogniser runs in the Pi's service, and ``scipy.signal`` pulls in
scipy.stats, optimize, interpolate and sparse: about 55 MB resident and 2 s of start-up on a
Pi-class machine, for two textbook formulas (issue 14). The tests check this module against
scipy's own output to 1e-9 (tests/exercises/test_lowpass.py).

How it stays fast without a per-sample Python loop: a second-order IIR filter is linear, so
over a block of ``n`` samples its output is the input convolved with the filter's impulse
response plus the response to its initial state, a combination of two fixed sequences. Those
sequences depend only on the cut-off and ``n``; they are computed once by the recurrence itself
(direct form II transposed, as scipy's ``lfilter``) and cached, and the impulse response is cut
where it has decayed below 1e-17 of its peak (below double rounding). The convolution is done
by FFT (``numpy.fft``, one transform of the input for every cut-off at once): the 0.3 Hz
filter's impulse response is as long as a 15 s window at 25 Hz (387 taps), so a direct
``np.convolve`` was quadratic in the window and the recogniser's largest cost (issue 14).
The result is the recurrence's numbers up to rounding (~1e-15 of the signal's size; the
recogniser's decisions and eval outputs are unchanged): the five low-passes of one 15 s
window of three axes take ~0.1 ms here, against ~0.6 ms with ``np.convolve``. A dense n × n
matrix of the whole filtfilt would cache 1.1 MB per cut-off and read it all every window: not
worth it on a Pi's memory bus.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = ["butter2_lowpass", "filtfilt_lowpass", "filtfilt_lowpass_bank"]


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


def _taps(b: tuple[float, ...], a: tuple[float, ...], n: int) -> np.ndarray:
    """The impulse response over ``n`` samples, cut where it has decayed below double rounding."""
    impulse = _responses(b, a, n)[0]
    significant = np.flatnonzero(np.abs(impulse) > 1e-17 * np.abs(impulse).max())
    return impulse[: significant[-1] + 1]


def _fft_size(m: int) -> int:
    """The smallest 2^i 3^j 5^k at least ``m`` (sizes numpy's FFT does fastest)."""
    best = 1 << max(0, (m - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            size = p35
            while size < m:
                size *= 2
            best = min(best, size)
            p35 *= 3
        p5 *= 5
    return best


@lru_cache(maxsize=16)
def _bank(coefficients: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...], length: int) -> tuple[
        int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For blocks of ``length`` samples and each filter ``(b, a)``: the FFT size, the impulse
    responses' spectra (k, 1, size // 2 + 1), the outputs from initial states (1, 0) and (0, 1)
    (k, 1, length each) and the steady states' two entries (k, 1, 1 each)."""
    taps = [_taps(b, a, length) for b, a in coefficients]
    size = _fft_size(length + max(len(h) for h in taps) - 1)  # no wrap-around into the first `length`
    spectra = np.fft.rfft(np.stack([np.pad(h, (0, size - len(h))) for h in taps]), axis=1)
    from_s0 = np.stack([_responses(b, a, length)[1] for b, a in coefficients])[:, None, :]
    from_s1 = np.stack([_responses(b, a, length)[2] for b, a in coefficients])[:, None, :]
    zi = np.stack([_steady_state(b, a) for b, a in coefficients])
    for array in (spectra, from_s0, from_s1, zi):
        array.setflags(write=False)
    return size, spectra[:, None, :], from_s0, from_s1, zi[:, 0, None, None], zi[:, 1, None, None]


def _filtfilt_bank(x: np.ndarray, coefficients: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...]) -> np.ndarray:
    """scipy's filtfilt with ``padtype="odd"``, ``padlen=min(n - 1, 9)``, on the columns of ``x``
    (n, c), for each filter: (k, n, c).

    Each pass is ``y = h * x + from_s0 · s0 + from_s1 · s1`` over the extended block (``h`` the
    impulse response, ``s`` the initial state: the steady state of the pass's first input).
    """
    n = len(x)
    pad = min(n - 1, 9)
    ext = np.concatenate([2.0 * x[0] - x[pad:0:-1], x, 2.0 * x[-1] - x[-2:-pad - 2:-1]]).T  # (c, length)
    length = ext.shape[1]
    size, spectra, from_s0, from_s1, zi0, zi1 = _bank(coefficients, length)
    # (k, c, length): each column's transform along the last, contiguous axis
    forward = np.fft.irfft(spectra * np.fft.rfft(ext, size), size)[:, :, :length]
    first = ext[:, :1]
    forward += from_s0 * (zi0 * first) + from_s1 * (zi1 * first)
    backward = np.fft.irfft(spectra * np.fft.rfft(forward[:, :, ::-1], size), size)[:, :, :length]
    last = forward[:, :, -1:]
    backward += from_s0 * (zi0 * last) + from_s1 * (zi1 * last)
    return backward[:, :, length - 1 - pad:length - 1 - pad - n:-1].transpose(0, 2, 1)


def filtfilt_lowpass_bank(x: np.ndarray, cutoffs_hz: tuple[float, ...], fs_hz: float) -> np.ndarray:
    """:func:`filtfilt_lowpass` of ``x`` (n, c) at each of ``cutoffs_hz``: (k, n, c).

    One FFT of the (extended) input serves every cut-off; the cheap way to take several
    low-passes of one window (the recogniser takes five)."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"x must have shape (n, c), got {x.shape}")
    if len(x) < 2:
        raise ValueError("filtfilt needs at least two samples")
    coefficients = tuple(butter2_lowpass(float(fc), float(fs_hz)) for fc in cutoffs_hz)
    return _filtfilt_bank(x, coefficients)


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
    out = _filtfilt_bank(x[:, None] if x.ndim == 1 else x, (butter2_lowpass(float(cutoff_hz), float(fs_hz)),))[0]
    return out[:, 0] if x.ndim == 1 else out
