"""Session history: per exercise and side, what was done against what was prescribed.

A session is every result sharing a ``session_id``. When its end-of-session summary has
arrived it is the authority (the Pi computed it with the prescription it had); until then,
or if it never comes (a power cut mid-session), the figures are added up from the rep, hold
and set events and compared with the prescription in force at the session's start.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict

from sqlalchemy import Engine

from hipsense.dashboard.reading.events import StoredEvent, load_events
from hipsense.dashboard.reading.prescriptions import prescription_in_force, prescription_versions
from hipsense.protocol import EventKind, Prescription


@dataclasses.dataclass(frozen=True, slots=True)
class ExerciseResult:
    exercise: str
    side: str
    sets: int
    sets_target: int | None
    reps: int
    reps_target: int | None
    holds: int
    hold_s_total: float
    max_rom_deg: float | None
    mean_rom_deg: float | None


@dataclasses.dataclass(frozen=True, slots=True)
class SessionRecord:
    session_id: str
    t_start: dt.datetime
    t_end: dt.datetime
    exercises: tuple[ExerciseResult, ...]
    adherence: float | None
    complete: bool  # the Pi's end-of-session summary has arrived
    pain_scores: tuple[int, ...]
    flags: tuple[str, ...]


def _targets(prescription: Prescription | None, exercise: str, side: str) -> tuple[int | None, int | None]:
    if prescription is None:
        return None, None
    for item in prescription.exercises:
        if item.exercise == exercise and side in item.sides:
            reps = None if item.reps is None else item.reps * item.sets
            return item.sets, reps
    return None, None


def _from_summary(summary: StoredEvent, counted: dict[tuple[str, str], ExerciseResult]) -> list[ExerciseResult]:
    results = []
    for entry in summary.data["exercises"]:
        key = (entry["exercise"], entry["side"])
        holds = counted[key].holds if key in counted else 0
        results.append(ExerciseResult(
            exercise=entry["exercise"], side=entry["side"], sets=entry["sets"], sets_target=entry["sets_target"],
            reps=entry["reps"], reps_target=entry["reps_target"], holds=holds, hold_s_total=entry["hold_s_total"],
            max_rom_deg=entry["max_rom_deg"], mean_rom_deg=entry["mean_rom_deg"],
        ))
    return results


def _count(events: list[StoredEvent], prescription: Prescription | None) -> dict[tuple[str, str], ExerciseResult]:
    roms: dict[tuple[str, str], list[float]] = defaultdict(list)
    holds: dict[tuple[str, str], list[float]] = defaultdict(list)
    set_indices: dict[tuple[str, str], set[int]] = defaultdict(set)
    order: list[tuple[str, str]] = []
    for event in events:
        if event.kind not in (EventKind.REP, EventKind.HOLD, EventKind.SET):
            continue
        key = (event.exercise, event.side)
        if key not in set_indices:
            order.append(key)
        set_indices[key].add(event.data["set_index"])
        if event.kind == EventKind.REP:
            roms[key].append(event.data["rom_deg"])
            if event.data["hold_s"] > 0:
                holds[key].append(event.data["hold_s"])
        elif event.kind == EventKind.HOLD:
            holds[key].append(event.data["hold_s"])
    results = {}
    for key in order:
        sets_target, reps_target = _targets(prescription, *key)
        rom = roms[key]
        results[key] = ExerciseResult(
            exercise=key[0], side=key[1], sets=len(set_indices[key]), sets_target=sets_target,
            reps=len(rom), reps_target=reps_target, holds=len(holds[key]), hold_s_total=round(sum(holds[key]), 1),
            max_rom_deg=max(rom) if rom else None, mean_rom_deg=round(sum(rom) / len(rom), 1) if rom else None,
        )
    return results


def _adherence(results: list[ExerciseResult]) -> float | None:
    targets = [(min(r.reps, r.reps_target), r.reps_target) for r in results if r.reps_target]
    if not targets:
        return None
    return round(sum(done for done, _ in targets) / sum(target for _, target in targets), 4)


def build_sessions(events: list[StoredEvent], versions: dict[int, Prescription]) -> list[SessionRecord]:
    """Group ``events`` (any order) into sessions, newest first."""
    by_session: dict[str, list[StoredEvent]] = defaultdict(list)
    for event in events:
        if event.session_id is not None:
            by_session[event.session_id].append(event)
    sessions = []
    for session_id, items in by_session.items():
        items.sort(key=lambda e: (e.t_start, e.seq))
        t_start = min(e.t_start for e in items)
        t_end = max(e.t_end for e in items)
        summary = next((e for e in items if e.kind == EventKind.SESSION), None)
        counted = _count(items, prescription_in_force(versions, t_start))
        if summary is not None:
            exercises = _from_summary(summary, counted)
            adherence = summary.data["adherence"]
            flags = tuple(summary.data["flags"])
        else:
            exercises = list(counted.values())
            adherence = _adherence(exercises)
            flags = ()
        sessions.append(SessionRecord(
            session_id=session_id, t_start=t_start, t_end=t_end, exercises=tuple(exercises),
            adherence=adherence, complete=summary is not None,
            pain_scores=tuple(e.data["score"] for e in items if e.kind == EventKind.PAIN), flags=flags,
        ))
    sessions.sort(key=lambda s: s.t_start, reverse=True)
    return sessions


def session_history(
    engine: Engine, patient: str, *, start: dt.datetime, end: dt.datetime | None = None
) -> list[SessionRecord]:
    """Sessions of ``patient`` that started in ``[start, end)``, newest first."""
    events = load_events(engine, patient, start=start, end=end)
    return build_sessions(events, prescription_versions(engine, patient))
