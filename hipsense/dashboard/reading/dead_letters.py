"""What the operator sees of the messages ingest could not store (``dead_letters``)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import Engine, func, select

from hipsense.dashboard.db.tables import dead_letters


@dataclasses.dataclass(frozen=True, slots=True)
class DeadLetterRow:
    received_at: dt.datetime
    topic: str
    patient: str | None
    seq: int | None
    reason: str
    payload: str


def count_dead_letters(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(dead_letters)).scalar_one()


def latest_dead_letters(engine: Engine, limit: int = 50, *, patient: str | None = None) -> list[DeadLetterRow]:
    """The newest ``limit`` dead letters, newest first (optionally of one patient)."""
    query = select(dead_letters.c.received_at, dead_letters.c.topic, dead_letters.c.patient, dead_letters.c.seq,
                   dead_letters.c.reason, dead_letters.c.payload)
    if patient is not None:
        query = query.where(dead_letters.c.patient == patient)
    with engine.connect() as connection:
        rows = connection.execute(query.order_by(dead_letters.c.row_no.desc()).limit(limit)).all()
    return [DeadLetterRow(*row) for row in rows]
