"""A replay's speed never reaches the timestamps a therapist reads (issue 12)."""

from __future__ import annotations

from hipsense.service.timebase import Timebase


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_results_at_2x_are_stamped_in_real_wall_time():
    mono = Clock(500.0)
    timebase = Timebase(2.0, monotonic=mono, wall=lambda: 1.7e9)
    mono.t += 60.0  # a minute of real time: two minutes of the replayed recording
    sample_now = timebase.now()
    assert sample_now == 500.0 + 120.0  # the counting sees the recording's own pace
    assert timebase.to_utc(sample_now) == 1.7e9 + 60.0  # stamped now, not a minute in the future
    assert timebase.utc_now() == 1.7e9 + 60.0


def test_real_time_is_unchanged():
    mono = Clock(10.0)
    timebase = Timebase(monotonic=mono, wall=lambda: 1.7e9)
    mono.t += 5.0
    assert timebase.to_utc(timebase.now()) == 1.7e9 + 5.0
    assert timebase.to_utc(12.5) == 1.7e9 + 2.5
