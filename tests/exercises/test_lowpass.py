"""The recogniser's numpy low-pass is scipy's butter(2) + filtfilt(padtype="odd"), to 1e-9.

scipy is the reference here, in the tests only: the service itself must not import it
(tests/service/test_import_cost.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal as sps

from hipsense.exercises.lowpass import butter2_lowpass, filtfilt_lowpass, filtfilt_lowpass_bank


@pytest.mark.parametrize("fs", [25.0, 100.0])
@pytest.mark.parametrize("cutoff", [0.3, 1.0, 3.0, 5.0, 8.0, 11.0])
def test_coefficients_are_scipys(cutoff, fs):
    b, a = sps.butter(2, cutoff / (fs / 2))
    ours_b, ours_a = butter2_lowpass(cutoff, fs)
    np.testing.assert_allclose(ours_b, b, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ours_a, a, rtol=1e-12, atol=1e-15)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 500),
    columns=st.integers(1, 3),
    cutoff=st.sampled_from([0.3, 1.0, 3.0, 5.0, 8.0]),
    seed=st.integers(0, 2**32 - 1),
    offset=st.floats(-20, 20),
)
def test_filtfilt_matches_scipy_on_any_length_and_signal(n, columns, cutoff, seed, offset):
    rng = np.random.default_rng(seed)
    # a drifting, noisy signal with an offset: the ends (odd extension, steady-state start) matter
    x = offset + np.cumsum(rng.normal(size=(n, columns)), axis=0) + rng.normal(size=(n, columns))
    b, a = sps.butter(2, cutoff / 12.5)
    expected = sps.filtfilt(b, a, x, axis=0, padtype="odd", padlen=min(n - 1, 3 * len(b)))
    got = filtfilt_lowpass(x, cutoff, 25.0)
    assert got.shape == x.shape
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9 * max(1.0, float(np.abs(expected).max())))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 500), seed=st.integers(0, 2**32 - 1))
def test_a_bank_of_cutoffs_is_each_cutoffs_filtfilt(n, seed):
    # the recogniser's five low-passes of one window, from one FFT of the input
    rng = np.random.default_rng(seed)
    x = 1.0 + np.cumsum(rng.normal(size=(n, 3)), axis=0)
    cutoffs = (1.0, 5.0, 0.3, 8.0, 3.0)
    got = filtfilt_lowpass_bank(x, cutoffs, 25.0)
    assert got.shape == (len(cutoffs), n, 3)
    for k, cutoff in enumerate(cutoffs):
        b, a = sps.butter(2, cutoff / 12.5)
        expected = sps.filtfilt(b, a, x, axis=0, padtype="odd", padlen=min(n - 1, 3 * len(b)))
        np.testing.assert_allclose(got[k], expected, rtol=1e-9, atol=1e-9 * max(1.0, float(np.abs(expected).max())))


def test_a_one_dimensional_signal_keeps_its_shape():
    x = np.sin(np.linspace(0, 20, 375))
    b, a = sps.butter(2, 1.0 / 12.5)
    got = filtfilt_lowpass(x, 1.0, 25.0)
    assert got.shape == (375,)
    np.testing.assert_allclose(got, sps.filtfilt(b, a, x, padtype="odd", padlen=9), rtol=1e-9, atol=1e-12)


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match="at least two samples"):
        filtfilt_lowpass(np.zeros(1), 1.0, 25.0)
    with pytest.raises(ValueError, match="Nyquist"):
        filtfilt_lowpass(np.zeros(10), 13.0, 25.0)
