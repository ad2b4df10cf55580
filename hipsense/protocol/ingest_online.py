"""The dashboard's "ingest online" announcement: "I (re)subscribed to the results just now".

A broker that restarts without its state (or any Mosquitto 2.0: it does not restore a shared
subscription) has no subscriber for the results until the dashboard's ingest re-subscribes.
Results a Pi sent meanwhile got a PUBACK and went nowhere. The Pi keeps them until the
dashboard's storage acknowledgement covers them, but without a hint it would send them again
only when its storage timeout expires (60 s, doubling to 30 min). So after every (re)subscribe
the ingest publishes, retained, on one topic for the whole deployment that every Pi may read
and only dashboard accounts may write (the broker's ACL, :mod:`hipsense.provision.acl`), a
payload with a new ``epoch``; a Pi that sees an epoch it has not seen sends again, after a
random delay (no storm), what it delivered and no acknowledgement covers. See docs/mqtt.md.

The topic's patient level, ``_ingest``, can never be a patient id (those start with a letter
or a digit), so no Pi's own subtree overlaps it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import fastjsonschema

from hipsense.protocol.envelopes import encode_payload
from hipsense.protocol.errors import ProtocolError
from hipsense.protocol.ids import new_message_id
from hipsense.protocol.parsing import decode_text
from hipsense.protocol.timestamps import Instant, format_timestamp
from hipsense.protocol.topics import PROTOCOL_ROOT
from hipsense.protocol.validation import DRAFT_7, SCHEMA_VERSION, _inline_refs, load_schema

INGEST_ONLINE_TOPIC = f"{PROTOCOL_ROOT}/_ingest/online"
"""Retained, QoS 1; dashboards write it, every Pi reads it."""

MAX_INGEST_ONLINE_BYTES = 512


def build_ingest_online(*, epoch: str | None = None, t: Instant | None = None) -> bytes:
    """The announcement's payload, with a new epoch (a ULID) unless one is given."""
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "epoch": epoch or new_message_id()}
    if t is not None:
        doc["t"] = format_timestamp(t)
    payload = encode_payload(doc)
    parse_ingest_online(payload)  # a given epoch must be a ULID
    return payload


@functools.cache
def _validator() -> Callable[[Any], Any]:
    schema = _inline_refs(load_schema("ingest_online.json"), load_schema("common.json").get("$defs", {}))
    schema.pop("$id", None)
    return fastjsonschema.compile({**schema, "$schema": DRAFT_7})


def parse_ingest_online(payload: bytes) -> str:
    """Return the announcement's epoch; raise ProtocolError if the payload is not one."""
    if len(payload) > MAX_INGEST_ONLINE_BYTES:
        raise ProtocolError(f"payload is {len(payload)} bytes, over the {MAX_INGEST_ONLINE_BYTES}-byte limit",
                            topic=INGEST_ONLINE_TOPIC)
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"not a UTF-8 JSON payload: {exc}", topic=INGEST_ONLINE_TOPIC) from None
    doc = decode_text(text, topic=INGEST_ONLINE_TOPIC)  # strict, as every message: no key twice, no NaN
    try:
        _validator()(doc)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise ProtocolError(f"ingest online payload does not match its schema: {exc.message[:200]}",
                            topic=INGEST_ONLINE_TOPIC) from None
    return doc["epoch"]
