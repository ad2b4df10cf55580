"""Payload builders for what the Pi publishes: status, live angle, and the result events.

Each returns a validated :class:`Envelope`. Result events take ``seq`` from the caller: the
outbox hands out per-patient sequence numbers in the same transaction that stores the message
(:meth:`hipsense.publish.outbox.Outbox.put_sequenced`), so numbers have no gaps even across a
crash. ``message_id`` defaults to a new ULID; pass one only to rebuild a known message.

Angles are in degrees, durations in seconds, instants are aware datetimes or epoch seconds
(sent as ISO-8601 UTC, see :mod:`hipsense.protocol.timestamps`). Indices are 1-based.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hipsense.protocol.delivery import Envelope
from hipsense.protocol.envelopes import seal
from hipsense.protocol.ids import new_message_id
from hipsense.protocol.timestamps import Instant, format_timestamp, to_utc_datetime
from hipsense.protocol.topics import MessageKind
from hipsense.protocol.validation import SCHEMA_VERSION


def _deg(value: float) -> float:
    return round(float(value), 2)


def _sec(value: float) -> float:
    return round(float(value), 3)


def _event_head(patient: str, seq: int, message_id: str | None) -> dict[str, Any]:
    return {
        "id": message_id or new_message_id(),
        "seq": seq,
        "schema_version": SCHEMA_VERSION,
        "patient": patient,
    }


def _span_s(t_start: Instant, t_end: Instant) -> float:
    return (to_utc_datetime(t_end) - to_utc_datetime(t_start)).total_seconds()


def build_status(
    patient: str,
    *,
    online: bool,
    t: Instant | None = None,
    software_version: str | None = None,
    sensors: Iterable[Mapping[str, Any]] = (),
) -> Envelope:
    """Device status (retained). ``sensors``: ``{"side", "connected"[, "battery_pct"]}`` each."""
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "patient": patient, "state": "online" if online else "offline"}
    if t is not None:
        doc["t"] = format_timestamp(t)
    if software_version is not None:
        doc["software_version"] = software_version
    sensor_list = [dict(sensor) for sensor in sensors]
    if sensor_list:
        doc["sensors"] = sensor_list
    return seal(MessageKind.STATUS, patient, doc)


def build_live(
    patient: str,
    *,
    t: Instant,
    side: str,
    thigh_angle_deg: float,
    exercise: str | None = None,
    session_id: str | None = None,
    abduction_deg: float | None = None,
    rep_count: int | None = None,
    hold_remaining_s: float | None = None,
) -> Envelope:
    """Live thigh angle and current exercise (QoS 0, expiring; rate-limit before calling)."""
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "patient": patient,
        "t": format_timestamp(t),
        "session_id": session_id,
        "exercise": exercise,
        "side": side,
        "thigh_angle_deg": _deg(thigh_angle_deg),
    }
    if abduction_deg is not None:
        doc["abduction_deg"] = _deg(abduction_deg)
    if rep_count is not None:
        doc["rep_count"] = rep_count
    if hold_remaining_s is not None:
        doc["hold_remaining_s"] = _sec(hold_remaining_s)
    return seal(MessageKind.LIVE, patient, doc)


def build_rep_event(
    patient: str,
    *,
    seq: int,
    session_id: str,
    exercise: str,
    side: str,
    set_index: int,
    rep_index: int,
    t_start: Instant,
    t_end: Instant,
    rom_deg: float,
    hold_s: float,
    peak_speed_dps: float,
    duration_s: float | None = None,
    flags: Iterable[str] = (),
    message_id: str | None = None,
) -> Envelope:
    """One repetition. ``duration_s`` defaults to ``t_end - t_start``."""
    doc = _event_head(patient, seq, message_id) | {
        "session_id": session_id,
        "exercise": exercise,
        "side": side,
        "set_index": set_index,
        "rep_index": rep_index,
        "t_start": format_timestamp(t_start),
        "t_end": format_timestamp(t_end),
        "rom_deg": _deg(rom_deg),
        "hold_s": _sec(hold_s),
        "peak_speed_dps": _deg(peak_speed_dps),
        "duration_s": _sec(_span_s(t_start, t_end) if duration_s is None else duration_s),
        "flags": list(flags),
    }
    return seal(MessageKind.REP, patient, doc)


def build_hold_event(
    patient: str,
    *,
    seq: int,
    session_id: str,
    exercise: str,
    side: str,
    set_index: int,
    hold_index: int,
    t_start: Instant,
    t_end: Instant,
    hold_s: float,
    target_hold_s: float | None,
    mean_angle_deg: float,
    flags: Iterable[str] = (),
    message_id: str | None = None,
) -> Envelope:
    """One timed hold (a stretch, or the hold phase of an exercise)."""
    doc = _event_head(patient, seq, message_id) | {
        "session_id": session_id,
        "exercise": exercise,
        "side": side,
        "set_index": set_index,
        "hold_index": hold_index,
        "t_start": format_timestamp(t_start),
        "t_end": format_timestamp(t_end),
        "hold_s": _sec(hold_s),
        "target_hold_s": None if target_hold_s is None else _sec(target_hold_s),
        "mean_angle_deg": _deg(mean_angle_deg),
        "flags": list(flags),
    }
    return seal(MessageKind.HOLD, patient, doc)


def build_set_event(
    patient: str,
    *,
    seq: int,
    session_id: str,
    exercise: str,
    side: str,
    set_index: int,
    t_start: Instant,
    t_end: Instant,
    reps: int,
    reps_target: int | None,
    holds: int,
    hold_s_total: float,
    target_hold_s: float | None,
    prescribed: bool,
    flags: Iterable[str] = (),
    message_id: str | None = None,
) -> Envelope:
    """A finished set; ``prescribed=False`` when the patient did something not asked for."""
    doc = _event_head(patient, seq, message_id) | {
        "session_id": session_id,
        "exercise": exercise,
        "side": side,
        "set_index": set_index,
        "t_start": format_timestamp(t_start),
        "t_end": format_timestamp(t_end),
        "reps": reps,
        "reps_target": reps_target,
        "holds": holds,
        "hold_s_total": _sec(hold_s_total),
        "target_hold_s": None if target_hold_s is None else _sec(target_hold_s),
        "prescribed": prescribed,
        "flags": list(flags),
    }
    return seal(MessageKind.SET, patient, doc)


@dataclasses.dataclass(frozen=True, slots=True)
class ExerciseSummary:
    """One exercise and side within a session summary. Targets are None without a prescription."""

    exercise: str
    side: str
    sets: int
    sets_target: int | None
    reps: int
    reps_target: int | None
    hold_s_total: float
    max_rom_deg: float | None
    mean_rom_deg: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "exercise": self.exercise,
            "side": self.side,
            "sets": self.sets,
            "sets_target": self.sets_target,
            "reps": self.reps,
            "reps_target": self.reps_target,
            "hold_s_total": _sec(self.hold_s_total),
            "max_rom_deg": None if self.max_rom_deg is None else _deg(self.max_rom_deg),
            "mean_rom_deg": None if self.mean_rom_deg is None else _deg(self.mean_rom_deg),
        }


def build_session_summary(
    patient: str,
    *,
    seq: int,
    session_id: str,
    t_start: Instant,
    t_end: Instant,
    exercises: Sequence[ExerciseSummary],
    prescription_version: int | None,
    adherence: float | None,
    duration_s: float | None = None,
    flags: Iterable[str] = (),
    message_id: str | None = None,
) -> Envelope:
    """End-of-session summary; ``adherence`` is 0..1 of what was prescribed, None without one."""
    doc = _event_head(patient, seq, message_id) | {
        "session_id": session_id,
        "t_start": format_timestamp(t_start),
        "t_end": format_timestamp(t_end),
        "duration_s": _sec(_span_s(t_start, t_end) if duration_s is None else duration_s),
        "prescription_version": prescription_version,
        "exercises": [summary.to_json() for summary in exercises],
        "adherence": None if adherence is None else round(float(adherence), 4),
        "flags": list(flags),
    }
    return seal(MessageKind.SESSION, patient, doc)


def build_pain_checkin(
    patient: str,
    *,
    seq: int,
    score: int,
    moment: str,
    t: Instant,
    session_id: str | None = None,
    exercise: str | None = None,
    message_id: str | None = None,
) -> Envelope:
    """Pain 0-10 ``before``/``during``/``after``; about ``exercise``, or the session if None."""
    doc = _event_head(patient, seq, message_id) | {
        "session_id": session_id,
        "scope": "session" if exercise is None else "exercise",
        "exercise": exercise,
        "moment": moment,
        "score": score,
        "t": format_timestamp(t),
    }
    return seal(MessageKind.PAIN, patient, doc)
