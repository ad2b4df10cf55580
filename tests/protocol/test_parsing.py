"""Bad input gets a clear ProtocolError that names what is wrong, and nothing else."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hipsense import protocol as p
from tests.protocol.samples import PATIENT, every_kind

REP = every_kind()[p.MessageKind.REP]
REP_DOC = json.loads(REP.payload)
PRESCRIPTION = every_kind()[p.MessageKind.PRESCRIPTION]


def _rep_with(**changes) -> bytes:
    doc = dict(REP_DOC)
    for key, value in changes.items():
        if value is ...:
            doc.pop(key)
        else:
            doc[key] = value
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("payload", "match", "path"),
    [
        (b"", "payload is empty", None),
        (b"{not json", "not JSON", None),
        (b"\xff\xfe{}", "not UTF-8", None),
        (b"[1, 2]", "must be a JSON object", ""),
        (_rep_with(rom_deg=...), r"must contain \['rom_deg'\]", ""),
        (_rep_with(rom_deg="big"), "rom_deg must be number", "/rom_deg"),
        (_rep_with(side="middle"), "must be one of", "/side"),
        (_rep_with(flags=["Too Fast"]), "must match pattern", "/flags/0"),
        (_rep_with(id="not-a-ulid"), "must match pattern", "/id"),
        (_rep_with(seq=0), "bigger than or equal to 1", "/seq"),
        (_rep_with(extra_field=1), "must not contain {'extra_field'}", ""),
        (_rep_with(schema_version=2), "schema_version 2 is not supported", "/schema_version"),
        (_rep_with(patient="p-9999"), "differs from the topic", "/patient"),
        (_rep_with(t_end="2025-03-01T09:14:00.000Z"), "t_end is before t_start", "/t_end"),
        (_rep_with(t_start="2025-02-30T09:14:00.000Z"), "not a real date", "/t_start"),
        (_rep_with(t_start="2025-03-01 09:14:00"), "t_start must match pattern", "/t_start"),
        (REP.payload.replace(b'"rom_deg":38.2', b'"rom_deg":NaN'), "not strict JSON: NaN", None),
        (REP.payload.replace(b'"hold_s":2.1', b'"hold_s":2.1,"hold_s":9'), "duplicate key 'hold_s'", None),
    ],
)
def test_malformed_rep_events_are_rejected_with_a_clear_reason(payload, match, path):
    with pytest.raises(p.ProtocolError, match=match) as info:
        p.parse_message(REP.topic, payload)
    assert info.value.topic == REP.topic
    if path is not None:
        assert info.value.path == path
    assert REP.topic in str(info.value)


def test_oversized_payload_is_rejected_before_parsing():
    big = json.loads(PRESCRIPTION.payload)
    big["exercises"] = big["exercises"] * 2000
    payload = json.dumps(big).encode()
    with pytest.raises(p.ProtocolError, match=r"over the 65536-byte limit"):
        p.parse_message(PRESCRIPTION.topic, payload)


def test_live_messages_have_a_tighter_size_limit():
    live = every_kind()[p.MessageKind.LIVE]
    padded = live.payload[:-1] + b" " * 3000 + b"}"
    with pytest.raises(p.ProtocolError, match="2048-byte limit"):
        p.parse_message(live.topic, padded)


@pytest.mark.parametrize("depth", [9, 50, 20_000])
def test_deeply_nested_payload_is_rejected_without_recursion(depth):
    payload = b'{"a":' * depth + b"1" + b"}" * depth
    payload = payload[: p.MAX_PAYLOAD_BYTES]  # the deepest still fits the size limit
    with pytest.raises(p.ProtocolError, match=r"nesting depth \d+ exceeds the limit of 8"):
        p.parse_message(REP.topic, payload)


def test_brackets_inside_strings_do_not_count_as_depth():
    doc = dict(REP_DOC, session_id="x")
    doc["session_id"] = "[[[[[[[[[[[[["  # invalid id, but depth must not be what fails
    with pytest.raises(p.ProtocolError, match="does not match") as info:
        p.parse_message(REP.topic, json.dumps(doc).encode())
    assert info.value.path == "/session_id"


def test_prescription_with_repeated_order_is_rejected():
    doc = json.loads(PRESCRIPTION.payload)
    doc["exercises"][1]["order"] = 1
    with pytest.raises(p.ProtocolError, match="'order' values repeat"):
        p.parse_message(PRESCRIPTION.topic, json.dumps(doc).encode())


def test_prescription_rejects_bad_doses_with_their_path():
    doc = json.loads(PRESCRIPTION.payload)
    doc["exercises"][0]["sets"] = 0
    with pytest.raises(p.ProtocolError) as info:
        p.parse_message(PRESCRIPTION.topic, json.dumps(doc).encode())
    assert info.value.path == "/exercises/0/sets"


def test_pain_scope_and_exercise_must_agree():
    pain = every_kind()[p.MessageKind.PAIN]
    doc = json.loads(pain.payload) | {"exercise": "bridge"}  # scope stays "session"
    with pytest.raises(p.ProtocolError, match="exercise must be null"):
        p.parse_message(pain.topic, json.dumps(doc).encode())


def test_payload_on_wrong_kind_topic_is_rejected():
    status_topic = p.build_topic(p.MessageKind.STATUS, PATIENT)
    with pytest.raises(p.ProtocolError, match="status payload does not match"):
        p.parse_message(status_topic, REP.payload)


def test_error_message_stays_short_for_huge_values():
    doc = dict(REP_DOC, flags=["x" * 40000])
    with pytest.raises(p.ProtocolError) as info:
        p.parse_message(REP.topic, json.dumps(doc).encode())
    assert len(str(info.value)) < 400


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_protocol_error(payload):
    try:
        p.parse_message(REP.topic, payload)
    except p.ProtocolError:
        pass


@settings(max_examples=150, deadline=None)
@given(doc=st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
))
def test_arbitrary_json_raises_only_protocol_error(doc):
    try:
        p.parse_message(PRESCRIPTION.topic, json.dumps(doc).encode())
    except p.ProtocolError:
        pass


# -- strict JSON: a key twice is refused at any depth, exactly as the old per-pair hook did ----

def _strict_reference(text: str):
    """The decoder this module used before (issue 14): json.loads with a per-pair hook."""
    def pairs_hook(pairs):
        result = {}
        for key, value in pairs:
            if key in result:
                raise ValueError(f"duplicate key {key!r}")
            result[key] = value
        return result

    def constant(name):
        raise ValueError(f"{name} is not valid JSON")

    return json.loads(text, parse_constant=constant, object_pairs_hook=pairs_hook)


@pytest.mark.parametrize("text", [
    '{"a":1,"a":1}',
    '{"a":{"b":1,"b":2}}',
    '{"a":[{"x":1},{"y":1,"y":1}]}',
    '{"a":[[[{"deep":1,"z":0,"deep":2}]]]}',
    '{"a":1,"b":{"c":{"d":{"e":{"f":1,"f":1}}}}}',
    '{"k":1,"\\u006b":2}',  # the same key, written with an escape
    '{"k" : 1 , "k"\n:\t2}',
])
def test_a_key_twice_is_refused_at_any_depth(text):
    with pytest.raises(ValueError, match="duplicate key"):
        _strict_reference(text)
    with pytest.raises(p.ProtocolError, match="not strict JSON: duplicate key") as info:
        p.parse_message(REP.topic, text.encode())
    assert info.value.topic == REP.topic


def test_prescription_with_a_key_twice_inside_an_exercise_is_refused():
    text = PRESCRIPTION.payload.decode()
    head, _, tail = text.partition('"order":')
    twice = head + '"order":1,"order":' + tail
    with pytest.raises(p.ProtocolError, match="duplicate key 'order'"):
        p.parse_message(PRESCRIPTION.topic, twice.encode())


def test_a_byte_order_mark_is_refused_as_before():
    with pytest.raises(p.ProtocolError, match="not JSON: Unexpected UTF-8 BOM"):
        p.parse_message(REP.topic, "\ufeff".encode() + REP.payload)


json_texts = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["a", "b", "k", ""]),
    lambda inner: st.lists(inner, max_size=3) | st.lists(st.tuples(st.sampled_from(["a", "b", "k", "\\u006b"]), inner),
                                                         max_size=4),
    max_leaves=15,
)


def _write(node) -> str:
    """JSON text of ``node``, where a list of (key, value) pairs is an object that may repeat keys."""
    if isinstance(node, list) and node and all(isinstance(x, tuple) for x in node):
        return "{" + ",".join(f'"{k}":{_write(v)}' for k, v in node) + "}"
    if isinstance(node, list):
        return "[" + ",".join(_write(v) for v in node) + "]"
    return json.dumps(node)


@settings(max_examples=300, deadline=None)
@given(node=json_texts)
def test_the_decoder_gives_the_old_verdict_and_document_on_any_json(node):
    text = _write(node)
    try:
        expected = _strict_reference(text)
    except ValueError as exc:
        with pytest.raises(p.ProtocolError, match="not strict JSON") as info:
            _decode(text)
        assert str(exc) in str(info.value)
        return
    if isinstance(expected, (dict, list)) and _depth(expected) > p.MAX_JSON_DEPTH:
        return
    assert _decode(text) == expected


def _decode(text: str):
    from hipsense.protocol.parsing import decode_text

    return decode_text(text)


def _depth(node) -> int:
    if isinstance(node, dict):
        return 1 + max((_depth(v) for v in node.values()), default=0)
    if isinstance(node, list):
        return 1 + max((_depth(v) for v in node), default=0)
    return 0


# -- instants: parsed once, strictly ------------------------------------------------------------

def test_a_message_carries_its_instants_as_parsed():
    message = p.parse_message(REP.topic, REP.payload)
    assert set(message.instants) == {"t_start", "t_end"}
    for field, instant in message.instants.items():
        assert instant == p.parse_timestamp(REP_DOC[field])
        assert instant.tzinfo is not None and instant.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("text", [
    "2025-03-01T09:15:02Z", "2025-03-01T09:15:02.2Z", "2025-03-01T09:15:02.250Z", "2025-03-01T09:15:02.123456Z",
    "2024-02-29T23:59:59.999Z",
])
def test_wire_timestamps_read_as_utc(text):
    import datetime as dt

    expected = dt.datetime.fromisoformat(text[:-1]).replace(tzinfo=dt.timezone.utc)
    assert p.parse_timestamp(text) == expected


@pytest.mark.parametrize("text", [
    "2025-03-01 09:15:02.250Z",  # fromisoformat alone takes a space
    "20250301T091502Z",  # and the basic format
    "2025-03-01T09:15:02.250+00:00",
    "2025-03-01T09:15:02.1234567Z",
    "2025-03-01T09:15Z",
    "2025-03-01T09:15:02.250z",
    "2025-03-01T09:15:02.250Z\n",
    "\u0662\u0660\u0662\u0665-03-01T09:15:02.250Z",  # Arabic-Indic digits
    "2025-02-30T09:15:02.250Z",
    "2025-03-01T24:00:00.000Z",
    "2025-03-01T09:15:60.000Z",
])
def test_only_the_wire_form_of_a_timestamp_is_read(text):
    with pytest.raises(p.ProtocolError):
        p.parse_timestamp(text)
