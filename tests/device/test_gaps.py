"""Gap detection from sensor timestamps and counter unwrapping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hipsense.device.gaps import (
    Continuity,
    SensorTimeGapDetector,
    count_missing_samples,
    unwrap_counter,
)
from tests.device.fuzzing import FUZZ

U32 = 2**32


@pytest.mark.parametrize(
    ("elapsed_periods", "received", "lost"),
    [(1.0, 1, 0), (1.4, 1, 0), (1.6, 1, 1), (2.0, 1, 1), (5.0, 1, 4),
     (36.0, 36, 0), (37.0, 36, 1), (72.0, 36, 36), (36.3, 36, 0)],
)  # fmt: skip
def test_count_missing_samples(elapsed_periods: float, received: int, lost: int) -> None:
    period = 1 / 52
    assert count_missing_samples(elapsed_periods * period, received, period) == lost


def test_unwrap_counter() -> None:
    assert unwrap_counter(100, 200, U32, 100) == 200
    assert unwrap_counter(U32 - 10, 5, U32, 15) == U32 + 5  # one wrap
    assert unwrap_counter(3 * U32 + 7, 9, U32, 2) == 3 * U32 + 9  # previous already unwrapped
    # 80 minutes of silence: one whole wrap beyond the forward distance.
    elapsed = 80 * 60 * 10**6
    assert unwrap_counter(1000, (1000 + elapsed) % U32, U32, elapsed) == 1000 + elapsed
    # Backwards by a little reads as almost a full wrap forward; the detector calls it a reset.
    assert unwrap_counter(1000, 900, U32, 16_000) == U32 + 900


@FUZZ
@given(
    start=st.integers(0, U32 - 1), step=st.integers(0, 5 * U32), jitter=st.integers(-30_000, 30_000)
)
def test_unwrap_recovers_true_elapsed(start: int, step: int, jitter: int) -> None:
    # Host-measured elapsed time is the truth give or take BLE latency.
    assert unwrap_counter(start, (start + step) % U32, U32, max(0, step + jitter)) == start + step


def test_detector_classifies_groups() -> None:
    detector = SensorTimeGapDetector(50.0)
    assert detector.check(10.0, 1, 100.0).continuity is Continuity.FIRST
    detector.commit(10.0, 100.0)
    assert detector.check(10.02, 1, 100.02).continuity is Continuity.CONTINUOUS
    lost = detector.check(10.1, 1, 100.1)
    assert (lost.continuity, lost.samples_lost, lost.previous_device_s) == (
        Continuity.SAMPLES_LOST,
        4,
        10.0,
    )
    assert detector.check(9.0, 1, 100.1).continuity is Continuity.CLOCK_RESET  # backwards
    assert detector.check(10.0, 1, 100.1).continuity is Continuity.CLOCK_RESET  # no progress
    assert detector.check(20.0, 1, 100.2).continuity is Continuity.CLOCK_RESET  # ahead of host
    # Checking changes nothing until commit.
    assert detector.last_device_s == 10.0 and detector.last_received_s == 100.0
    with pytest.raises(ValueError):
        SensorTimeGapDetector(0.0)
