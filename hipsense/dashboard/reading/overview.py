"""The patients list: today's status, adherence this week, last pain, and alerts per patient.

Computed from the cheap kinds of event (session summaries and pain check-ins) plus "anything
today", so the morning page for thirty patients stays a handful of small queries each.

Today's status, first match wins:

* ``exercising``: live data of a session in progress (it carries a session id), or live data
  in the last two minutes or a result in the last five, unless the last thing that happened
  was a session ending (a finished patient whose sensor still sends rest data is done);
* ``skipped``: the patient said "skip today" on the Pi's page and did no session today;
* ``done``: a session ended today (its summary arrived) or a set was finished today;
* ``online``: the Pi is on, nothing done yet today;
* ``missed``: the Pi is off and nothing was done today.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Engine, func, select

from hipsense.dashboard.clinic_time import ClinicClock
from hipsense.dashboard.db.tables import device_status, events
from hipsense.dashboard.reading.events import StoredEvent, load_events
from hipsense.protocol import EventKind, Flag

LIVE_RECENT_S = 120
RESULT_RECENT = dt.timedelta(minutes=5)


@dataclasses.dataclass(frozen=True)
class AlertRules:
    """When a patient gets an alert (defaults are a starting point; see docs/dashboard.md)."""

    no_session_days: int = 3
    pain_rise_points: int = 2  # latest pain this much above the mean of the previous week
    rom_drop_fraction: float = 0.15  # mean ROM this week this much below last week's


@dataclasses.dataclass(frozen=True, slots=True)
class PatientOverview:
    patient: str
    label: str | None
    status: str  # exercising, skipped, done, online, missed
    online: bool
    adherence_week: float | None
    last_pain: int | None
    last_pain_at: dt.datetime | None
    last_session_at: dt.datetime | None
    alerts: tuple[str, ...]


def _last_result_time(engine: Engine, patient: str, skipped_ids: list[str]) -> dt.datetime | None:
    """When the patient last exercised: the newest result but pain check-ins and the summaries
    of skipped days (``skipped_ids``): saying "skip today" is not exercising."""
    with engine.connect() as connection:
        return connection.scalar(select(func.max(events.c.t_end)).where(
            events.c.patient == patient, events.c.kind != EventKind.PAIN.value, events.c.message_id.not_in(skipped_ids)))


def _is_online(engine: Engine, patient: str) -> bool:
    with engine.connect() as connection:
        return bool(connection.scalar(select(device_status.c.online).where(device_status.c.patient == patient)))


def weekly_adherence(summaries: list[StoredEvent], clock: ClinicClock, week_start: dt.date, days: int) -> float | None:
    """Mean over the week's days so far of each day's best session adherence; a day without a
    session counts 0. None when no session of the week had a prescription to measure against."""
    best: dict[dt.date, float] = {}
    measured = False
    for summary in summaries:
        day = clock.local_date(summary.t_start)
        if not week_start <= day < week_start + dt.timedelta(days=days):
            continue
        value = summary.data["adherence"]
        if value is not None:
            measured = True
            best[day] = max(best.get(day, 0.0), value)
    if not measured:
        return None
    return round(sum(best.values()) / days, 3)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _session_rom(summary: StoredEvent) -> list[float]:
    return [e["mean_rom_deg"] for e in summary.data["exercises"] if e["mean_rom_deg"] is not None]


def find_alerts(
    *, now: dt.datetime, last_result: dt.datetime | None, pains: list[StoredEvent],
    summaries: list[StoredEvent], rules: AlertRules,
) -> list[str]:
    """The alert texts for one patient (events in event order, the last 14 days)."""
    alerts = []
    if last_result is None:
        alerts.append("no session yet")
    elif now - last_result >= dt.timedelta(days=rules.no_session_days):
        alerts.append(f"no session for {(now - last_result).days} days")
    week_ago = now - dt.timedelta(days=7)
    if pains:
        latest = pains[-1]
        before = [e.data["score"] for e in pains[:-1] if e.t_start >= latest.t_start - dt.timedelta(days=7)]
        baseline = _mean(before)
        if baseline is not None and latest.data["score"] - baseline >= rules.pain_rise_points:
            alerts.append(f"pain rising ({baseline:.1f} → {latest.data['score']})")
    this_week = _mean([r for s in summaries if s.t_start >= week_ago for r in _session_rom(s)])
    last_week = _mean([r for s in summaries if s.t_start < week_ago for r in _session_rom(s)])
    if this_week is not None and last_week and this_week < last_week * (1 - rules.rom_drop_fraction):
        alerts.append(f"range of motion falling ({last_week:.0f}° → {this_week:.0f}°)")
    return alerts


def patient_overview(
    engine: Engine,
    patient: str,
    label: str | None,
    *,
    clock: ClinicClock,
    last_live: Callable[[str, float], Mapping[str, Any] | None],
    rules: AlertRules = AlertRules(),
) -> PatientOverview:
    now = clock.now()
    today = clock.today()
    today_start = clock.day_start(today)
    recent = load_events(engine, patient, start=now - dt.timedelta(days=14), kinds=(EventKind.SESSION, EventKind.PAIN))
    summaries = [e for e in recent if e.kind == EventKind.SESSION]
    pains = [e for e in recent if e.kind == EventKind.PAIN]
    skipped_ids = [s.message_id for s in summaries if Flag.SKIPPED in s.data["flags"]]
    last_result = _last_result_time(engine, patient, skipped_ids)
    online = _is_online(engine, patient)
    todays = [s for s in summaries if s.t_start >= today_start]
    worked = [s for s in todays if Flag.SKIPPED not in s.data["flags"]]
    done_today = bool(worked) or bool(load_events(engine, patient, start=today_start, kinds=(EventKind.SET,)))
    live = last_live(patient, LIVE_RECENT_S)
    # Summaries arrive last and end with the session's last result: nothing happened since.
    session_over = bool(summaries) and (last_result is None or max(s.t_end for s in summaries) >= last_result)
    recently_active = live is not None or (last_result is not None and now - last_result <= RESULT_RECENT)
    if (live is not None and live.get("session_id")) or (recently_active and not session_over):
        status = "exercising"
    elif todays and not done_today:
        status = "skipped"
    elif done_today:
        status = "done"
    elif online:
        status = "online"
    else:
        status = "missed"
    week_start = clock.week_start(today)
    # Today counts once it has a session: at 8 am nobody has missed today yet.
    days = (today - week_start).days + (1 if any(s.t_start >= today_start for s in summaries) else 0)
    adherence = weekly_adherence(summaries, clock, week_start, days) if days else None
    return PatientOverview(
        patient=patient, label=label, status=status, online=online, adherence_week=adherence,
        last_pain=pains[-1].data["score"] if pains else None,
        last_pain_at=pains[-1].t_start if pains else None,
        last_session_at=summaries[-1].t_start if summaries else None,
        alerts=tuple(find_alerts(now=now, last_result=last_result, pains=pains, summaries=summaries, rules=rules)),
    )


def device_details(engine: Engine, patient: str) -> dict[str, Any] | None:
    """The newest status payload of ``patient``'s Pi (sensors, battery), if any."""
    with engine.connect() as connection:
        payload = connection.scalar(select(device_status.c.payload).where(device_status.c.patient == patient))
    return None if payload is None else json.loads(payload)
