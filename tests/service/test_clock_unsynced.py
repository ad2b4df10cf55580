"""Results stamped while the Pi's clock is not synchronised say so (``clock_unsynced``).

A Pi has no battery clock: after a power cut with the router off too, it counts a whole session
on the time fake-hwclock saved, weeks behind, and the dashboard stores those results on the
wrong days (their dates are plausible). Before, nothing in a result told the therapist.
"""

from __future__ import annotations

from pathlib import Path

from hipsense.dashboard.reading.events import StoredEvent
from hipsense.dashboard.web.formatting import describe_event
from hipsense.protocol import MessageKind, parse_message
from hipsense.publish import Outbox
from hipsense.service import clocksync
from hipsense.service.results import ResultPublisher

SESSION = "01JQ7Z8K3M4N5P6Q7R8S9T0V1W"


def _rep(publisher: ResultPublisher, rep_index: int):
    envelope = publisher.rep(session_id=SESSION, exercise="clam_shells", side="left", set_index=1,
                             rep_index=rep_index, t_start=1.7e9, t_end=1.7e9 + 2, rom_deg=30.0, hold_s=1.0,
                             peak_speed_dps=40.0, duration_s=2.0, flags=("too_fast",))
    return parse_message(envelope.topic, envelope.payload)


def test_results_stamped_before_the_clock_is_synchronised_are_flagged(tmp_path):
    synced = [False]
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        publisher = ResultPublisher("p-0001", outbox, clock_synced=lambda: synced[0])
        before = _rep(publisher, 1)
        synced[0] = True
        after = _rep(publisher, 2)
        cannot_tell = ResultPublisher("p-0001", outbox, clock_synced=lambda: None)
        unknown = _rep(cannot_tell, 3)
    assert before.kind is MessageKind.REP and before.data["flags"] == ["too_fast", "clock_unsynced"]
    assert after.data["flags"] == ["too_fast"] and unknown.data["flags"] == ["too_fast"]
    line = describe_event(StoredEvent(1, before.message_id, "p-0001", "rep", 1, SESSION, "clam_shells", "left",
                                      None, None, before.data), catalogue={})
    assert "date uncertain" in line


def test_timesyncd_says_whether_the_clock_is_synchronised(tmp_path, monkeypatch):
    flag = tmp_path / "timesync" / "synchronized"
    monkeypatch.setattr(clocksync, "_kernel_says", lambda: None)
    assert clocksync.clock_synchronized(flag) is None  # no timesyncd here, no kernel answer: cannot tell
    flag.parent.mkdir()
    monkeypatch.setattr(clocksync.os.path, "exists", lambda path: path == "/run/systemd/system" or Path(path).exists())
    assert clocksync.clock_synchronized(flag) is False  # timesyncd runs and has not synchronised yet
    flag.write_text("")
    assert clocksync.clock_synchronized(flag) is True
