"""FHIR R4 export: a ``collection`` Bundle of Observations, one per result event.

Mapping (documented in docs/dashboard.md):

* subject: ``Patient/<pseudonym>``, with the pseudonym as identifier; the clinic's record
  system maps it to the person, the export never contains a name;
* category ``activity`` (rep, hold, set, session) or ``survey`` (pain), from the standard
  observation-category code system;
* code: LOINC 72514-3 ("Pain severity 0-10 verbal numeric rating") for pain; for exercise
  results, hipsense's own code system (there is no LOINC code for "one clam-shell rep"), with
  the exercise id in the text;
* value and components: UCUM units, degrees ``deg``, seconds ``s``, counts ``{count}``,
  adherence ``%``;
* effective[x]: ``effectivePeriod`` (start/end) or ``effectiveDateTime`` (pain);
* identifier: the message id, so a re-import can de-duplicate as the dashboard does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from hipsense.dashboard.reading.events import StoredEvent
from hipsense.protocol import EventKind

HIPSENSE_CODES = "urn:hipsense:fhir:codes"
MESSAGE_IDS = "urn:hipsense:message-id"
PATIENT_IDS = "urn:hipsense:patient"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"

_UNITS = {"deg": "deg", "s": "s", "count": "{count}", "%": "%", "deg/s": "deg/s"}


def _iso(instant: dt.datetime) -> str:
    return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": _UNITS[unit]}


def _component(code: str, display: str, value: float | None, unit: str) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"code": {"coding": [{"system": HIPSENSE_CODES, "code": code, "display": display}], "text": display},
            "valueQuantity": _quantity(value, unit)}


def _category(code: str, display: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": OBSERVATION_CATEGORY, "code": code, "display": display}]}]


def _hipsense_code(code: str, display: str, text: str) -> dict[str, Any]:
    return {"coding": [{"system": HIPSENSE_CODES, "code": code, "display": display}], "text": text}


def _exercise_text(event: StoredEvent) -> str:
    side = f", {event.side}" if event.side else ""
    return f"{event.exercise}{side}"


def observation(event: StoredEvent) -> dict[str, Any]:
    """One FHIR R4 Observation for one stored result."""
    data = event.data
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": event.message_id.lower(),
        "identifier": [{"system": MESSAGE_IDS, "value": event.message_id}],
        "status": "final",
        "subject": {"reference": f"Patient/{event.patient}",
                    "identifier": {"system": PATIENT_IDS, "value": event.patient}},
    }
    components: list[dict[str, Any] | None] = []
    if event.kind == EventKind.PAIN:
        resource["category"] = _category("survey", "Survey")
        resource["code"] = {"coding": [{"system": LOINC, "code": "72514-3",
                                        "display": "Pain severity - 0-10 verbal numeric rating [Score] - Reported"}],
                            "text": f"Pain {data['moment']} ({data['scope']})"}
        resource["effectiveDateTime"] = _iso(event.t_start)
        resource["valueInteger"] = data["score"]
    else:
        resource["category"] = _category("activity", "Activity")
        resource["effectivePeriod"] = {"start": _iso(event.t_start), "end": _iso(event.t_end)}
        if event.kind == EventKind.REP:
            resource["code"] = _hipsense_code("exercise-rep", "Exercise repetition", _exercise_text(event))
            resource["valueQuantity"] = _quantity(data["rom_deg"], "deg")
            components = [_component("hold-duration", "Hold duration", data["hold_s"], "s"),
                          _component("peak-angular-speed", "Peak thigh angular speed", data["peak_speed_dps"], "deg/s")]
        elif event.kind == EventKind.HOLD:
            resource["code"] = _hipsense_code("exercise-hold", "Exercise hold", _exercise_text(event))
            resource["valueQuantity"] = _quantity(data["hold_s"], "s")
            components = [_component("target-hold-duration", "Target hold duration", data["target_hold_s"], "s"),
                          _component("mean-thigh-angle", "Mean thigh angle", data["mean_angle_deg"], "deg")]
        elif event.kind == EventKind.SET:
            resource["code"] = _hipsense_code("exercise-set", "Exercise set", _exercise_text(event))
            resource["valueQuantity"] = _quantity(data["reps"], "count")
            components = [_component("reps-target", "Prescribed repetitions", data["reps_target"], "count"),
                          _component("hold-duration-total", "Total hold duration", data["hold_s_total"], "s")]
        else:  # session
            resource["code"] = _hipsense_code("exercise-session", "Home exercise session", "Home exercise session")
            adherence = data["adherence"]
            if adherence is not None:
                resource["valueQuantity"] = _quantity(round(adherence * 100, 1), "%")
            else:
                resource["dataAbsentReason"] = {"text": "no prescription to measure against"}
            components = [_component("session-duration", "Session duration", data["duration_s"], "s")]
            components += [_component(f"mean-rom-{e['exercise']}-{e['side']}", f"Mean ROM {e['exercise']} {e['side']}",
                                      e["mean_rom_deg"], "deg") for e in data["exercises"]]
    components = [c for c in components if c is not None]
    if components:
        resource["component"] = components
    flags = data.get("flags") or []
    if flags:
        resource["note"] = [{"text": "flags: " + ", ".join(flags)}]
    return resource


def events_to_bundle(stored: Iterable[StoredEvent], *, generated_at: dt.datetime) -> dict[str, Any]:
    """A FHIR R4 Bundle (type ``collection``) of the events' Observations, in event order."""
    entries = [{"fullUrl": f"urn:uuid:{_uuid_from_ulid(e.message_id)}", "resource": observation(e)} for e in stored]
    return {"resourceType": "Bundle", "type": "collection", "timestamp": _iso(generated_at), "entry": entries}


def _uuid_from_ulid(ulid: str) -> str:
    """A stable UUID-shaped name for a ULID (both are 128 bits), for ``fullUrl``."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    value = 0
    for char in ulid:
        value = value * 32 + alphabet.index(char)
    text = f"{value & ((1 << 128) - 1):032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
