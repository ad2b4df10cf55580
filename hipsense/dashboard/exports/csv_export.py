"""CSV export: one row per result event, in event order, with the common fields as columns.

Adherence is in percent (``adherence_pct``, 0-100), as on the pages; the payload column keeps
the protocol's share (0-1).

Fields that only some kinds have are empty elsewhere; the full payload is the last column
(JSON), so nothing is lost for someone who needs more than the columns.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable

from hipsense.dashboard.reading.events import StoredEvent

COLUMNS = [
    "patient", "kind", "seq", "message_id", "session_id", "exercise", "side", "t_start", "t_end",
    "set_index", "rep_index", "hold_index", "rom_deg", "hold_s", "duration_s", "peak_speed_dps",
    "reps", "reps_target", "adherence_pct", "pain_score", "pain_moment", "flags", "payload",
]


def _iso(instant) -> str:
    return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _cell(value) -> str:
    text = "" if value is None else str(value)
    # A cell starting with = + - @ is run as a formula by spreadsheet programs.
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _percent(share: float | None) -> float | None:
    """Adherence as the pages show it (100 %, not 1.0); one decimal keeps what a share has."""
    return None if share is None else round(share * 100, 1)


def events_to_csv(stored: Iterable[StoredEvent]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for event in stored:
        data = event.data
        row = {
            "patient": event.patient, "kind": event.kind, "seq": event.seq, "message_id": event.message_id,
            "session_id": event.session_id, "exercise": event.exercise, "side": event.side,
            "t_start": _iso(event.t_start), "t_end": _iso(event.t_end),
            "set_index": data.get("set_index"), "rep_index": data.get("rep_index"),
            "hold_index": data.get("hold_index"), "rom_deg": data.get("rom_deg"), "hold_s": data.get("hold_s"),
            "duration_s": data.get("duration_s"), "peak_speed_dps": data.get("peak_speed_dps"),
            "reps": data.get("reps"), "reps_target": data.get("reps_target"), "adherence_pct": _percent(data.get("adherence")),
            "pain_score": data.get("score"), "pain_moment": data.get("moment"),
            "flags": ";".join(data.get("flags", [])),
            "payload": json.dumps(data, separators=(",", ":"), ensure_ascii=False),
        }
        writer.writerow([_cell(row[column]) for column in COLUMNS])
    return out.getvalue()
