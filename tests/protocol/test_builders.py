"""Every payload the code can produce validates against the committed schema files."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import referencing

from hipsense import protocol as p
from tests.protocol.samples import PATIENT, SESSION, at, every_kind

SCHEMA_DIR = Path(p.__file__).parent / "schemas"


def _schema_validator(kind: p.MessageKind) -> jsonschema.Draft202012Validator:
    # Deliberately independent of hipsense.protocol.validation: read the files as a
    # dashboard written in another language would.
    schemas = {path.name: json.loads(path.read_text()) for path in SCHEMA_DIR.glob("*.json")}
    registry = referencing.Registry().with_resources(
        (s["$id"], referencing.Resource.from_contents(s)) for s in schemas.values()
    )
    name = {"event/rep": "rep", "event/hold": "hold", "event/set": "set", "event/session": "session",
            "event/pain": "pain"}.get(kind.value, kind.value)
    return jsonschema.Draft202012Validator(schemas[f"{name}.json"], registry=registry)


def test_schema_files_are_valid_json_schemas():
    for path in SCHEMA_DIR.glob("*.json"):
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


@pytest.mark.parametrize("kind", list(p.MessageKind))
def test_builder_output_validates_against_schema_file(kind):
    envelope = every_kind()[kind]
    document = json.loads(envelope.payload)
    _schema_validator(kind).validate(document)
    assert envelope.kind is kind
    assert envelope.topic == f"hipsense/v1/{PATIENT}/{kind.value}"


@pytest.mark.parametrize("kind", list(p.MessageKind))
def test_builder_output_round_trips_through_parse_message(kind):
    envelope = every_kind()[kind]
    message = p.parse_message(envelope.topic, envelope.payload)
    assert message.kind is kind and message.patient == PATIENT
    assert message.data["schema_version"] == p.SCHEMA_VERSION
    if kind.is_event:
        assert message.message_id == envelope.message_id and len(message.message_id) == 26
        assert message.seq == envelope.seq


@pytest.mark.parametrize("kind", list(p.MessageKind))
def test_delivery_settings_follow_the_protocol(kind):
    envelope = every_kind()[kind]
    expected = {
        p.MessageKind.STATUS: (1, True, None),
        p.MessageKind.LIVE: (0, False, p.LIVE_EXPIRY_S),
        p.MessageKind.PRESCRIPTION: (1, True, None),
        p.MessageKind.STORED: (1, True, None),
    }.get(kind, (1, False, None))
    assert (envelope.qos, envelope.retain, envelope.expiry_s) == expected


def test_every_schema_file_is_used_by_a_kind():
    names = {path.stem for path in SCHEMA_DIR.glob("*.json")} - {"common"}
    assert names == {kind.value.removeprefix("event/") for kind in p.MessageKind}


def test_rep_event_has_the_fields_the_dashboard_needs():
    data = json.loads(every_kind()[p.MessageKind.REP].payload)
    assert set(data) == {
        "id", "seq", "schema_version", "patient", "session_id", "exercise", "side", "set_index",
        "rep_index", "t_start", "t_end", "rom_deg", "hold_s", "peak_speed_dps", "duration_s", "flags",
    }
    assert data["t_start"] == "2025-03-01T09:15:02.000Z"
    assert data["duration_s"] == 3.5


def test_message_ids_are_unique_and_time_ordered():
    ids = [p.new_message_id(now_ms=1_700_000_000_000 + i) for i in range(1000)]
    assert len(set(ids)) == 1000 and ids == sorted(ids)


def test_builder_refuses_invalid_values_before_anything_is_sent():
    with pytest.raises(p.ProtocolError, match="rom_deg"):
        p.build_rep_event(PATIENT, seq=1, session_id=SESSION, exercise="clam_shells", side="left",
                          set_index=1, rep_index=1, t_start=at(0), t_end=at(1), rom_deg=-5,
                          hold_s=0, peak_speed_dps=1)
    with pytest.raises(p.ProtocolError, match="NaN|encode"):
        p.build_live(PATIENT, t=at(0), side="left", thigh_angle_deg=float("nan"))
    with pytest.raises(p.ProtocolError, match="naive datetime"):
        p.build_status(PATIENT, online=True, t=at(0).replace(tzinfo=None))
    with pytest.raises(p.ProtocolError, match="pseudonym|no digit"):
        p.build_status("maria", online=True)


def test_pain_scope_follows_exercise():
    session = json.loads(every_kind()[p.MessageKind.PAIN].payload)
    assert session["scope"] == "session" and session["exercise"] is None
    per_exercise = p.build_pain_checkin(PATIENT, seq=9, score=0, moment="during", t=at(1), exercise="bridge")
    assert json.loads(per_exercise.payload)["scope"] == "exercise"


def test_prescription_parses_into_typed_values_sorted_by_order():
    envelope = every_kind()[p.MessageKind.PRESCRIPTION]
    prescription = p.prescription_from_message(p.parse_message(envelope.topic, envelope.payload))
    assert prescription.version == 1
    assert [e.order for e in prescription.exercises] == [1, 2, 3]
    assert prescription.exercises[1].reps is None and prescription.exercises[1].hold_s == 30
    assert prescription.exercises[0].sides == ("left", "right")
