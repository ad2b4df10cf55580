"""Turning a payload document into an encoded :class:`Envelope`.

Every builder goes through :func:`seal`. The Pi's builders make documents that match their
schema by construction (:mod:`.builders`), so sealing them only encodes and checks the size:
no schema validation per message. A document made from someone's input (a therapist's
prescription form) asks for ``validate=True``: the compiled schema and the cross-field rules
run on it as a reader would run them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hipsense.protocol.delivery import DELIVERY, Envelope
from hipsense.protocol.errors import ProtocolError
from hipsense.protocol.parsing import max_payload_bytes, validate_document
from hipsense.protocol.topics import MessageKind, build_topic


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
"""What ``json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False)``
uses, made once: ``json.dumps`` builds a new encoder on every call with non-default options
(a third of the cost of encoding a live message; the output is the same)."""


def encode_payload(document: Mapping[str, Any]) -> bytes:
    """Return the compact UTF-8 JSON encoding used on the wire."""
    return _ENCODER.encode(document).encode("utf-8")


def seal(kind: MessageKind, patient: str, document: Mapping[str, Any], *, validate: bool = False) -> Envelope:
    """Encode ``document`` as a ``kind`` message of ``patient`` and wrap it for sending.

    ``validate=True`` also runs what :func:`~hipsense.protocol.parsing.parse_message` runs.
    """
    topic = build_topic(kind, patient)
    try:
        payload = encode_payload(document)
    except ValueError as exc:  # NaN or infinity in a measurement
        raise ProtocolError(f"cannot encode {kind.name.lower()} payload: {exc}", topic=topic) from None
    if validate:
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
