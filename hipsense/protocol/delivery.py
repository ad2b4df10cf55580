"""How each message kind travels: QoS, retain flag and MQTT 5 message expiry.

These are part of the protocol, not a choice of the sender: a dashboard relies on the
prescription and the status being retained, and on live data never piling up in a queue.
"""

from __future__ import annotations

import dataclasses
import enum

from hipsense.protocol.topics import MessageKind

LIVE_MAX_RATE_HZ = 10.0
"""Senders publish at most this many live messages per second per patient."""

LIVE_EXPIRY_S = 5
"""MQTT 5 message expiry of live data: a stale thigh angle is worse than none."""


class Importance(enum.IntEnum):
    """What a bounded outbox may throw away first (lowest first)."""

    LIVE = 0  # display-only, worthless after seconds
    STATE = 1  # retained state: only the newest one per topic matters
    RESULT = 2  # rep/hold/set/session/pain: never dropped before a hard cap


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """Transport settings of one message kind."""

    qos: int
    retain: bool
    expiry_s: int | None
    importance: Importance


DELIVERY: dict[MessageKind, Delivery] = {
    MessageKind.STATUS: Delivery(qos=1, retain=True, expiry_s=None, importance=Importance.STATE),
    MessageKind.LIVE: Delivery(qos=0, retain=False, expiry_s=LIVE_EXPIRY_S, importance=Importance.LIVE),
    MessageKind.REP: Delivery(qos=1, retain=False, expiry_s=None, importance=Importance.RESULT),
    MessageKind.HOLD: Delivery(qos=1, retain=False, expiry_s=None, importance=Importance.RESULT),
    MessageKind.SET: Delivery(qos=1, retain=False, expiry_s=None, importance=Importance.RESULT),
    MessageKind.SESSION: Delivery(qos=1, retain=False, expiry_s=None, importance=Importance.RESULT),
    MessageKind.PAIN: Delivery(qos=1, retain=False, expiry_s=None, importance=Importance.RESULT),
    MessageKind.PRESCRIPTION: Delivery(qos=1, retain=True, expiry_s=None, importance=Importance.STATE),
    MessageKind.STORED: Delivery(qos=1, retain=True, expiry_s=None, importance=Importance.STATE),
}


@dataclasses.dataclass(frozen=True, slots=True)
class Envelope:
    """A message ready to publish: topic, encoded payload and how to send it.

    Payload builders return one; the outbox stores one; the MQTT client sends one.
    ``message_id`` and ``seq`` are copies of the payload fields (None for non-events), kept
    here so the sender can log them without decoding the JSON.
    """

    kind: MessageKind
    topic: str
    payload: bytes
    qos: int
    retain: bool
    expiry_s: int | None
    importance: Importance
    message_id: str | None = None
    seq: int | None = None
