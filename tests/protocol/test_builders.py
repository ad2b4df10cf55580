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
    # ingest_online: the dashboard's announcement, on a topic outside the patients' tree
    assert names == {kind.value.removeprefix("event/") for kind in p.MessageKind} | {"ingest_online"}


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


def test_status_tells_how_many_results_wait_outside_a_full_outbox():
    """unsaved_results (optional, only while the outbox cannot be written): parsed by a reader of
    this version; a reader from before it refuses the whole status (additionalProperties: false),
    which is why the Pi sends it only while its card is full: the results travel as events, and
    the next status without it is accepted again (docs/mqtt.md, Status)."""
    full = p.build_status(PATIENT, online=True, t=at(0), outbox_first_seq=7, unsaved_results=12)
    assert p.parse_message(full.topic, full.payload).data["unsaved_results"] == 12
    assert "unsaved_results" not in json.loads(p.build_status(PATIENT, online=True).payload)
    assert json.loads(p.build_status(PATIENT, online=True, unsaved_results=0).payload)["unsaved_results"] == 0
    for bad in (-1, 1_000_001, True, 2.5):
        with pytest.raises(p.ProtocolError, match="unsaved_results"):
            p.build_status(PATIENT, online=True, unsaved_results=bad)
    import jsonschema
    import referencing

    old_schema = p.load_schema("status.json")
    del old_schema["properties"]["unsaved_results"]
    common = p.load_schema("common.json")
    registry = referencing.Registry().with_resource(common["$id"], referencing.Resource.from_contents(common))
    old_reader = jsonschema.Draft202012Validator(old_schema, registry=registry)
    assert old_reader.is_valid(json.loads(p.build_status(PATIENT, online=True, t=at(0), outbox_first_seq=7).payload))
    assert not old_reader.is_valid(json.loads(full.payload))


def test_status_tells_when_the_card_reserve_is_not_in_place():
    """card_reserve (optional, only while the Pi's card reserve is not in place, service/reserve.py):
    "in_use" or "missing", anything else refused; absent otherwise, so a healthy Pi's status stays
    readable by a reader from before it (which refuses the field: additionalProperties false)."""
    for state in ("in_use", "missing"):
        status = p.build_status(PATIENT, online=True, t=at(0), outbox_first_seq=7, card_reserve=state)
        assert p.parse_message(status.topic, status.payload).data["card_reserve"] == state
    assert "card_reserve" not in json.loads(p.build_status(PATIENT, online=True).payload)
    for bad in ("in use", "", True, 1):
        with pytest.raises(p.ProtocolError, match="card_reserve"):
            p.build_status(PATIENT, online=True, card_reserve=bad)
    doc = json.loads(p.build_status(PATIENT, online=True, t=at(0)).payload)
    with pytest.raises(p.ProtocolError, match="card_reserve"):
        p.parse_message(p.build_topic(p.MessageKind.STATUS, PATIENT), json.dumps({**doc, "card_reserve": "full"}).encode())


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


# -- correct by construction: no builder emits what the schema files refuse --------------------
#
# The builders do not run the schema at runtime (issue 14). These properties hold them to it:
# with arguments inside the files' limits a builder always succeeds and its payload validates
# (jsonschema, reading the files as above) and parses; with arguments of any kind (out of
# range, NaN, wrong types, malformed ids) it either refuses with a ProtocolError or still
# produces a payload that validates.

import datetime as dt  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_instants = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1),
                         timezones=st.just(dt.UTC)) | st.floats(9.5e8, 4.1e9)
_junk = st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats() | st.text(max_size=8) | st.lists(st.integers(), max_size=2)
_ids = st.from_regex(r"[0-9A-HJKMNP-TV-Z]{26}", fullmatch=True)
_exercise = st.from_regex(r"[a-z][a-z0-9_]{1,63}", fullmatch=True)
_session = st.from_regex(r"[0-9A-Za-z_-]{1,64}", fullmatch=True)
_flag_lists = st.lists(st.from_regex(r"[a-z][a-z0-9_]{1,31}", fullmatch=True), max_size=16, unique=True)


def _num(lo, hi):
    return st.floats(lo, hi) | st.integers(int(lo), int(hi))


_CONTAINERS = ("sensors", "exercises", "flags")  # typed as sequences: junk goes inside them


def _args(valid: dict, wide: bool):
    """Keyword arguments: each from its valid strategy, or (when ``wide``) sometimes junk."""
    def widen(name, strategy):
        return strategy | st.lists(_junk, max_size=2) if name in _CONTAINERS else strategy | _junk
    return st.fixed_dictionaries({k: widen(k, v) if wide else v for k, v in valid.items()})


_BUILDERS = {
    p.MessageKind.STATUS: (p.build_status, lambda w: _args({
        "online": st.booleans(), "t": _instants, "software_version": st.text(max_size=32),
        "sensors": st.lists(st.fixed_dictionaries({"side": st.sampled_from(["left", "right"]), "connected": st.booleans()},
                                                  optional={"battery_pct": st.integers(0, 100)}), max_size=2),
        "unsaved_results": st.none() | st.integers(0, 1_000_000),
        "card_reserve": st.none() | st.sampled_from(["in_use", "missing"])}, w)),
    p.MessageKind.LIVE: (p.build_live, lambda w: _args({
        "t": _instants, "side": st.sampled_from(["left", "right"]), "thigh_angle_deg": _num(-180, 180),
        "exercise": st.none() | _exercise, "session_id": st.none() | _session, "abduction_deg": st.none() | _num(-90, 90),
        "rep_count": st.none() | st.integers(0, 100000), "hold_remaining_s": st.none() | _num(0, 86400)}, w)),
    p.MessageKind.REP: (p.build_rep_event, lambda w: _args({
        "seq": st.integers(1, 2**53 - 1), "session_id": _session, "exercise": _exercise,
        "side": st.sampled_from(["left", "right", "both"]), "set_index": st.integers(1, 10000),
        "rep_index": st.integers(1, 10000), "t_start": st.just(at(0)), "t_end": st.just(at(3.5)),
        "rom_deg": _num(0, 360), "hold_s": _num(0, 86400), "peak_speed_dps": _num(0, 5000),
        "duration_s": st.none() | _num(0, 86400), "flags": _flag_lists, "message_id": st.none() | _ids}, w)),
    p.MessageKind.HOLD: (p.build_hold_event, lambda w: _args({
        "seq": st.integers(1, 2**53 - 1), "session_id": _session, "exercise": _exercise,
        "side": st.sampled_from(["left", "right", "both"]), "set_index": st.integers(1, 10000),
        "hold_index": st.integers(1, 10000), "t_start": st.just(at(0)), "t_end": st.just(at(30)),
        "hold_s": _num(0, 86400), "target_hold_s": st.none() | _num(0, 86400), "mean_angle_deg": _num(-360, 360),
        "flags": _flag_lists}, w)),
    p.MessageKind.SET: (p.build_set_event, lambda w: _args({
        "seq": st.integers(1, 2**53 - 1), "session_id": _session, "exercise": _exercise,
        "side": st.sampled_from(["left", "right", "both"]), "set_index": st.integers(1, 10000),
        "t_start": st.just(at(0)), "t_end": st.just(at(60)), "reps": st.integers(0, 100000),
        "reps_target": st.none() | st.integers(0, 100000), "holds": st.integers(0, 100000),
        "hold_s_total": _num(0, 86400), "target_hold_s": st.none() | _num(0, 86400), "prescribed": st.booleans(),
        "flags": _flag_lists}, w)),
    p.MessageKind.SESSION: (p.build_session_summary, lambda w: _args({
        "seq": st.integers(1, 2**53 - 1), "session_id": _session, "t_start": st.just(at(0)), "t_end": st.just(at(900)),
        "exercises": st.lists(st.builds(
            p.ExerciseSummary, exercise=_exercise, side=st.sampled_from(["left", "right", "both"]),
            sets=st.integers(0, 100000), sets_target=st.none() | st.integers(0, 100000), reps=st.integers(0, 100000),
            reps_target=st.none() | st.integers(0, 100000), hold_s_total=_num(0, 86400),
            max_rom_deg=st.none() | _num(0, 360), mean_rom_deg=st.none() | _num(0, 360)), max_size=3),
        "prescription_version": st.none() | st.integers(1, 2**53 - 1), "adherence": st.none() | _num(0, 1),
        "flags": _flag_lists}, w)),
    p.MessageKind.PAIN: (p.build_pain_checkin, lambda w: _args({
        "seq": st.integers(1, 2**53 - 1), "score": st.integers(0, 10), "moment": st.sampled_from(["before", "during", "after"]),
        "t": _instants, "session_id": st.none() | _session, "exercise": st.none() | _exercise}, w)),
}


def _validates(kind, envelope):
    document = json.loads(envelope.payload)
    _schema_validator(kind).validate(document)
    p.parse_message(envelope.topic, envelope.payload)


@pytest.mark.parametrize("kind", list(_BUILDERS))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_value_the_schema_allows_is_built_and_validates(kind, data):
    build, args = _BUILDERS[kind]
    _validates(kind, build(PATIENT, **data.draw(args(False))))


@pytest.mark.parametrize("kind", list(_BUILDERS))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_a_builder_refuses_what_the_schema_refuses_or_builds_something_valid(kind, data):
    build, args = _BUILDERS[kind]
    try:
        envelope = build(PATIENT, **data.draw(args(True)))
    except p.ProtocolError:
        return
    _validates(kind, envelope)
