"""Turning a payload document into a validated, encoded :class:`Envelope`.

Every builder goes through :func:`seal`, so nothing leaves the Pi that a reader would
reject: a bug in a builder surfaces as a ProtocolError at the producer, not as a message the
dashboard drops.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hipsense.protocol.delivery import DELIVERY, Envelope
from hipsense.protocol.errors import ProtocolError
from hipsense.protocol.parsing import max_payload_bytes, validate_document
from hipsense.protocol.topics import MessageKind, build_topic


def encode_payload(document: Mapping[str, Any]) -> bytes:
    """Return the compact UTF-8 JSON encoding used on the wire."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def seal(kind: MessageKind, patient: str, document: Mapping[str, Any]) -> Envelope:
    """Validate ``document`` as a ``kind`` message of ``patient`` and wrap it for sending."""
    topic = build_topic(kind, patient)
    try:
        payload = encode_payload(document)
    except ValueError as exc:  # NaN or infinity in a measurement
        raise ProtocolError(f"cannot encode {kind.name.lower()} payload: {exc}", topic=topic) from None
    validate_document(kind, patient, json.loads(payload), topic=topic)
    limit = max_payload_bytes(kind)
    if len(payload) > limit:
        raise ProtocolError(f"payload is {len(payload)} bytes, over the {limit}-byte limit", topic=topic)
    delivery = DELIVERY[kind]
    return Envelope(
        kind=kind,
        topic=topic,
        payload=payload,
        qos=delivery.qos,
        retain=delivery.retain,
        expiry_s=delivery.expiry_s,
        importance=delivery.importance,
        message_id=document.get("id"),
        seq=document.get("seq"),
    )
