"""The demo clinic's history: real recordings through the real counter, into the dashboard's
own database, telling the stories the therapist's pages are for (issue 12)."""

from __future__ import annotations

import datetime as dt

import pytest

from hipsense.dashboard.clinic_time import ClinicClock
from hipsense.dashboard.reading.overview import patient_overview
from hipsense.dashboard.reading.sessions import session_history
from hipsense.dashboard.reading.trends import weekly_trends
from hipsense.demo.clinic import seed_clinic
from hipsense.demo.history import PATIENTS, RECORDINGS, count_recording, seed_history_into

pytestmark = pytest.mark.slow

NOW = dt.datetime(2026, 3, 12, 15, 0, tzinfo=dt.UTC)  # a Thursday afternoon


@pytest.fixture(scope="module")
def clinic(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("demo") / "dashboard.sqlite3")
    demo = seed_clinic(db)
    # A fixed "now": weeks and alerts must not depend on the day the test runs.
    stored = seed_history_into(db, demo.username, demo.therapist_id, demo.patient_id, now=NOW)
    from hipsense.dashboard.db import make_engine

    engine = make_engine(db)
    yield engine, stored
    engine.dispose()


def test_the_counter_finds_the_recordings_sets():
    sets = count_recording(RECORDINGS["uci_s1_slr"])
    assert [len(s.reps) for s in sets] == [10, 10, 10]  # correct, too fast, low amplitude
    mean = [sum(r.rom_deg for r in s.reps) / len(s.reps) for s in sets]
    assert mean[2] < 0.75 * mean[0]  # the low-amplitude block is what makes p-demo3's range fall
    assert any("too_fast" in r.flags for r in sets[1].reps)  # the form flags come through with the reps


def overview(engine, patient):
    return patient_overview(engine, patient, None, clock=ClinicClock(fixed_now=NOW), last_live=lambda *_: None)


def test_every_alert_fires_for_someone(clinic):
    engine, stored = clinic
    assert set(stored) == {p.patient_id for p in PATIENTS}
    alerts = {p.patient_id: overview(engine, p.patient_id).alerts for p in PATIENTS}
    assert any(a.startswith("pain rising") for a in alerts["p-demo2"]), alerts
    assert any(a.startswith("range of motion falling") for a in alerts["p-demo3"]), alerts
    assert any(a.startswith("no session for") for a in alerts["p-demo4"]), alerts
    assert alerts["p-demo1"] == ()  # the live patient: five good weeks


def test_adherence_varies_and_a_skipped_day_reads_skipped(clinic):
    engine, _ = clinic
    rows = {p.patient_id: overview(engine, p.patient_id) for p in PATIENTS}
    assert rows["p-demo5"].status == "skipped"
    assert rows["p-demo2"].status == "done"
    assert rows["p-demo4"].status == "missed"
    assert rows["p-demo5"].adherence_week is not None and rows["p-demo5"].adherence_week < 0.5
    assert rows["p-demo2"].adherence_week > rows["p-demo5"].adherence_week  # varying adherence
    sessions = session_history(engine, "p-demo5", start=NOW - dt.timedelta(days=60))
    assert any("skipped" in s.flags for s in sessions)


def test_twelve_weeks_of_charts_and_a_missed_week(clinic):
    engine, _ = clinic
    clock = ClinicClock(fixed_now=NOW)
    trends = weekly_trends(engine, "p-demo3", clock=clock)
    assert sum(1 for w in trends if w.mean_rom_deg is not None) >= 11  # up to 12 weeks of dots
    weeks = weekly_trends(engine, "p-demo4", clock=clock)
    with_data = [w.mean_rom_deg is not None for w in weeks]
    assert False in with_data[with_data.index(True):]  # a gap: the missed week
