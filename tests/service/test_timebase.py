"""A replay's speed never reaches the timestamps a therapist reads (issue 12)."""

from __future__ import annotations

from hipsense.service.timebase import Timebase


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_results_at_2x_are_stamped_in_real_wall_time():
    mono, wall = Clock(500.0), Clock(1.7e9)
    timebase = Timebase(2.0, monotonic=mono, wall=wall)
    mono.t += 60.0  # a minute of real time: two minutes of the replayed recording
    wall.t += 60.0
    sample_now = timebase.now()
    assert sample_now == 500.0 + 120.0  # the counting sees the recording's own pace
    assert timebase.to_utc(sample_now) == 1.7e9 + 60.0  # stamped now, not a minute in the future
    assert timebase.utc_now() == 1.7e9 + 60.0


def test_real_time_is_unchanged():
    mono, wall = Clock(10.0), Clock(1.7e9)
    timebase = Timebase(monotonic=mono, wall=wall)
    mono.t += 5.0
    wall.t += 5.0
    assert timebase.to_utc(timebase.now()) == 1.7e9 + 5.0
    assert timebase.to_utc(12.5) == 1.7e9 + 2.5


def test_a_clock_stepped_by_ntp_after_boot_is_followed():
    """The service started before NTP: the Pi's clock said 9 days ago (fake-hwclock after a
    power cut). Results after the step are stamped with the right date, durations unchanged."""
    mono, wall = Clock(30.0), Clock(1.7e9 - 9 * 86_400)
    timebase = Timebase(monotonic=mono, wall=wall)
    mono.t += 20.0
    wall.t += 20.0
    assert timebase.to_utc(45.0) == 1.7e9 - 9 * 86_400 + 15.0  # before the step: the clock it had
    wall.t = 1.7e9  # NTP steps the clock (mono is 50.0)
    mono.t += 600.0
    wall.t += 600.0
    start, end = timebase.to_utc(640.0), timebase.to_utc(645.0)
    assert (start, end) == (1.7e9 + 590.0, 1.7e9 + 595.0)  # today, not 9 days ago
    wall.t -= 3600.0  # and back again: a clock that was ahead
    assert timebase.utc_now() == 1.7e9 + 600.0 - 3600.0


def test_slewing_is_not_a_step():
    mono, wall = Clock(0.0), Clock(1.7e9)
    timebase = Timebase(monotonic=mono, wall=wall)
    mono.t += 100.0
    wall.t += 100.5  # half a second apart after 100 s: NTP's slew, not a step
    assert timebase.to_utc(100.0) == 1.7e9 + 100.0
