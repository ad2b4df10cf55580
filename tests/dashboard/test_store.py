"""The store, on SQLite and on a real PostgreSQL: each message id once, event order not
arrival order, status upserts, and the schema the migrations build."""

from __future__ import annotations

import datetime as dt

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from hipsense.dashboard.db.tables import device_status, metadata
from hipsense.dashboard.event_store import EventStore
from hipsense.dashboard.reading.events import count_events, load_events
from hipsense.dashboard.reading.sessions import session_history
from hipsense.protocol import build_status, parse_message
from tests.dashboard.conftest import utc
from tests.dashboard.events import SESSION_A, pain, parsed, rep, session_summary

T0 = utc(2025, 3, 1, 9, 0, 0)


def test_migrations_build_exactly_the_declared_schema(engine):
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


def test_a_message_id_is_stored_once_within_and_across_batches(engine):
    store = EventStore(engine)
    first = parsed(rep("p-0001", 1, T0))
    second = parsed(rep("p-0001", 2, T0 + dt.timedelta(seconds=5)))
    result = store.write_batch([first, first, second])
    assert (result.stored, result.duplicates) == (2, 1)
    again = store.write_batch([second, first])
    assert (again.stored, again.duplicates) == (0, 2)
    assert count_events(engine, "p-0001") == 2


def test_out_of_order_arrivals_are_read_in_event_order(engine):
    store = EventStore(engine)
    envelopes = [rep("p-0001", seq, T0 + dt.timedelta(seconds=10 * seq)) for seq in range(1, 7)]
    yesterday = rep("p-0001", 7, T0 - dt.timedelta(days=1), session_id="01JQ7Z8K3M4N5P6Q7R8S9T0V2X")
    # A reconnect delivers the newest first and an old session (an outbox flush) last.
    for envelope in [envelopes[5], envelopes[2], envelopes[0], envelopes[4], envelopes[1], envelopes[3], yesterday]:
        store.write_batch([parsed(envelope)])
    stored = load_events(engine, "p-0001")
    assert [e.seq for e in stored] == [7, 1, 2, 3, 4, 5, 6]
    today = load_events(engine, "p-0001", start=utc(2025, 3, 1), end=utc(2025, 3, 2))
    assert [e.seq for e in today] == [1, 2, 3, 4, 5, 6]
    sessions = session_history(engine, "p-0001", start=utc(2025, 2, 1))
    assert [s.session_id for s in sessions] == [SESSION_A, "01JQ7Z8K3M4N5P6Q7R8S9T0V2X"]
    assert sessions[0].exercises[0].reps == 6


def test_same_instant_events_are_ordered_by_seq(engine):
    store = EventStore(engine)
    store.write_batch([parsed(pain("p-0001", 9, T0, 2)), parsed(pain("p-0001", 8, T0, 5))])
    assert [e.seq for e in load_events(engine, "p-0001")] == [8, 9]


def test_session_summary_is_the_authority_once_it_arrives(engine):
    store = EventStore(engine)
    store.write_batch([parsed(rep("p-0001", 1, T0)), parsed(rep("p-0001", 2, T0 + dt.timedelta(seconds=5)))])
    [partial] = session_history(engine, "p-0001", start=T0 - dt.timedelta(hours=1))
    assert not partial.complete and partial.exercises[0].reps == 2
    store.write_batch([parsed(session_summary("p-0001", 3, T0, reps=30, adherence=0.8))])
    [complete] = session_history(engine, "p-0001", start=T0 - dt.timedelta(hours=1))
    assert complete.complete and complete.adherence == 0.8 and complete.exercises[0].reps == 30


def test_status_keeps_the_newest_per_patient(engine):
    store = EventStore(engine)
    online = build_status("p-0001", online=True, t=T0)
    offline = build_status("p-0001", online=False)
    store.write_batch([parse_message(online.topic, online.payload)])
    store.write_batch([parse_message(offline.topic, offline.payload)])
    with engine.connect() as connection:
        rows = connection.execute(device_status.select()).all()
    assert [(r.patient, r.online) for r in rows] == [("p-0001", False)]


def _stored_payloads(engine) -> dict[int, str]:
    from hipsense.dashboard.db.tables import events

    with engine.connect() as connection:
        return dict(connection.execute(select(events.c.seq, events.c.payload)).all())


def test_a_result_is_stored_as_received_unless_it_has_escapes(engine):
    import json

    store = EventStore(engine)
    plain = rep("p-0001", 1, T0)
    spaced = rep("p-0001", 2, T0 + dt.timedelta(seconds=5))
    spaced_text = json.dumps(json.loads(spaced.payload), indent=1)  # same document, other text
    escaped = rep("p-0001", 3, T0 + dt.timedelta(seconds=10))
    escaped_text = escaped.payload.decode().replace('"clam_shells"', '"clam\\u005fshells"')
    messages = [parsed(plain), parse_message(spaced.topic, spaced_text.encode()),
                parse_message(escaped.topic, escaped_text.encode())]
    assert store.write_batch(messages).stored == 3
    payloads = _stored_payloads(engine)
    assert payloads[1] == plain.payload.decode()
    assert payloads[2] == spaced_text
    assert payloads[3] == json.dumps(messages[2].data, separators=(",", ":"), ensure_ascii=False)  # written again
    assert "\\" not in payloads[3]
    assert [e.data for e in load_events(engine, "p-0001")] == [m.data for m in messages]
    assert [(e.t_start, e.t_end) for e in load_events(engine, "p-0001")] == [
        (m.instants["t_start"], m.instants["t_end"]) for m in messages]


def test_a_full_card_stays_listed_across_the_clients_own_offline_and_online(engine):
    """The service's status says the card is full (unsaved_results); then the Pi drops off (its
    last will: "offline") and reconnects (the client's bare "online"): neither knows of the card,
    and each replaced the stored status, so the Pi left the monitoring page's list exactly when it
    mattered. They keep the count now; a status of the service without it clears it."""
    from hipsense.dashboard.reading.monitoring import full_cards

    store = EventStore(engine)
    t = utc(2025, 3, 1, 9)
    store.write_batch([parsed(build_status("p-0001", online=True, t=t, outbox_first_seq=3, unsaved_results=12))])
    assert [(c.patient, c.unsaved_results, c.card_reserve) for c in full_cards(engine, ["p-0001"])] == [("p-0001", 12, None)]
    store.write_batch([parsed(build_status("p-0001", online=False))])  # the last will
    assert [c.unsaved_results for c in full_cards(engine, ["p-0001"])] == [12]
    with engine.connect() as connection:
        assert connection.execute(select(device_status.c.online)).scalar() is False  # offline all the same
    store.write_batch([parsed(build_status("p-0001", online=True, software_version="1.0"))])  # reconnect
    assert [c.unsaved_results for c in full_cards(engine, ["p-0001"])] == [12]
    store.write_batch([parsed(build_status("p-0001", online=True, t=t, outbox_first_seq=15))])  # written again
    assert full_cards(engine, ["p-0001"]) == []
    store.write_batch([parsed(build_status("p-0001", online=False))])
    assert full_cards(engine, ["p-0001"]) == []
