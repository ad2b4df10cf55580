"""Loading stored result events, in event order (``t_start``, then ``seq``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Engine, func, select

from hipsense.dashboard.db.tables import events
from hipsense.protocol import EventKind


@dataclasses.dataclass(frozen=True, slots=True)
class StoredEvent:
    row_no: int
    message_id: str
    patient: str
    kind: EventKind
    seq: int
    session_id: str | None
    exercise: str | None
    side: str | None
    t_start: dt.datetime
    t_end: dt.datetime
    data: Mapping[str, Any]


def _event(row) -> StoredEvent:
    return StoredEvent(
        row_no=row.row_no, message_id=row.message_id, patient=row.patient, kind=EventKind(row.kind), seq=row.seq,
        session_id=row.session_id, exercise=row.exercise, side=row.side, t_start=row.t_start,
        t_end=row.t_end, data=json.loads(row.payload),
    )


def load_events(
    engine: Engine,
    patient: str,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    kinds: Iterable[str] | None = None,
    session_id: str | None = None,
) -> list[StoredEvent]:
    """Events of ``patient`` with ``start <= t_start < end``, in the order they happened: by the
    time each ended, then seq (a set or session summary ends with its last rep, and comes after
    it; by its start it would sit between rep 1 and rep 2)."""
    query = select(events).where(events.c.patient == patient)
    if start is not None:
        query = query.where(events.c.t_start >= start)
    if end is not None:
        query = query.where(events.c.t_start < end)
    if kinds is not None:
        query = query.where(events.c.kind.in_([str(k) for k in kinds]))
    if session_id is not None:
        query = query.where(events.c.session_id == session_id)
    query = query.order_by(events.c.t_end, events.c.seq)
    with engine.connect() as connection:
        return [_event(row) for row in connection.execute(query)]


def events_stored_after(engine: Engine, patient: str, row_no: int, *, limit: int = 200) -> list[StoredEvent]:
    """Events stored (in arrival order) after ``row_no``: what a live page has not shown yet."""
    query = (
        select(events).where(events.c.patient == patient, events.c.row_no > row_no)
        .order_by(events.c.row_no).limit(limit)
    )
    with engine.connect() as connection:
        return [_event(row) for row in connection.execute(query)]


def last_row_no(engine: Engine, patient: str) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.coalesce(func.max(events.c.row_no), 0)).where(events.c.patient == patient))


def count_events(engine: Engine, patient: str | None = None) -> int:
    query = select(func.count()).select_from(events)
    if patient is not None:
        query = query.where(events.c.patient == patient)
    with engine.connect() as connection:
        return connection.scalar(query)
