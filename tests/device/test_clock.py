"""Clock alignment: drift, BLE latency jitter, the lower envelope, and clockless sensors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hipsense.device.clock import DeviceClockAligner, ReceiveTimeClock, increasing_after
from tests.device.fuzzing import PROPERTY

MIN_LATENCY_S = 0.004


def simulate(
    aligner: DeviceClockAligner,
    *,
    drift_ppm: float,
    duration_s: float,
    rate_hz: float,
    seed: int,
    spike_fraction: float = 0.05,
    device_origin_s: float = 7.0e8,
) -> tuple[np.ndarray, np.ndarray]:
    """Feed notifications; return the true host times and device times of the last 20 s."""
    rng = np.random.default_rng(seed)
    true_host = 1000.0 + np.arange(0, duration_s, 1 / rate_hz)
    # A device clock that runs drift_ppm slow relative to the host.
    device = device_origin_s + (true_host - true_host[0]) / (1 + drift_ppm * 1e-6)
    latency = MIN_LATENCY_S + rng.exponential(0.012, true_host.size)
    spikes = rng.random(true_host.size) < spike_fraction
    latency[spikes] += rng.uniform(0.05, 0.4, spikes.sum())
    for d, r in zip(device, true_host + latency, strict=True):
        aligner.observe(float(d), float(r))
    tail = true_host >= true_host[-1] - 20
    return true_host[tail], device[tail]


def test_50_ppm_drift_with_jitter_is_learned() -> None:
    aligner = DeviceClockAligner(window_s=2.0, history_s=300.0)
    truth, device = simulate(aligner, drift_ppm=50, duration_s=300, rate_hz=60, seed=1)
    assert aligner.drift_ppm == pytest.approx(50, abs=5)
    error = aligner.to_host(device) - (truth + MIN_LATENCY_S)
    assert np.max(np.abs(error)) < 0.001  # within 1 ms while latency jitters by up to 400 ms


def test_without_drift_correction_the_error_would_grow() -> None:
    # Sanity check of the simulation itself: 50 ppm over 300 s is 15 ms.
    aligner = DeviceClockAligner(window_s=2.0, history_s=300.0, max_drift_ppm=0.0)
    truth, device = simulate(aligner, drift_ppm=50, duration_s=300, rate_hz=60, seed=1)
    error = aligner.to_host(device) - (truth + MIN_LATENCY_S)
    assert np.max(np.abs(error)) > 0.005


@PROPERTY
@given(
    drift_ppm=st.floats(-200, 200),
    seed=st.integers(0, 2**16),
    spike_fraction=st.floats(0, 0.3),
    device_origin_s=st.sampled_from([0.0, 1234.5, 7.0e8, 4.2e9]),
)
def test_alignment_error_stays_small(
    drift_ppm: float, seed: int, spike_fraction: float, device_origin_s: float
) -> None:
    aligner = DeviceClockAligner(window_s=2.0, history_s=120.0)
    truth, device = simulate(
        aligner, drift_ppm=drift_ppm, duration_s=90, rate_hz=20, seed=seed,
        spike_fraction=spike_fraction, device_origin_s=device_origin_s,
    )  # fmt: skip
    error = aligner.to_host(device) - (truth + MIN_LATENCY_S)
    assert np.max(np.abs(error)) < 0.003
    assert np.all(error > -0.003)  # a lower envelope never puts samples much before the truth


def test_drift_estimate_is_clipped() -> None:
    aligner = DeviceClockAligner(max_drift_ppm=100.0)
    simulate(aligner, drift_ppm=2000, duration_s=60, rate_hz=20, seed=3)
    assert aligner.drift_ppm == pytest.approx(100.0)


def test_reset_and_keep_drift() -> None:
    aligner = DeviceClockAligner()
    simulate(aligner, drift_ppm=80, duration_s=120, rate_hz=20, seed=4)
    learned = aligner.drift_ppm
    aligner.reset(keep_drift=True)
    assert not aligner.ready and aligner.drift_ppm == learned
    aligner.reset()
    assert aligner.drift_ppm == 0.0
    with pytest.raises(RuntimeError):
        aligner.to_host(1.0)


def test_interleaved_streams_slightly_out_of_order_are_accepted() -> None:
    aligner = DeviceClockAligner(window_s=1.0)
    for k in range(50):
        aligner.observe(100.0 + k * 0.5, 10.0 + k * 0.5 + 0.01)
        aligner.observe(100.0 + k * 0.5 - 0.3, 10.0 + k * 0.5 + 0.02)  # older time, other stream
    assert aligner.to_host(110.0) == pytest.approx(20.0, abs=0.011)


def test_increasing_after() -> None:
    times = np.array([1.0, 1.1, 1.2])
    assert increasing_after(times, None) is times
    assert increasing_after(times, 0.9) is times
    moved = increasing_after(times, 1.05)
    assert moved[0] > 1.05 and np.all(np.diff(moved) > 0) and moved[2] == 1.2


def test_receive_time_clock_spaces_samples_at_the_nominal_rate() -> None:
    clock = ReceiveTimeClock(50.0)
    placed = clock.place(2, 3.0)
    np.testing.assert_allclose(placed.t_s, [2.98, 3.0])
    placed = clock.place(2, 3.09)  # arrives 50 ms late: latency, not a loss
    assert not placed.gap_before
    np.testing.assert_allclose(placed.t_s, [3.02, 3.04])
    assert clock.place(0, 3.1).t_s.size == 0


@PROPERTY
@given(
    rate_error=st.floats(-0.02, 0.02),
    frames=st.sampled_from([1, 2, 4]),
    seed=st.integers(0, 2**16),
)
def test_receive_time_clock_never_drifts(rate_error: float, frames: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    nominal = 100.0
    true_rate = nominal * (1 + rate_error)
    clock = ReceiveTimeClock(nominal)
    worst_tail, previous = 0.0, -np.inf
    count = int(60 * true_rate / frames)
    for i in range(count):
        numbers = frames * i + np.arange(frames)
        truth = 50.0 + numbers / true_rate + MIN_LATENCY_S
        received = truth[-1] + rng.exponential(0.010)
        placed = clock.place(frames, received)
        assert not placed.gap_before
        assert placed.t_s[0] > previous
        previous = placed.t_s[-1]
        if i > count - 10 * true_rate / frames:  # last 10 s
            worst_tail = max(worst_tail, float(np.max(np.abs(placed.t_s - truth))))
    assert worst_tail < 0.005
    assert clock.rate_error_ppm == pytest.approx(rate_error * 1e6, abs=500)
