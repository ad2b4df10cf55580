"""Payload builders for what the Pi publishes: status, live angle, and the result events.

Each returns an :class:`Envelope` whose payload matches its schema file by construction: every
field is made by a small typed helper below that converts the value to what the schema asks
(a rounded float, an int, a string of the field's pattern) and refuses, with a ProtocolError
naming the field, anything the schema would refuse (out of range, NaN, a bad id). So nothing is
validated against the JSON Schema at runtime (that cost 40 % of the service's CPU, issue 14),
and a bug still surfaces at the producer, not as a message the dashboard drops. The limits
here mirror the files in ``schemas/``; a property test (tests/protocol/test_builders.py) checks
that every output of every builder validates against the files with jsonschema, and that
every value the files allow is accepted.

Result events take ``seq`` from the caller: the outbox hands out per-patient sequence numbers
in the same transaction that stores the message
(:meth:`hipsense.publish.outbox.Outbox.put_sequenced`), so numbers have no gaps even across a
crash. ``message_id`` defaults to a new ULID; pass one only to rebuild a known message.

Angles are in degrees, durations in seconds, instants are aware datetimes or epoch seconds
(sent as ISO-8601 UTC, see :mod:`hipsense.protocol.timestamps`). Indices are 1-based.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hipsense.protocol.delivery import Envelope
from hipsense.protocol.envelopes import seal
from hipsense.protocol.errors import ProtocolError
from hipsense.protocol.ids import ULID_PATTERN, new_message_id
from hipsense.protocol.timestamps import Instant, format_timestamp, to_utc_datetime
from hipsense.protocol.topics import MessageKind
from hipsense.protocol.validation import SCHEMA_VERSION
from hipsense.protocol.vocabulary import Side

# The limits of common.json and the kinds' files (the tests hold the two together).
MAX_SEQ = 9007199254740991
MAX_UNSAVED = 1_000_000  # status.json's bound on unsaved_results
CARD_RESERVE_STATES = ("in_use", "missing")  # status.json's card_reserve
MAX_INDEX = 10000
MAX_COUNT = 100000
MAX_SECONDS = 86400.0
MAX_FLAGS = 16
SIDES = tuple(Side)
SENSOR_SIDES = (Side.LEFT, Side.RIGHT)  # a sensor, and live data, are on one thigh
_EXERCISE = re.compile(r"[a-z][a-z0-9_]{1,63}")
_SESSION_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
_FLAG = re.compile(r"[a-z][a-z0-9_]{1,31}")


def _refuse(name: str, reason: str) -> ProtocolError:
    return ProtocolError(f"{name} {reason}", path=f"/{name}")


def _number(name: str, value: Any, lo: float, hi: float, digits: int) -> float:
    """``value`` rounded to ``digits`` decimals (as sent), within ``lo..hi``."""
    try:
        x = round(float(value), digits)
    except (TypeError, ValueError):
        raise _refuse(name, f"must be a number, not {value!r}") from None
    if not math.isfinite(x):
        raise _refuse(name, f"is NaN or infinite ({value!r}): not a measurement")
    if not lo <= x <= hi:
        raise _refuse(name, f"{x!r} is outside {lo:g}..{hi:g}")
    return x


def _deg(name: str, value: Any, lo: float = -360.0, hi: float = 360.0) -> float:
    return _number(name, value, lo, hi, 2)


def _sec(name: str, value: Any) -> float:
    return _number(name, value, 0.0, MAX_SECONDS, 3)


def _optional_sec(name: str, value: Any) -> float | None:
    return None if value is None else _sec(name, value)


def _integer(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise _refuse(name, f"must be an integer, not {value!r}")
    try:
        n = operator.index(value)  # int, numpy integers; not floats
    except TypeError:
        raise _refuse(name, f"must be an integer, not {value!r}") from None
    if not lo <= n <= hi:
        raise _refuse(name, f"{n} is outside {lo}..{hi}")
    return n


def _optional_integer(name: str, value: Any, lo: int, hi: int) -> int | None:
    return None if value is None else _integer(name, value, lo, hi)


def _text(name: str, value: Any, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _refuse(name, f"{value!r} is not {what}")
    return value


def _exercise(value: Any, name: str = "exercise") -> str:
    return _text(name, value, _EXERCISE, "a catalogue id (snake_case, 2-64 characters)")


def _optional_exercise(value: Any) -> str | None:
    return None if value is None else _exercise(value)


def _session_id(value: Any) -> str:
    return _text("session_id", value, _SESSION_ID, "a session id (1-64 of A-Z, a-z, 0-9, '_', '-')")


def _optional_session_id(value: Any) -> str | None:
    return None if value is None else _session_id(value)


def _choice(name: str, value: Any, options: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in options:
        raise _refuse(name, f"{value!r} is not one of {', '.join(options)}")
    return value


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _refuse(name, f"must be true or false, not {value!r}")
    return value


def _flags(flags: Iterable[str]) -> list[str]:
    """Quality flags: a set (repeats dropped, order kept), each snake_case."""
    out = list(dict.fromkeys(_text("flags", flag, _FLAG, "a flag (snake_case, 2-32 characters)") for flag in flags))
    if len(out) > MAX_FLAGS:
        raise _refuse("flags", f"has {len(out)} flags, more than {MAX_FLAGS}")
    return out


def _event_head(patient: str, seq: int, message_id: str | None) -> dict[str, Any]:
    return {
        "id": new_message_id() if message_id is None else _text("id", message_id, ULID_PATTERN, "a ULID"),
        "seq": _integer("seq", seq, 1, MAX_SEQ),
        "schema_version": SCHEMA_VERSION,
        "patient": patient,
    }


def _span(t_start: Instant, t_end: Instant) -> tuple[str, str, float]:
    """Both instants as sent, and the seconds between them (never negative)."""
    start, end = to_utc_datetime(t_start), to_utc_datetime(t_end)
    if end < start:
        raise ProtocolError("t_end is before t_start", path="/t_end")
    return format_timestamp(start), format_timestamp(end), (end - start).total_seconds()


def build_status(
    patient: str,
    *,
    online: bool,
    t: Instant | None = None,
    software_version: str | None = None,
    sensors: Iterable[Mapping[str, Any]] = (),
    outbox_first_seq: int | None = None,
    unsaved_results: int | None = None,
    card_reserve: str | None = None,
) -> Envelope:
    """Device status (retained). ``sensors``: ``{"side", "connected"[, "battery_pct"]}`` each;
    ``outbox_first_seq``: the lowest result seq still in the outbox; ``unsaved_results`` (only
    while the outbox cannot be written, e.g. a full card): how many results wait outside it;
    ``card_reserve`` (only while the card's reserve is not in place): ``"in_use"`` or
    ``"missing"`` (see status.json)."""
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "patient": patient,
                           "state": "online" if _boolean("online", online) else "offline"}
    if t is not None:
        doc["t"] = format_timestamp(t)
    if software_version is not None:
        if not isinstance(software_version, str) or len(software_version) > 32:
            raise _refuse("software_version", f"{software_version!r} is not a string of at most 32 characters")
        doc["software_version"] = software_version
    sensor_list = [_sensor(sensor) for sensor in sensors]
    if len(sensor_list) > 2:
        raise _refuse("sensors", f"lists {len(sensor_list)} sensors; a patient wears at most 2")
    if sensor_list:
        doc["sensors"] = sensor_list
    if outbox_first_seq is not None:
        doc["outbox_first_seq"] = _integer("outbox_first_seq", outbox_first_seq, 1, MAX_SEQ)
    if unsaved_results is not None:
        doc["unsaved_results"] = _integer("unsaved_results", unsaved_results, 0, MAX_UNSAVED)
    if card_reserve is not None:
        doc["card_reserve"] = _choice("card_reserve", card_reserve, CARD_RESERVE_STATES)
    return seal(MessageKind.STATUS, patient, doc)


def _sensor(sensor: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(sensor, Mapping):
        raise _refuse("sensors", f"entry {sensor!r} is not a mapping")
    unknown = set(sensor) - {"side", "connected", "battery_pct"}
    if unknown:
        raise _refuse("sensors", f"entry has unknown fields {sorted(unknown)}")
    entry: dict[str, Any] = {"side": _choice("sensors/side", sensor.get("side"), SENSOR_SIDES),
                             "connected": _boolean("sensors/connected", sensor.get("connected"))}
    if sensor.get("battery_pct") is not None:
        entry["battery_pct"] = _integer("sensors/battery_pct", sensor["battery_pct"], 0, 100)
    return entry


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
        "session_id": _optional_session_id(session_id),
        "exercise": _optional_exercise(exercise),
        "side": _choice("side", side, SENSOR_SIDES),
        "thigh_angle_deg": _deg("thigh_angle_deg", thigh_angle_deg, -180.0, 180.0),
    }
    if abduction_deg is not None:
        doc["abduction_deg"] = _deg("abduction_deg", abduction_deg, -90.0, 90.0)
    if rep_count is not None:
        doc["rep_count"] = _integer("rep_count", rep_count, 0, MAX_COUNT)
    if hold_remaining_s is not None:
        doc["hold_remaining_s"] = _sec("hold_remaining_s", hold_remaining_s)
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
    start, end, span_s = _span(t_start, t_end)
    doc = _event_head(patient, seq, message_id) | {
        "session_id": _session_id(session_id),
        "exercise": _exercise(exercise),
        "side": _choice("side", side, SIDES),
        "set_index": _integer("set_index", set_index, 1, MAX_INDEX),
        "rep_index": _integer("rep_index", rep_index, 1, MAX_INDEX),
        "t_start": start,
        "t_end": end,
        "rom_deg": _deg("rom_deg", rom_deg, 0.0, 360.0),
        "hold_s": _sec("hold_s", hold_s),
        "peak_speed_dps": _deg("peak_speed_dps", peak_speed_dps, 0.0, 5000.0),
        "duration_s": _sec("duration_s", span_s if duration_s is None else duration_s),
        "flags": _flags(flags),
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
    start, end, _ = _span(t_start, t_end)
    doc = _event_head(patient, seq, message_id) | {
        "session_id": _session_id(session_id),
        "exercise": _exercise(exercise),
        "side": _choice("side", side, SIDES),
        "set_index": _integer("set_index", set_index, 1, MAX_INDEX),
        "hold_index": _integer("hold_index", hold_index, 1, MAX_INDEX),
        "t_start": start,
        "t_end": end,
        "hold_s": _sec("hold_s", hold_s),
        "target_hold_s": _optional_sec("target_hold_s", target_hold_s),
        "mean_angle_deg": _deg("mean_angle_deg", mean_angle_deg),
        "flags": _flags(flags),
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
    start, end, _ = _span(t_start, t_end)
    doc = _event_head(patient, seq, message_id) | {
        "session_id": _session_id(session_id),
        "exercise": _exercise(exercise),
        "side": _choice("side", side, SIDES),
        "set_index": _integer("set_index", set_index, 1, MAX_INDEX),
        "t_start": start,
        "t_end": end,
        "reps": _integer("reps", reps, 0, MAX_COUNT),
        "reps_target": _optional_integer("reps_target", reps_target, 0, MAX_COUNT),
        "holds": _integer("holds", holds, 0, MAX_COUNT),
        "hold_s_total": _sec("hold_s_total", hold_s_total),
        "target_hold_s": _optional_sec("target_hold_s", target_hold_s),
        "prescribed": _boolean("prescribed", prescribed),
        "flags": _flags(flags),
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
            "exercise": _exercise(self.exercise, "exercises/exercise"),
            "side": _choice("exercises/side", self.side, SIDES),
            "sets": _integer("exercises/sets", self.sets, 0, MAX_COUNT),
            "sets_target": _optional_integer("exercises/sets_target", self.sets_target, 0, MAX_COUNT),
            "reps": _integer("exercises/reps", self.reps, 0, MAX_COUNT),
            "reps_target": _optional_integer("exercises/reps_target", self.reps_target, 0, MAX_COUNT),
            "hold_s_total": _sec("exercises/hold_s_total", self.hold_s_total),
            "max_rom_deg": None if self.max_rom_deg is None else _deg("exercises/max_rom_deg", self.max_rom_deg, 0.0, 360.0),
            "mean_rom_deg": None if self.mean_rom_deg is None else _deg("exercises/mean_rom_deg", self.mean_rom_deg, 0.0, 360.0),
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
    start, end, span_s = _span(t_start, t_end)
    if not all(isinstance(summary, ExerciseSummary) for summary in exercises):
        raise _refuse("exercises", "must be ExerciseSummary values")
    summaries = [summary.to_json() for summary in exercises]
    if len(summaries) > 64:
        raise _refuse("exercises", f"lists {len(summaries)} exercise/side lines, more than 64")
    doc = _event_head(patient, seq, message_id) | {
        "session_id": _session_id(session_id),
        "t_start": start,
        "t_end": end,
        "duration_s": _sec("duration_s", span_s if duration_s is None else duration_s),
        "prescription_version": _optional_integer("prescription_version", prescription_version, 1, MAX_SEQ),
        "exercises": summaries,
        "adherence": None if adherence is None else _number("adherence", adherence, 0.0, 1.0, 4),
        "flags": _flags(flags),
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
        "session_id": _optional_session_id(session_id),
        "scope": "session" if exercise is None else "exercise",
        "exercise": _optional_exercise(exercise),
        "moment": _choice("moment", moment, ("before", "during", "after")),
        "score": _integer("score", score, 0, 10),
        "t": format_timestamp(t),
    }
    return seal(MessageKind.PAIN, patient, doc)
