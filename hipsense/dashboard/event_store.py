"""Writing what the broker delivers: result events once each, the newest status of each Pi.

Results are stored with insert-or-ignore against the unique ``message_id``: the protocol
delivers at least once, and a repeat carries the same content, so the first copy wins and
the rest are counted as duplicates. The ingester acknowledges a batch to the broker only
after :meth:`EventStore.write_batch` returned.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from collections.abc import Sequence

from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite

from hipsense.dashboard.db.tables import device_status, events, patients
from hipsense.protocol import Message, MessageKind, parse_timestamp


@dataclasses.dataclass(frozen=True, slots=True)
class BatchResult:
    """What one :meth:`EventStore.write_batch` did."""

    stored: int
    duplicates: int
    statuses: int
    patients: frozenset[str]  # whose rows changed, for live page updates


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def event_span(message: Message) -> tuple[dt.datetime, dt.datetime]:
    """The event time of a result: ``t_start``..``t_end``, or ``t`` twice for a pain check-in."""
    data = message.data
    if "t_start" in data:
        return parse_timestamp(data["t_start"]), parse_timestamp(data["t_end"])
    instant = parse_timestamp(data["t"])
    return instant, instant


def event_row(message: Message, received_at: dt.datetime) -> dict:
    """The ``events`` row of a validated result message."""
    t_start, t_end = event_span(message)
    data = message.data
    return {
        "message_id": message.message_id,
        "patient": message.patient,
        "kind": message.kind.value.removeprefix("event/"),
        "seq": message.seq,
        "session_id": data.get("session_id"),
        "exercise": data.get("exercise"),
        "side": data.get("side"),
        "t_start": t_start,
        "t_end": t_end,
        "payload": json.dumps(data, separators=(",", ":"), ensure_ascii=False),
        "received_at": received_at,
    }


_EVENT_COLUMNS = {
    "message_id": "varchar", "patient": "varchar", "kind": "varchar", "seq": "bigint", "session_id": "varchar",
    "exercise": "varchar", "side": "varchar", "t_start": "timestamptz", "t_end": "timestamptz",
    "payload": "text", "received_at": "timestamptz",
}
_UNNEST_INSERT = (
    f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) "
    f"SELECT * FROM unnest({', '.join(f'%({name})b::{kind}[]' for name, kind in _EVENT_COLUMNS.items())}) "
    "ON CONFLICT (message_id) DO NOTHING RETURNING patient"
)


class EventStore:
    """The write side of the database, used by one ingest writer thread at a time.

    Throughput comes from doing as few round trips as possible per batch: the store keeps one
    connection in autocommit mode and writes a batch's results with ONE multi-row
    ``INSERT … ON CONFLICT DO NOTHING RETURNING`` (the statement is its own transaction), and
    remembers which patients it has registered so that it does not ask again. Atomicity
    across statements is not needed: everything is idempotent, and nothing is acknowledged to
    the broker until every statement succeeded, so a failure halfway is redelivered and
    completed.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dialect = {"postgresql": postgresql, "sqlite": sqlite}.get(engine.dialect.name)
        if self._dialect is None:
            raise ValueError(f"unsupported database {engine.dialect.name!r}: use SQLite or PostgreSQL")
        self._lock = threading.Lock()
        self._connection: Connection | None = None
        self._known_patients: set[str] = set()
        self._insert_events = self._dialect.insert(events).on_conflict_do_nothing(
            index_elements=["message_id"]).returning(events.c.patient)

    def write_batch(self, messages: Sequence[Message]) -> BatchResult:
        """Store result events (each id once) and status updates; raises if the database fails."""
        with self._lock:
            try:
                return self._write(messages, self._open())
            except Exception:
                self._close()  # a broken connection is replaced on the next try
                raise

    def close(self) -> None:
        with self._lock:
            self._close()

    def _open(self) -> Connection:
        if self._connection is None:
            self._connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._connection

    def _close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass
            self._connection = None

    def _write(self, messages: Sequence[Message], connection: Connection) -> BatchResult:
        now = _now()
        results = [m for m in messages if m.kind.is_event]
        statuses = [m for m in messages if m.kind is MessageKind.STATUS]
        # Within one batch too: the same id twice would make the multi-row insert ambiguous.
        unique_rows = {m.message_id: event_row(m, now) for m in reversed(results)}
        rows = list(reversed(unique_rows.values()))
        self._register_patients(connection, {m.patient for m in messages}, now)
        stored = self._insert_events_rows(connection, rows) if rows else []
        for message in statuses:
            self._upsert_status(connection, message, now)
        return BatchResult(
            stored=len(stored),
            duplicates=len(results) - len(stored),
            statuses=len(statuses),
            patients=frozenset(stored) | {m.patient for m in statuses},
        )

    def _insert_events_rows(self, connection: Connection, rows: list[dict]) -> list[str]:
        """Insert-or-ignore ``rows``; return the patient of each row that was new."""
        if self.engine.dialect.name == "postgresql":
            # One statement whose text does not depend on the batch size, so psycopg parses
            # and prepares it once; a multi-row VALUES list is new text for every size, and
            # parsing it cost more CPU than the rest of storing.
            # Binary parameters: text-format arrays would escape every quote of every payload.
            columns = {name: [row[name] for row in rows] for name in _EVENT_COLUMNS}
            with connection.connection.driver_connection.cursor(binary=True) as cursor:
                cursor.execute(_UNNEST_INSERT, columns)
                return [patient for (patient,) in cursor.fetchall()]
        return [row.patient for row in connection.execute(self._insert_events, rows)]

    def _register_patients(self, connection: Connection, patient_ids: set[str], now: dt.datetime) -> None:
        # Pis appear before an operator assigns them; they show up unassigned until then.
        new = sorted(patient_ids - self._known_patients)
        if new:
            insert = self._dialect.insert(patients).on_conflict_do_nothing(index_elements=["patient_id"])
            connection.execute(insert, [{"patient_id": p, "first_seen": now} for p in new])
            self._known_patients.update(new)

    def _upsert_status(self, connection: Connection, message: Message, now: dt.datetime) -> None:
        data = message.data
        status_t = parse_timestamp(data["t"]) if "t" in data else None
        values = {
            "patient": message.patient,
            "online": data["state"] == "online",
            "status_t": status_t,
            "received_at": now,
            "payload": json.dumps(data, separators=(",", ":")),
        }
        insert = self._dialect.insert(device_status).values(values)
        update = {key: insert.excluded[key] for key in ("online", "status_t", "received_at", "payload")}
        connection.execute(insert.on_conflict_do_update(index_elements=["patient"], set_=update))
