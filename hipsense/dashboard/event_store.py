"""Writing what the broker delivers: result events once each, the newest status of each Pi.

Results are stored with insert-or-ignore against the unique ``message_id``: the protocol
delivers at least once, and a repeat carries the same content, so the first copy wins and
the rest are counted as duplicates. A batch is one transaction, so the ingester can
acknowledge a whole batch to the broker after one commit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence

from sqlalchemy import Engine, select
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


class EventStore:
    """The write side of the database, shared by every ingest thread of one process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dialect = {"postgresql": postgresql, "sqlite": sqlite}.get(engine.dialect.name)
        if self._dialect is None:
            raise ValueError(f"unsupported database {engine.dialect.name!r}: use SQLite or PostgreSQL")

    def write_batch(self, messages: Sequence[Message]) -> BatchResult:
        """Store result events (each id once) and status updates, in one transaction."""
        now = _now()
        results = [m for m in messages if m.kind.is_event]
        statuses = [m for m in messages if m.kind is MessageKind.STATUS]
        # Within one batch too: the same id twice would make the multi-row insert ambiguous.
        unique_rows = {m.message_id: event_row(m, now) for m in reversed(results)}
        rows = list(reversed(unique_rows.values()))
        stored: list[str] = []
        changed = {m.patient for m in statuses}
        with self.engine.begin() as connection:
            self._register_patients(connection, {m.patient for m in messages}, now)
            if rows:
                insert = self._dialect.insert(events).on_conflict_do_nothing(index_elements=["message_id"])
                # One multi-row statement (SQLAlchemy's "insertmanyvalues"); RETURNING names
                # the rows that were new, so duplicates are counted, not guessed.
                returned = connection.execute(insert.returning(events.c.patient), rows).all()
                stored.extend(row.patient for row in returned)
            for message in statuses:
                self._upsert_status(connection, message, now)
        changed.update(stored)
        return BatchResult(
            stored=len(stored),
            duplicates=len(results) - len(stored),
            statuses=len(statuses),
            patients=frozenset(changed),
        )

    def _register_patients(self, connection, patient_ids: set[str], now: dt.datetime) -> None:
        # Pis appear before an operator assigns them; they show up unassigned until then.
        if not patient_ids:
            return
        known = set(connection.scalars(select(patients.c.patient_id).where(patients.c.patient_id.in_(patient_ids))))
        new = sorted(patient_ids - known)
        if new:
            insert = self._dialect.insert(patients).on_conflict_do_nothing(index_elements=["patient_id"])
            connection.execute(insert, [{"patient_id": p, "first_seen": now} for p in new])

    def _upsert_status(self, connection, message: Message, now: dt.datetime) -> None:
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
