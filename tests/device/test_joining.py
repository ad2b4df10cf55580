"""AccGyroJoiner: a sensor's separate accelerometer and gyroscope blocks become blocks with both
on the accelerometer's times; blocks with both, and accelerometer-only sensors, pass through."""

from __future__ import annotations

import numpy as np
import pytest

from hipsense.device.joining import AccGyroJoiner
from hipsense.device.samples import Gap, GapReason, ImuSamples

RATE_HZ = 52.0


def _motion(n: int = 520) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = 100.0 + np.arange(n) / RATE_HZ
    phase = 2 * np.pi * 0.5 * (t - t[0])
    acc = np.stack([9.81 * np.sin(0.5 * np.sin(phase)), 0.1 * np.cos(phase), 9.81 * np.cos(0.5 * np.sin(phase))], 1)
    gyr = np.stack([0.2 * np.sin(phase), 1.5 * np.cos(phase), -0.1 * np.sin(2 * phase)], 1)
    return t, acc, gyr


def _split(t, acc, gyr, *, frame: int = 26, gyro_lag_frames: int = 1, gyro_offset_s: float = 0.0):
    """As a Polar sends them: ACC frames, the GYRO frames a frame or so later (their own times)."""
    acc_blocks = [ImuSamples(t_s=t[a:a + frame], acc_ms2=acc[a:a + frame]) for a in range(0, len(t), frame)]
    gyr_blocks = [ImuSamples(t_s=t[a:a + frame] + gyro_offset_s, gyr_rad_s=gyr[a:a + frame])
                  for a in range(0, len(t), frame)]
    order = []
    for i, block in enumerate(acc_blocks):
        order.append(block)
        if i >= gyro_lag_frames:
            order.append(gyr_blocks[i - gyro_lag_frames])
    order += gyr_blocks[len(acc_blocks) - gyro_lag_frames:]
    return order


def _run(joiner: AccGyroJoiner, blocks) -> list[ImuSamples]:
    out = [b for block in blocks for b in joiner.push(block)]
    return out + joiner.flush()


def test_split_streams_on_the_same_times_join_exactly():
    t, acc, gyr = _motion()
    out = _run(AccGyroJoiner(), _split(t, acc, gyr, gyro_lag_frames=2))
    assert all(b.gyr_rad_s is not None for b in out)
    np.testing.assert_array_equal(np.concatenate([b.t_s for b in out]), t)  # every sample once, in order
    np.testing.assert_array_equal(np.concatenate([b.acc_ms2 for b in out]), acc)
    np.testing.assert_allclose(np.concatenate([b.gyr_rad_s for b in out]), gyr, atol=1e-12)


def test_angular_rate_timed_apart_is_interpolated_onto_the_accelerometer_times():
    t, acc, gyr = _motion()
    offset = 0.4 / RATE_HZ  # MetaMotion-like: each stream timed on its own arrival
    out = _run(AccGyroJoiner(), _split(t, acc, gyr, gyro_offset_s=offset))
    joined = np.concatenate([b.gyr_rad_s for b in out])
    np.testing.assert_array_equal(np.concatenate([b.t_s for b in out]), t)
    truth = np.stack([np.interp(t, t + offset, gyr[:, k]) for k in range(3)], 1)
    np.testing.assert_allclose(joined, truth, atol=1e-12)
    assert np.max(np.abs(joined - gyr)[1:]) < 0.1  # under a sample period of a 0.5 Hz swing


def test_an_accelerometer_only_sensor_goes_on_alone_after_the_wait():
    t, acc, _ = _motion()
    joiner = AccGyroJoiner(wait_s=2.0)
    blocks = [ImuSamples(t_s=t[a:a + 26], acc_ms2=acc[a:a + 26]) for a in range(0, len(t), 26)]
    first_out = next(i for i, block in enumerate(blocks) if joiner.push(block))
    assert t[26 * first_out + 25] - t[0] > 2.0  # held for the wait, no longer
    out = _run(AccGyroJoiner(wait_s=2.0), blocks)
    assert all(b.gyr_rad_s is None for b in out) and sum(b.n for b in out) == len(t)


def test_blocks_with_both_pass_through_and_gaps_are_handed_on_at_once():
    t, acc, gyr = _motion(8)
    joiner = AccGyroJoiner()
    both = ImuSamples(t_s=t, acc_ms2=acc, gyr_rad_s=gyr)
    assert joiner.push(both) == [both]
    gap = Gap(99.0, 100.0, 3, GapReason.SENSOR_TIME_JUMP)
    (handed,) = joiner.push(ImuSamples(t_s=t + 1, gyr_rad_s=gyr, gaps=(gap,)))
    assert handed.n == 0 and handed.gaps == (gap,)
    assert joiner.push(ImuSamples.empty()) == []


def test_wait_must_be_positive():
    with pytest.raises(ValueError):
        AccGyroJoiner(wait_s=0)


def test_a_link_drop_does_not_turn_the_rest_into_accelerometer_only():
    """The GYRO frame that would have covered the last ACC frame before a drop never comes; the
    streams come back 10 s later. Every block handed on still has its angular rate."""
    t, acc, gyr = _motion(1040)
    before, after = _split(t[:260], acc[:260], gyr[:260]), _split(t[520:] + 10, acc[520:], gyr[520:])
    dropped_gyro = [b for b in before if b.gyr_rad_s is not None][-1]
    out = _run(AccGyroJoiner(), [b for b in before if b is not dropped_gyro] + after)
    assert all(b.gyr_rad_s is not None for b in out)
    assert sum(b.n for b in out) == 260 + 520
    joined = np.concatenate([b.gyr_rad_s for b in out])
    np.testing.assert_allclose(joined[:234], gyr[:234], atol=1e-12)  # covered: exact
    np.testing.assert_array_equal(joined[234:260], np.tile(gyr[233], (26, 1)))  # the last value held


def test_without_angular_rate_for_the_wait_the_accelerometer_goes_on_at_once():
    """A sensor that sends no angular rate though one was expected (a Polar H10 left at
    gyroscope = true), or whose gyroscope stopped: after the first wait, no block waits."""
    t, acc, gyr = _motion(1040)
    joiner = AccGyroJoiner(wait_s=2.0)
    released_at = {}
    for a in range(0, len(t), 26):
        for b in joiner.push(ImuSamples(t_s=t[a:a + 26], acc_ms2=acc[a:a + 26])):
            released_at[float(b.t_s[0])] = float(t[a + 25])
    late = {start: at - start for start, at in released_at.items() if start > t[0] + 3.0}
    assert late and max(late.values()) < 26 / RATE_HZ  # released with the block that brought it
    # the angular rate comes back (a frame behind): joined again from its second frame on
    joiner = AccGyroJoiner(wait_s=2.0)
    out = _run(joiner, [ImuSamples(t_s=t[a:a + 26], acc_ms2=acc[a:a + 26]) for a in range(0, 520, 26)]
               + _split(t[520:], acc[520:], gyr[520:]))
    assert sum(b.n for b in out) == 1040
    assert all(b.gyr_rad_s is not None for b in out if b.t_s[0] >= t[520] + 2 * 26 / RATE_HZ)
