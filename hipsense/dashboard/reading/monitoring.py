"""Remote therapeutic monitoring: days with data in the current 30-day window.

CPT 98977 (RTM device supply, musculoskeletal) needs data on at least 16 days of a 30-day
period. We count a local day as "with data" when at least one result arrived for an event
time on that day (a rep, hold, set, session or pain check-in; live angles are not stored and
do not count). The window is the 30 days ending today; a practice whose billing periods start
elsewhere should read the day list, which is shown in full.

The page also names the Pis whose memory card is full (:func:`full_cards`): a status with
``unsaved_results`` (results it cannot save) or ``card_reserve`` (saving into the room it kept
back, or that room not in place: docs/mqtt.md).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from sqlalchemy import Engine, select

from hipsense.dashboard.clinic_time import ClinicClock
from hipsense.dashboard.db.tables import device_status, events

WINDOW_DAYS = 30
BILLING_CODE = "98977"
DAYS_REQUIRED = 16


@dataclasses.dataclass(frozen=True, slots=True)
class MonitoringWindow:
    patient: str
    first_day: dt.date
    last_day: dt.date
    days_with_data: tuple[dt.date, ...]

    @property
    def count(self) -> int:
        return len(self.days_with_data)

    @property
    def eligible(self) -> bool:
        return self.count >= DAYS_REQUIRED

    @property
    def days_still_needed(self) -> int:
        return max(0, DAYS_REQUIRED - self.count)


def monitoring_window(engine: Engine, patient: str, *, clock: ClinicClock) -> MonitoringWindow:
    last_day = clock.today()
    first_day = last_day - dt.timedelta(days=WINDOW_DAYS - 1)
    query = select(events.c.t_start).where(
        events.c.patient == patient,
        events.c.t_start >= clock.day_start(first_day),
        events.c.t_start < clock.day_start(last_day + dt.timedelta(days=1)),
    )
    with engine.connect() as connection:
        days = {clock.local_date(t) for t in connection.scalars(query)}
    return MonitoringWindow(patient, first_day, last_day, tuple(sorted(days)))


@dataclasses.dataclass(frozen=True, slots=True)
class FullCard:
    """A Pi whose newest status says its card is full (or failing)."""

    patient: str
    unsaved_results: int | None  # results waiting on the Pi outside its outbox (memory, RAM copy)
    card_reserve: str | None  # "in_use": saving into the room kept back; "missing": none kept
    reported_at: dt.datetime  # when the dashboard received that status


def full_cards(engine: Engine, patients: list[str]) -> list[FullCard]:
    """For each of ``patients`` whose Pi's newest status carries ``unsaved_results`` or
    ``card_reserve``."""
    if not patients:
        return []
    query = select(device_status.c.patient, device_status.c.payload, device_status.c.received_at).where(
        device_status.c.patient.in_(patients),
        device_status.c.payload.like('%"unsaved_results"%') | device_status.c.payload.like('%"card_reserve"%'))
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    out = []
    for patient, payload, received_at in rows:
        data = json.loads(payload)
        unsaved, reserve = data.get("unsaved_results"), data.get("card_reserve")
        unsaved = unsaved if isinstance(unsaved, int) else None
        reserve = reserve if reserve in ("in_use", "missing") else None
        if unsaved is not None or reserve is not None:
            out.append(FullCard(patient, unsaved, reserve, received_at))
    return sorted(out, key=lambda card: patients.index(card.patient))
