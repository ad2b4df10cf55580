"""The prescriptions the dashboard published, as the protocol's typed :class:`Prescription`."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, select

from hipsense.dashboard.db.tables import prescriptions
from hipsense.protocol import MessageKind, Prescription, build_topic, parse_message, prescription_from_message


def _typed(patient: str, payload: str) -> Prescription:
    # Parsed with the protocol's own reader: what we show is exactly what the Pi received.
    message = parse_message(build_topic(MessageKind.PRESCRIPTION, patient), payload.encode("utf-8"))
    return prescription_from_message(message)


def current_prescription(engine: Engine, patient: str) -> Prescription | None:
    """The newest version the broker confirmed, or None."""
    with engine.connect() as connection:
        payload = connection.scalar(
            select(prescriptions.c.payload).where(prescriptions.c.patient == patient, prescriptions.c.confirmed)
            .order_by(prescriptions.c.version.desc()).limit(1)
        )
    return None if payload is None else _typed(patient, payload)


def prescription_versions(engine: Engine, patient: str) -> dict[int, Prescription]:
    """Every confirmed version of ``patient``'s prescription, by version number."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(prescriptions.c.version, prescriptions.c.payload)
            .where(prescriptions.c.patient == patient, prescriptions.c.confirmed)
        ).all()
    return {row.version: _typed(patient, row.payload) for row in rows}


def prescription_in_force(versions: dict[int, Prescription], at: dt.datetime) -> Prescription | None:
    """The newest version updated at or before ``at`` (else the oldest one we have)."""
    if not versions:
        return None
    earlier = [p for p in versions.values() if p.updated_at <= at]
    if earlier:
        return max(earlier, key=lambda p: p.version)
    return min(versions.values(), key=lambda p: p.version)
