"""Poison never halts ingest, and no stored row takes a page down (issue 11), on SQLite and on a
real PostgreSQL, through a real Mosquitto.

* The database's column limits come from the JSON Schemas: a ``session_id`` may be 64
  characters, and so must the column be (it was varchar(26): one such rep made every later
  write on PostgreSQL fail, for ever).
* A message the database still refuses goes to ``dead_letters`` with the reason; the rest of
  its batch and everything after it is stored, and its patient's Pi is acknowledged past it.
  (The database refuses here because the test gives it the old, too-narrow column back.)
* An instant before 2020 or more than a day ahead is refused at validation and dead-lettered.
* A year-9999 row already in the database (stored before that check existed) does not make the
  patient list or the patient page answer 500 in a time zone east of UTC.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import time

import pytest
from sqlalchemy import String, inspect, select, text

from hipsense import protocol as p
from hipsense.dashboard.accounts.therapists import add_therapist, assign_patient
from hipsense.dashboard.clinic_time import ClinicClock
from hipsense.dashboard.db.tables import dead_letters, events
from hipsense.dashboard.event_store import EventStore
from hipsense.dashboard.ingest import IngestService
from hipsense.dashboard.reading.events import count_events
from hipsense.dashboard.web import DashboardContext, create_app
from hipsense.publish import Outbox
from hipsense.publish.mqtt import MqttClient, MqttSettings
from tests.dashboard.conftest import mqtt_settings
from tests.dashboard.events import parsed, rep, session_summary
from tests.dashboard.web_helpers import PASSWORD, logged_in

LONG_SESSION = "S" * 64  # the longest session_id common.json allows
EAST = "Pacific/Kiritimati"  # UTC+14: the furthest east there is


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


# -- column limits come from the schemas --------------------------------------------------------

_TOKEN = re.compile(r"(\[[^\]]*\]|\\.|[^\[\\{])(?:\{(\d+)(?:,(\d+))?\})?")


def longest_match(pattern: str) -> int:
    """The longest string a simple anchored pattern (``^[..]{m,n}[..]$`` and the like) matches."""
    assert pattern.startswith("^") and pattern.endswith("$"), pattern
    body, total, position = pattern[1:-1], 0, 0
    while position < len(body):
        match = _TOKEN.match(body, position)
        assert match and match.end() > position, f"pattern too clever for this test: {pattern}"
        low, high = match.group(2), match.group(3)
        total += int(high or low or 1)
        position = match.end()
    return total


def longest_value(definition: dict) -> int:
    if "enum" in definition:
        return max(len(v) for v in definition["enum"] if isinstance(v, str))
    limits = [definition["maxLength"]] if "maxLength" in definition else []
    if "pattern" in definition:
        limits.append(longest_match(definition["pattern"]))
    assert limits, f"no length limit in the schema: {definition}"
    return min(limits)


# events column -> the common.json definition its values come from
COLUMN_SOURCES = {"message_id": "message_id", "patient": "patient", "session_id": "session_id",
                  "exercise": "exercise", "side": "side"}
KINDS = ("rep", "hold", "set", "session", "pain")


def test_the_pattern_reader_reads_the_patterns():
    assert longest_match("^[0-9A-HJKMNP-TV-Z]{26}$") == 26
    assert longest_match("^[a-z0-9][a-z0-9_-]{3,63}$") == 64
    assert longest_match("^[a-z][a-z0-9_]{1,63}$") == 64


def test_every_string_column_of_events_holds_what_the_schema_allows(engine):
    """Against the migrated database itself (PostgreSQL enforces varchar lengths; SQLite keeps
    the declared ones) and against tables.py."""
    defs = p.load_schema("common.json")["$defs"]
    declared = {c.name: c.type.length for c in events.columns if isinstance(c.type, String)}
    migrated = {c["name"]: getattr(c["type"], "length", None) for c in inspect(engine).get_columns("events")}
    for lengths in (declared, migrated):
        for column, source in COLUMN_SOURCES.items():
            assert lengths[column] is None or lengths[column] >= longest_value(defs[source]), (column, lengths[column])
        assert lengths["kind"] >= max(map(len, KINDS))


# -- a database that refuses a value: dead letter, and the rest flows ---------------------------


@contextlib.contextmanager
def session_id_column_of_26(engine):
    """Give the database back the old varchar(26) session_id (PostgreSQL), or an equivalent
    refusal (SQLite ignores declared lengths; a trigger refuses as PostgreSQL did)."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE events ALTER COLUMN session_id TYPE varchar(26)"))
        else:
            connection.execute(text(
                "CREATE TRIGGER old_session_id BEFORE INSERT ON events WHEN length(NEW.session_id) > 26 "
                "BEGIN SELECT RAISE(ABORT, 'value too long for type character varying(26)'); END"))
    try:
        yield
    finally:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(text("ALTER TABLE events ALTER COLUMN session_id TYPE varchar(64)"))
            else:
                connection.execute(text("DROP TRIGGER old_session_id"))


def _rows(engine, table, *columns):
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(select(*columns).order_by(table.c.row_no))]


def test_poison_is_dead_lettered_and_everything_else_flows_through_the_broker(engine, broker, tmp_path):
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    start = now - dt.timedelta(hours=1)
    dashboard = IngestService(EventStore(engine), mqtt_settings(broker, client_id="dash-poison", clean_start=False,
                                                                session_expiry_s=600))
    outbox = Outbox(tmp_path / "outbox.sqlite")
    pi = MqttClient(mqtt_settings(broker, user="p-0001", storage_timeout_s=2.0, reconnect_grace_s=1.0),
                    patient="p-0001", outbox=outbox)
    other_outbox = Outbox(tmp_path / "o2.sqlite")
    other = MqttClient(mqtt_settings(broker, user="p-0002"), patient="p-0002", outbox=other_outbox)
    year_9999 = dt.datetime(9999, 12, 31, 23, 0, tzinfo=dt.timezone.utc)
    builds = [
        lambda seq: rep("p-0001", seq, start),
        lambda seq: rep("p-0001", seq, start + dt.timedelta(seconds=5), session_id=LONG_SESSION),  # refused by the DB
        lambda seq: session_summary("p-0001", seq, year_9999 - dt.timedelta(minutes=15)),  # refused: year 9999
        lambda seq: p.build_pain_checkin("p-0001", seq=seq, score=2, moment="after", t=dt.datetime(2019, 6, 1,
                                         tzinfo=dt.timezone.utc)),  # refused: before 2020
        lambda seq: rep("p-0001", seq, start + dt.timedelta(seconds=10)),
    ]
    with session_id_column_of_26(engine), dashboard, pi, other:
        assert dashboard.wait_connected(10) and pi.wait_connected(10) and other.wait_connected(10)
        for build in builds:
            outbox.put_sequenced("p-0001", build)
            pi.notify_outbox()
        for seq in range(1, 4):
            other_outbox.put_sequenced("p-0002", lambda s: rep("p-0002", s, start))
            other.notify_outbox()
        wait_until(lambda: count_events(engine) == 5, 20, "the 2 + 3 good results")
        wait_until(lambda: outbox.stats().pending_total == 0, 20, "p-0001's outbox to empty (acknowledged past the poison)")
        time.sleep(0.2)

    stored = _rows(engine, events, events.c.patient, events.c.seq)
    assert sorted(stored) == [("p-0001", 1), ("p-0001", 5), ("p-0002", 1), ("p-0002", 2), ("p-0002", 3)]
    letters = _rows(engine, dead_letters, dead_letters.c.patient, dead_letters.c.seq, dead_letters.c.reason)
    assert sorted((patient, seq) for patient, seq, _ in letters) == [("p-0001", 2), ("p-0001", 3), ("p-0001", 4)]
    reasons = {seq: reason for _, seq, reason in letters}
    assert "database refused" in reasons[2]
    assert "9999" in reasons[3] and "ahead" in reasons[3]
    assert "before 2020" in reasons[4]
    assert dashboard.stats.dead_lettered == 3
    assert EventStore(engine).stored_seq("p-0001") == 5
    outbox.close()
    other_outbox.close()


def test_a_redelivered_dead_letter_is_kept_once(engine):
    service = IngestService(EventStore(engine), MqttSettings(host="127.0.0.1", port=1))  # fed directly
    service.start(connect=False)
    bad = rep("p-0001", 1, dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3))
    for _ in range(3):
        service.receive(bad.topic, bad.payload, lambda: None)
    assert service.drain(10)
    service.stop()
    assert len(_rows(engine, dead_letters, dead_letters.c.seq)) == 1


# -- a stored year-9999 row never takes a page down ---------------------------------------------


@pytest.mark.parametrize("zone", [EAST, "UTC", "America/Los_Angeles"])
def test_pages_answer_200_with_a_year_9999_row_stored(engine, zone):
    add_therapist(engine, "ana", PASSWORD, "Ana")
    assign_patient(engine, "p-0001", "ana")
    assign_patient(engine, "p-0002", "ana")
    now = dt.datetime(2025, 3, 5, 12, 0, tzinfo=dt.timezone.utc)
    store = EventStore(engine)
    store.write_batch([parsed(rep("p-0002", 1, now - dt.timedelta(hours=1)))])
    # Stored by a dashboard before instants were checked against the clock: bypass validation.
    summary = json.loads(session_summary("p-0001", 1, dt.datetime(9999, 12, 31, 23, 0, tzinfo=dt.timezone.utc)
                                         - dt.timedelta(minutes=15)).payload)
    pain = json.loads(p.build_pain_checkin("p-0001", seq=2, score=9, moment="after",
                                           t=dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.timezone.utc)).payload)
    with engine.begin() as connection:
        for doc, kind in ((summary, "session"), (pain, "pain")):
            t_start = p.parse_timestamp(doc.get("t_start", doc.get("t")))
            t_end = p.parse_timestamp(doc.get("t_end", doc.get("t")))
            connection.execute(events.insert().values(
                message_id=doc["id"], patient="p-0001", kind=kind, seq=doc["seq"], session_id=doc.get("session_id"),
                exercise=None, side=None, t_start=t_start, t_end=t_end, payload=json.dumps(doc), received_at=now))
    from zoneinfo import ZoneInfo

    app = create_app(DashboardContext(engine=engine, clock=ClinicClock(zone=ZoneInfo(zone), fixed_now=now)))
    client = logged_in(app, "ana")
    for path in ("/", "/patients/table", "/patients/p-0001", "/patients/p-0002", "/monitoring",
                 "/patients/p-0001/prescription", f"/patients/p-0001/export.csv?session={summary['session_id']}",
                 "/patients/p-0001/export.fhir.json?start=2025-03-01&end=2025-03-05"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    # Asking for the last days of the calendar is a bad request, said so, not a crash.
    response = client.get("/patients/p-0001/export.csv?start=9999-12-01&end=9999-12-31")
    assert response.status_code in (200, 400) and "Traceback" not in response.text


def test_the_operator_lists_dead_letters_with_their_reason(sqlite_engine, tmp_path):
    from click.testing import CliRunner

    from hipsense.cli import main as cli

    service = IngestService(EventStore(sqlite_engine), MqttSettings(host="127.0.0.1", port=1))  # fed directly
    service.start(connect=False)
    bad = rep("p-0001", 7, dt.datetime(2019, 12, 31, tzinfo=dt.timezone.utc))
    service.receive(bad.topic, bad.payload, lambda: None)
    assert service.drain(10)
    service.stop()
    url = sqlite_engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(cli, ["dashboard", "dead-letters", "--db", url])
    assert result.exit_code == 0, result.output
    assert "1 dead letter(s)" in result.output and "p-0001  seq 7" in result.output and "before 2020" in result.output


def test_results_refused_for_a_wrong_clock_are_stored_once_it_is_right(engine):
    """This server's clock 3 days behind: every Pi's results look 'more than a day ahead', are
    dead-lettered and acknowledged as handled (their Pis forget them). The dead letter is
    their only copy; once the clock is right, the operator stores them (``--retry``)."""
    from click.testing import CliRunner

    from hipsense.cli import main as cli

    now = dt.datetime.now(dt.timezone.utc)
    service = IngestService(EventStore(engine), MqttSettings(host="127.0.0.1", port=1),  # fed directly
                            clock=lambda: now - dt.timedelta(days=3))
    service.start(connect=False)
    good, old = rep("p-0001", 1, now - dt.timedelta(minutes=5)), rep("p-0001", 2, dt.datetime(2019, 12, 31,
                                                                                                tzinfo=dt.timezone.utc))
    for message in (good, old):
        service.receive(message.topic, message.payload, lambda: None)
    assert service.drain(10)
    service.stop()
    assert EventStore(engine).stored_seq("p-0001") == 2  # acknowledged: the Pi forgets both
    assert _rows(engine, events, events.c.seq) == []
    url = engine.url.render_as_string(hide_password=False)
    for _ in range(2):  # a second retry changes nothing
        result = CliRunner().invoke(cli, ["dashboard", "dead-letters", "--retry", "--db", url])
        assert result.exit_code == 0, result.output
    assert _rows(engine, events, events.c.seq) == [(1,)]
    assert _rows(engine, dead_letters, dead_letters.c.seq) == [(2,)]  # before 2020: still refused
    assert "0 result(s) stored, 1 dead letter(s) still refused" in result.output
