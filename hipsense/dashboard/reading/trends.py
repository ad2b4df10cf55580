"""Weekly series for the charts: range of motion, adherence and pain over the last weeks."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import Engine

from hipsense.dashboard.clinic_time import ClinicClock
from hipsense.dashboard.reading.events import load_events
from hipsense.dashboard.reading.overview import weekly_adherence
from hipsense.protocol import EventKind


@dataclasses.dataclass(frozen=True, slots=True)
class WeeklyPoint:
    week_start: dt.date
    mean_rom_deg: float | None
    adherence: float | None
    mean_pain: float | None


def weekly_trends(engine: Engine, patient: str, *, clock: ClinicClock, weeks: int = 12) -> list[WeeklyPoint]:
    """One point per week (Monday first), oldest first, ending with the current week."""
    today = clock.today()
    first_week = clock.week_start(today) - dt.timedelta(weeks=weeks - 1)
    stored = load_events(engine, patient, start=clock.day_start(first_week), kinds=(EventKind.SESSION, EventKind.REP, EventKind.PAIN))
    points = []
    for index in range(weeks):
        week = first_week + dt.timedelta(weeks=index)
        in_week = [e for e in stored if week <= clock.local_date(e.t_start) < week + dt.timedelta(days=7)]
        roms = [e.data["rom_deg"] for e in in_week if e.kind == EventKind.REP]
        pains = [e.data["score"] for e in in_week if e.kind == EventKind.PAIN]
        days = min(7, (today - week).days + 1)
        points.append(WeeklyPoint(
            week_start=week,
            mean_rom_deg=round(sum(roms) / len(roms), 1) if roms else None,
            adherence=weekly_adherence([e for e in in_week if e.kind == EventKind.SESSION], clock, week, days),
            mean_pain=round(sum(pains) / len(pains), 1) if pains else None,
        ))
    return points
