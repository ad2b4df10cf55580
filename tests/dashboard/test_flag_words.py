"""How the Pi's flags read for a therapist (the flags are the MQTT protocol's words)."""

from __future__ import annotations

import datetime as dt

from hipsense.dashboard.reading.events import StoredEvent
from hipsense.dashboard.web.formatting import describe_event, flag_text


def _set_event(flags):
    now = dt.datetime(2026, 12, 3, tzinfo=dt.timezone.utc)
    return StoredEvent(1, "m1", "p-0001", "set", 1, "s1", "pelvic_tilt", "right", now, now,
                       {"set_index": 1, "reps": 12, "reps_target": 15, "flags": flags})


def test_an_uncertain_count_says_so_in_words():
    line = describe_event(_set_event(["uncertain_count"]), catalogue={})
    assert "count not sure" in line and "12/15 reps" in line
    assert "count not sure" not in describe_event(_set_event([]), catalogue={})


def test_unknown_flags_read_as_they_are():
    assert flag_text("uncertain_count").startswith("count not sure")
    assert flag_text("some_new_flag") == "some new flag"
