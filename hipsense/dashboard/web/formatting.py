"""How values read on the pages: local times, percentages, one-line event descriptions.

Used by the Jinja templates (as filters) and by the SSE stream, so a result looks the same
whether it was on the page at load time or arrived live.
"""

from __future__ import annotations

import datetime as dt

from hipsense.dashboard.clinic_time import ClinicClock
from hipsense.dashboard.reading.events import StoredEvent
from hipsense.protocol import EventKind, Flag
from hipsense.protocol.skipped_day import skip_reason


def local_time(instant: dt.datetime | None, clock: ClinicClock, fmt: str = "%H:%M:%S") -> str:
    return "–" if instant is None else clock.to_local(instant).strftime(fmt)


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def number(value: float | None, unit: str = "", digits: int = 0) -> str:
    # optional payload fields may be absent (a Jinja Undefined), not just None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "–"
    return f"{value:.{digits}f}{unit}"


def exercise_name(exercise_id: str | None, catalogue) -> str:
    if exercise_id is None:
        return "–"
    spec = catalogue.get(exercise_id) if hasattr(catalogue, "get") else None
    return getattr(spec, "name", None) or exercise_id.replace("_", " ")


def describe_event(event: StoredEvent, catalogue) -> str:
    """One line, e.g. ``Clam Shells (left) set 1 rep 3: ROM 38°, hold 2.1 s [short_hold]``."""
    data = event.data
    what = exercise_name(event.exercise, catalogue)
    side = f" ({event.side})" if event.side else ""
    if event.kind == EventKind.REP:
        text = f"{what}{side} set {data['set_index']} rep {data['rep_index']}: ROM {data['rom_deg']:.0f}°"
        if data["hold_s"]:
            text += f", hold {data['hold_s']:.1f} s"
    elif event.kind == EventKind.HOLD:
        target = f" of {data['target_hold_s']:g} s" if data["target_hold_s"] is not None else ""
        text = f"{what}{side} hold {data['hold_index']}: {data['hold_s']:.1f} s{target}"
    elif event.kind == EventKind.SET:
        target = f"/{data['reps_target']}" if data["reps_target"] is not None else ""
        text = f"{what}{side} set {data['set_index']} done: {data['reps']}{target} reps"
        if UNCERTAIN_COUNT in (data.get("flags") or []):
            text += f" ({flag_text(UNCERTAIN_COUNT)})"
    elif event.kind == EventKind.SESSION and skip_reason(data["flags"]) is not None:
        return f"skipped today: {skip_reason(data['flags'])}"
    elif event.kind == EventKind.SESSION:
        text = f"session finished: adherence {percent(data['adherence'])}"
    else:
        text = f"pain {data['moment']}: {data['score']}/10"
    flags = data.get("flags") or []
    if Flag.CLOCK_UNSYNCED in flags:
        text += f" ({flag_text(Flag.CLOCK_UNSYNCED)})"
    return text + (f" [{', '.join(flags)}]" if flags else "")


#: the set and session flag the Pi adds when the thigh did not show the reps clearly
UNCERTAIN_COUNT = Flag.UNCERTAIN_COUNT
_FLAG_TEXT = {
    Flag.UNCERTAIN_COUNT: "count not sure: the thigh sensor did not show the reps clearly",
    Flag.INTERRUPTED: "interrupted",
    Flag.NOT_PRESCRIBED: "not prescribed",
    Flag.WRONG_SIDE: "wrong side",
    Flag.SENSOR_GAP: "sensor gap",
    Flag.CLOCK_UNSYNCED: "date uncertain: the Pi's clock was not set",
}


def flag_text(flag: str) -> str:
    """A flag in words for the therapist (unknown flags as they are: readers must tolerate them)."""
    return _FLAG_TEXT.get(flag, flag.replace("_", " "))


def sortable_time(instant: dt.datetime) -> str:
    """Fixed-width UTC text, so the page's script can order results by comparing strings."""
    return instant.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")
