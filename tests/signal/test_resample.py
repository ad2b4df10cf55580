from __future__ import annotations

import numpy as np
import pytest

from hipsense.signal.resample import ResamplerSettings, resample, resample_init, resample_step


@pytest.mark.parametrize("rate_in", [25.0, 60.0, 100.0, 200.0])
def test_any_input_rate_lands_on_the_grid(rate_in):
    t = np.arange(0, 10, 1 / rate_in)
    x = np.column_stack([np.sin(2 * np.pi * 0.5 * t)])
    out = resample(ResamplerSettings(rate_hz=50), t, x)
    assert np.allclose(np.diff(out.t_s), 0.02)
    # linear interpolation of a slow sine: close to the true value
    assert np.max(np.abs(out.x[:, 0] - np.sin(2 * np.pi * 0.5 * out.t_s))) < 0.01
    assert out.gaps == []


def test_rate_change_mid_stream():
    t = np.concatenate([np.arange(0, 5, 1 / 25), np.arange(5, 10, 1 / 200)])
    out = resample(ResamplerSettings(rate_hz=50), t, t[:, None])
    assert np.allclose(out.x[:, 0], out.t_s)
    assert out.t_s[0] == 0 and out.t_s[-1] == pytest.approx(9.98, abs=0.021)


def test_gap_is_reported_and_never_filled():
    t = np.concatenate([np.arange(0, 2, 0.01), np.arange(3.0, 4, 0.01)])
    out = resample(ResamplerSettings(rate_hz=50, max_gap_s=0.25), t, t[:, None])
    assert len(out.gaps) == 1
    g0, g1 = out.gaps[0]
    assert g0 == pytest.approx(1.99) and g1 == pytest.approx(3.0)
    assert not np.any((out.t_s > g0) & (out.t_s < g1)), "grid points inside the gap"


def test_out_of_order_samples_are_dropped_and_counted():
    s = ResamplerSettings()
    st = resample_init(s)
    st, a = resample_step(s, st, np.array([0.0, 0.02, 0.04]), np.zeros((3, 1)))
    st, b = resample_step(s, st, np.array([0.03, 0.04, 0.06]), np.ones((3, 1)))
    assert b.n_out_of_order == 2
    assert st.n_out_of_order == 2


def test_bad_shapes_are_programming_errors():
    with pytest.raises(ValueError):
        resample(ResamplerSettings(), np.arange(3.0), np.zeros((2, 1)))
