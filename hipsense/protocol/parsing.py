"""Reading a message: ``parse_message(topic, payload) -> Message`` and its limits.

Checks run cheapest first, so hostile input costs little: topic shape, payload size, UTF-8,
nesting depth (scanned before ``json.loads``, which would otherwise recurse on a megabyte of
``[``), JSON syntax (no NaN/Infinity, no duplicate keys), schema, then the rules a JSON Schema
cannot express (patient matches the topic, ends after starts, unique prescription order).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from hipsense.protocol.errors import ProtocolError
from hipsense.protocol.timestamps import parse_timestamp
from hipsense.protocol.topics import MessageKind, parse_topic
from hipsense.protocol.validation import validate_payload

MAX_PAYLOAD_BYTES = 64 * 1024
"""Largest payload accepted for any kind; a 32-exercise prescription is about 4 KiB."""

MAX_PAYLOAD_BYTES_BY_KIND: dict[MessageKind, int] = {
    MessageKind.STATUS: 4 * 1024,
    MessageKind.LIVE: 2 * 1024,
}

MAX_JSON_DEPTH = 8
"""Deepest nesting of objects/arrays accepted; v1 payloads need at most 4."""


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    """A validated protocol v1 message.

    ``data`` is the decoded JSON object exactly as sent. For events, ``message_id`` and
    ``seq`` are the fields a reader de-duplicates (store each id once) and orders by.
    ``instants`` holds the instants of ``data`` (``t``, ``t_start``, ``t_end``,
    ``updated_at``, those it has) as parsed while checking them, so that a reader need not
    parse them again; ``text`` the payload as received (UTF-8 decoded), which is JSON of
    ``data``.
    """

    kind: MessageKind
    patient: str
    topic: str
    data: Mapping[str, Any]
    instants: Mapping[str, dt.datetime] = dataclasses.field(default_factory=dict, compare=False, repr=False)
    text: str | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def message_id(self) -> str | None:
        return self.data.get("id")

    @property
    def seq(self) -> int | None:
        return self.data.get("seq")


def max_payload_bytes(kind: MessageKind) -> int:
    """Return the size limit of ``kind`` payloads, in bytes."""
    return MAX_PAYLOAD_BYTES_BY_KIND.get(kind, MAX_PAYLOAD_BYTES)


def measure_json_depth(text: str) -> int:
    """Return the deepest object/array nesting in ``text`` without parsing it.

    Brackets inside strings do not count. Runs in O(len(text)); malformed text gives some
    number and is then rejected by the JSON parser.
    """
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # dict() runs in C; only an object that lost a key to a repeat (fewer entries than pairs)
    # is walked again, to name the key.
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return result


# One decoder for every message: json.loads with hooks builds a JSONDecoder (and its scanner)
# per call, which cost more than the hooks themselves (issue 14). The C scanner calls the pairs
# hook once per object, at every depth, and parse_constant on NaN/Infinity/-Infinity only.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_object_without_duplicates)


def payload_text(payload: bytes, *, kind: MessageKind, topic: str | None = None) -> str:
    """Return ``payload`` as text if it is within the size limit of ``kind`` and UTF-8."""
    limit = max_payload_bytes(kind)
    if len(payload) > limit:
        raise ProtocolError(f"payload is {len(payload)} bytes, over the {limit}-byte limit", topic=topic)
    if not payload:
        raise ProtocolError("payload is empty", topic=topic)
    try:
        return bytes(payload).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"payload is not UTF-8: {exc.reason} at byte {exc.start}", topic=topic) from None


def decode_text(text: str, *, topic: str | None = None) -> Any:
    """Decode ``text`` as strict JSON (no NaN/Infinity, no key twice in an object, at any
    depth) within the nesting limit."""
    # Fewer opening brackets than the limit cannot nest deeper than it (brackets inside strings
    # only add to the count): the usual message skips the character-by-character scan.
    brackets = text.count("{") + text.count("[")
    depth = measure_json_depth(text) if brackets > MAX_JSON_DEPTH else brackets
    if depth > MAX_JSON_DEPTH:
        raise ProtocolError(f"JSON nesting depth {depth} exceeds the limit of {MAX_JSON_DEPTH}", topic=topic)
    try:
        if text.startswith("\ufeff"):  # as json.loads says it
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"payload is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", topic=topic) from None
    except ValueError as exc:  # raised by our hooks above
        raise ProtocolError(f"payload is not strict JSON: {exc}", topic=topic) from None


def decode_payload(payload: bytes, *, kind: MessageKind, topic: str | None = None) -> Any:
    """Decode ``payload`` as strict JSON within the size and depth limits of ``kind``."""
    return decode_text(payload_text(payload, kind=kind, topic=topic), topic=topic)


def _check_semantics(kind: MessageKind, patient: str, data: Mapping[str, Any],
                     topic: str | None) -> dict[str, dt.datetime]:
    if data["patient"] != patient:
        raise ProtocolError(
            f"payload patient {data['patient']!r} differs from the topic's {patient!r}", topic=topic, path="/patient"
        )
    # The schema checks a timestamp's shape; this checks the calendar (no 30 February).
    instants = {}
    for field in ("t", "t_start", "t_end", "updated_at"):
        if field in data:
            try:
                instants[field] = parse_timestamp(data[field])
            except ProtocolError as exc:
                raise ProtocolError(exc.reason, topic=topic, path=f"/{field}") from None
    if "t_start" in instants and "t_end" in instants and instants["t_end"] < instants["t_start"]:
        raise ProtocolError("t_end is before t_start", topic=topic, path="/t_end")
    if kind is MessageKind.PRESCRIPTION:
        orders = [item["order"] for item in data["exercises"]]
        if len(set(orders)) != len(orders):
            raise ProtocolError(f"prescription 'order' values repeat: {orders}", topic=topic, path="/exercises")
    return instants


def validate_document(kind: MessageKind, patient: str, data: Any, *,
                      topic: str | None = None) -> dict[str, dt.datetime]:
    """Run the schema and the cross-field rules on an already-decoded document; return its
    instants (see :attr:`Message.instants`)."""
    if not isinstance(data, dict):
        raise ProtocolError(f"payload must be a JSON object, not {type(data).__name__}", topic=topic, path="")
    validate_payload(kind, data, topic=topic)
    return _check_semantics(kind, patient, data, topic)


def parse_message(topic: str, payload: bytes) -> Message:
    """Validate a received message and return it; raise ProtocolError naming what is wrong.

    Parameters
    ----------
    topic : str
        The MQTT topic it arrived on (``hipsense/v1/<patient>/...``).
    payload : bytes
        The raw payload.
    """
    kind, patient = parse_topic(topic)
    text = payload_text(payload, kind=kind, topic=topic)
    data = decode_text(text, topic=topic)
    instants = validate_document(kind, patient, data, topic=topic)
    return Message(kind=kind, patient=patient, topic=topic, data=data, instants=instants, text=text)
