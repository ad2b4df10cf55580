"""What the pages compute: today's status, weekly adherence, alerts, the remote-monitoring
window, and sessions counted from events against the prescription in force."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hipsense import protocol as p
from hipsense.dashboard.clinic_time import ClinicClock
from hipsense.dashboard.event_store import EventStore
from hipsense.dashboard.live_hub import LiveHub, Update
from hipsense.dashboard.prescribing import publish_prescription
from hipsense.dashboard.reading.monitoring import monitoring_window
from hipsense.dashboard.reading.overview import patient_overview
from hipsense.dashboard.reading.sessions import session_history
from hipsense.dashboard.reading.trends import weekly_trends
from tests.dashboard.conftest import utc
from tests.dashboard.events import pain, parsed, rep, session_summary

NOW = utc(2025, 3, 6, 15, 0)  # a Thursday
CLOCK = ClinicClock(fixed_now=NOW)


def session_id(day: int) -> str:
    return f"01JQ7Z8K3M4N5P6Q7R8S9T{day:04d}"


def overview(engine, hub=None):
    hub = hub or LiveHub()
    return patient_overview(engine, "p-0001", None, clock=CLOCK, last_live=hub.last_live)


def test_a_patient_without_data_is_missed_with_an_alert(sqlite_engine):
    row = overview(sqlite_engine)
    assert (row.status, row.adherence_week, row.last_pain, row.alerts) == ("missed", None, None, ("no session yet",))


def test_status_follows_the_day(sqlite_engine):
    store = EventStore(sqlite_engine)
    status = p.build_status("p-0001", online=True)
    store.write_batch([p.parse_message(status.topic, status.payload)])
    assert overview(sqlite_engine).status == "online"
    hub = LiveHub()
    live = p.build_live("p-0001", t=NOW, side="left", thigh_angle_deg=10)
    hub.publish(Update("live", "p-0001", p.parse_message(live.topic, live.payload).data))
    assert overview(sqlite_engine, hub).status == "exercising"
    store.write_batch([parsed(session_summary("p-0001", 1, NOW - dt.timedelta(hours=3), session_id=session_id(6)))])
    assert overview(sqlite_engine).status == "done"


def test_weekly_adherence_counts_missed_days_as_zero_and_today_only_once_done(sqlite_engine):
    store = EventStore(sqlite_engine)
    # Monday 0.9, Tuesday nothing, Wednesday 0.6 (best of two); Thursday (today) nothing yet.
    store.write_batch([parsed(e) for e in [
        session_summary("p-0001", 1, utc(2025, 3, 3, 9), session_id=session_id(3), adherence=0.9),
        session_summary("p-0001", 2, utc(2025, 3, 5, 9), session_id=session_id(5), adherence=0.4),
        session_summary("p-0001", 3, utc(2025, 3, 5, 18), session_id=session_id(55), adherence=0.6),
        session_summary("p-0001", 4, utc(2025, 3, 1, 9), session_id=session_id(1), adherence=1.0),  # last week
    ]])
    assert overview(sqlite_engine).adherence_week == 0.5  # (0.9 + 0 + 0.6) / 3


def test_alerts_for_rising_pain_falling_range_of_motion_and_absence(sqlite_engine):
    store = EventStore(sqlite_engine)
    events = [session_summary("p-0001", 1, NOW - dt.timedelta(days=12), session_id=session_id(1), mean_rom=40),
              session_summary("p-0001", 2, NOW - dt.timedelta(days=9), session_id=session_id(2), mean_rom=42),
              session_summary("p-0001", 3, NOW - dt.timedelta(days=4), session_id=session_id(3), mean_rom=30),
              pain("p-0001", 4, NOW - dt.timedelta(days=6), 2, session_id=None),
              pain("p-0001", 5, NOW - dt.timedelta(days=5), 3, session_id=None),
              pain("p-0001", 6, NOW - dt.timedelta(days=4), 6, session_id=None)]
    store.write_batch([parsed(e) for e in events])
    alerts = overview(sqlite_engine).alerts
    assert alerts == ("no session for 3 days", "pain rising (2.5 → 6)", "range of motion falling (41° → 30°)")


def test_remote_monitoring_needs_16_days_in_the_last_30(engine):
    store = EventStore(engine)
    days = [NOW - dt.timedelta(days=d) for d in range(0, 40, 2)]  # every other day for 40 days
    store.write_batch([parsed(pain("p-0001", i + 1, t, 1, session_id=None)) for i, t in enumerate(days)])
    window = monitoring_window(engine, "p-0001", clock=CLOCK)
    assert (window.first_day, window.last_day) == (dt.date(2025, 2, 5), dt.date(2025, 3, 6))
    assert window.count == 15 and not window.eligible and window.days_still_needed == 1
    store.write_batch([parsed(pain("p-0001", 99, NOW - dt.timedelta(days=1), 1, session_id=None))])
    assert monitoring_window(engine, "p-0001", clock=CLOCK).eligible


def test_days_are_the_clinics_local_days(sqlite_engine):
    store = EventStore(sqlite_engine)
    store.write_batch([parsed(pain("p-0001", 1, utc(2025, 3, 5, 23, 30), 1, session_id=None))])
    tokyo = ClinicClock(zone=ZoneInfo("Asia/Tokyo"), fixed_now=NOW - dt.timedelta(hours=6))  # 18:00 on the 6th
    assert monitoring_window(sqlite_engine, "p-0001", clock=tokyo).days_with_data == (dt.date(2025, 3, 6),)
    assert monitoring_window(sqlite_engine, "p-0001", clock=CLOCK).days_with_data == (dt.date(2025, 3, 5),)


def test_a_session_without_summary_is_counted_against_the_prescription_in_force(sqlite_engine):
    from hipsense.dashboard.accounts.therapists import add_therapist

    ana = add_therapist(sqlite_engine, "ana", "correct horse battery")
    items = [p.PrescribedExercise(order=1, exercise="clam_shells", sets=2, reps=10, hold_s=2, sides=("left",))]
    publish_prescription(sqlite_engine, "p-0001", items, therapist_id=ana.id, publish=lambda e: None,
                         now=NOW - dt.timedelta(days=1))
    store = EventStore(sqlite_engine)
    start = NOW - dt.timedelta(hours=1)
    store.write_batch([parsed(rep("p-0001", n, start + dt.timedelta(seconds=5 * n), rom=30 + n,
                                  set_index=1 + (n - 1) // 10)) for n in range(1, 16)])
    [session] = session_history(sqlite_engine, "p-0001", start=NOW - dt.timedelta(days=2))
    [result] = session.exercises
    assert not session.complete
    assert (result.sets, result.sets_target, result.reps, result.reps_target) == (2, 2, 15, 20)
    assert (result.max_rom_deg, result.mean_rom_deg, session.adherence) == (45.0, 38.0, 0.75)


def test_weekly_trends_leave_gaps_for_weeks_without_data(sqlite_engine):
    store = EventStore(sqlite_engine)
    store.write_batch([parsed(rep("p-0001", 1, NOW - dt.timedelta(days=14), rom=30)),
                       parsed(rep("p-0001", 2, NOW - dt.timedelta(hours=2), rom=40))])
    points = weekly_trends(sqlite_engine, "p-0001", clock=CLOCK, weeks=3)
    assert [pt.week_start for pt in points] == [dt.date(2025, 2, 17), dt.date(2025, 2, 24), dt.date(2025, 3, 3)]
    assert [pt.mean_rom_deg for pt in points] == [30.0, None, 40.0]


def _live(hub, session_id=None):
    live = p.build_live("p-0001", t=NOW, side="left", thigh_angle_deg=3, session_id=session_id)
    hub.publish(Update("live", "p-0001", p.parse_message(live.topic, live.payload).data))


def test_a_finished_patient_is_done_while_the_sensor_still_sends_rest_data(sqlite_engine):
    store, hub = EventStore(sqlite_engine), LiveHub()
    start = NOW - dt.timedelta(minutes=3)
    store.write_batch([parsed(rep("p-0001", 1, start)), parsed(rep("p-0001", 2, start + dt.timedelta(seconds=5)))])
    _live(hub, session_id=p.new_session_id())
    assert overview(sqlite_engine, hub).status == "exercising"
    last_rep_end = start + dt.timedelta(seconds=8)
    summary = p.build_session_summary("p-0001", seq=3, session_id=session_id(6), t_start=start, t_end=last_rep_end,
                                      exercises=[], prescription_version=None, adherence=None)
    store.write_batch([parsed(summary)])
    _live(hub)  # the sensor is still on the thigh: rest data, outside any session
    assert overview(sqlite_engine, hub).status == "done"
    _live(hub, session_id=p.new_session_id())  # a second session begins
    assert overview(sqlite_engine, hub).status == "exercising"


def test_a_skipped_day_reads_skipped_and_does_not_count_as_exercise(sqlite_engine):
    from hipsense.protocol.skipped_day import skip_flags

    store = EventStore(sqlite_engine)
    skipped = p.build_session_summary("p-0001", seq=1, session_id=session_id(6), t_start=NOW - dt.timedelta(hours=1),
                                      t_end=NOW - dt.timedelta(hours=1), exercises=[], prescription_version=None,
                                      adherence=0.0, flags=skip_flags("unwell"))
    store.write_batch([parsed(skipped)])
    row = overview(sqlite_engine)
    assert row.status == "skipped"
    assert "no session yet" in row.alerts  # saying "skip" is not exercising
