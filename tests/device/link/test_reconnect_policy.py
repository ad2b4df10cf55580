"""The pure reconnect policy and silence watchdog (no BLE, no clock)."""

from __future__ import annotations

import random

import pytest

from hipsense.device.reconnect import Backoff, BackoffPolicy, SilenceWatchdog


def test_ceiling_grows_geometrically_then_caps() -> None:
    policy = BackoffPolicy(initial_s=0.5, multiplier=2.0, max_s=30.0, jitter=0.5)
    assert [policy.ceiling_s(n) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert policy.ceiling_s(10_000) == 30.0  # no overflow after a night of failures


def test_jitter_stays_within_the_bound() -> None:
    policy = BackoffPolicy(initial_s=1.0, multiplier=3.0, max_s=20.0, jitter=0.5)
    rng = random.Random(7)
    for attempt in range(12):
        ceiling = policy.ceiling_s(attempt)
        delays = [policy.delay_s(attempt, rng.random()) for _ in range(200)]
        assert all(0.5 * ceiling <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > 0.3 * ceiling  # really jittered
    assert policy.delay_s(0, 0.0) == 1.0
    assert BackoffPolicy(initial_s=2, jitter=0).delay_s(0, 0.9) == 2.0


def test_backoff_counts_attempts_and_resets() -> None:
    backoff = Backoff(BackoffPolicy(initial_s=0.1, multiplier=2, max_s=1, jitter=0))
    assert [backoff.next_delay_s(0.3) for _ in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1, 1])
    backoff.reset()
    assert backoff.next_delay_s(0.3) == pytest.approx(0.1)


@pytest.mark.parametrize(
    "kwargs",
    [dict(initial_s=0), dict(multiplier=0.5), dict(initial_s=2, max_s=1), dict(jitter=1.5)],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(**kwargs)


def test_watchdog_declares_silence_after_timeout() -> None:
    dog = SilenceWatchdog(2.0)
    assert not dog.is_silent(100.0)  # not armed yet
    dog.arm(10.0)
    assert dog.remaining_s(11.0) == pytest.approx(1.0)
    dog.feed(11.5)
    dog.feed(11.0)  # late, out-of-order stamps never move it back
    assert not dog.is_silent(13.4)
    assert dog.is_silent(13.5)
    with pytest.raises(ValueError):
        SilenceWatchdog(0)
