"""What the operator and the therapists see of results that did not reach the records: the
messages ingest could not store (``dead_letters``) and the results that will never arrive
(``delivery_gaps``)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import Engine, func, select

from hipsense.dashboard.db.tables import dead_letters, delivery_gaps


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


GAP_UNKNOWN = 10**6
"""A gap this wide is a Pi numbering on from Unix ms after a corrupt outbox: how many of those
numbers it had used is unknown."""


@dataclasses.dataclass(frozen=True, slots=True)
class Undelivered:
    """A patient's results that did not reach the records."""

    patient: str
    dead_letters: int
    last_dead_letter: DeadLetterRow | None
    gaps: tuple[tuple[int, int, int | None, dt.datetime], ...]  # (after_seq, before_seq, missing or None, when)


def undelivered(engine: Engine, patients: list[str]) -> list[Undelivered]:
    """For each of ``patients`` with any: dead letters (how many, the newest) and gaps."""
    if not patients:
        return []
    with engine.connect() as connection:
        counts = dict(connection.execute(select(dead_letters.c.patient, func.count()).where(
            dead_letters.c.patient.in_(patients)).group_by(dead_letters.c.patient)).all())
        gaps: dict[str, list] = {}
        for patient, after, before, missing, when in connection.execute(
                select(delivery_gaps.c.patient, delivery_gaps.c.after_seq, delivery_gaps.c.before_seq,
                       delivery_gaps.c.missing, delivery_gaps.c.detected_at)
                .where(delivery_gaps.c.patient.in_(patients)).order_by(delivery_gaps.c.row_no)):
            gaps.setdefault(patient, []).append((after, before, None if before - after > GAP_UNKNOWN else missing,
                                                 when))
    out = []
    for patient in patients:
        if counts.get(patient) or gaps.get(patient):
            newest = latest_dead_letters(engine, 1, patient=patient) if counts.get(patient) else []
            out.append(Undelivered(patient, counts.get(patient, 0), newest[0] if newest else None,
                                   tuple(gaps.get(patient, ()))))
    return out
