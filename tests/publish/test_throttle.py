from __future__ import annotations

import pytest

from hipsense.publish.throttle import LiveThrottle


def test_100hz_input_becomes_10hz():
    throttle = LiveThrottle(10)
    passed = [i for i in range(1000) if throttle.allow(i * 0.01 + (0.003 if i % 3 == 0 else 0.0))]
    assert 99 <= len(passed) <= 101


def test_no_burst_after_a_pause():
    throttle = LiveThrottle(10)
    assert throttle.allow(0.0)
    assert throttle.allow(5.0)
    assert not throttle.allow(5.05)
    assert throttle.allow(5.1)


def test_rate_must_be_positive():
    with pytest.raises(ValueError):
        LiveThrottle(0)
