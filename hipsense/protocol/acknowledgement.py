"""The end-to-end acknowledgement: "every result of this patient up to ``seq`` is stored".

A broker's PUBACK only says the broker took a message; it can still lose it (a restart before
the dashboard re-subscribed, a stolen session). So the dashboard, after its database commit,
publishes per patient the highest ``seq`` it has stored without a gap, retained, on
``hipsense/v1/<patient>/stored`` (a topic only dashboard accounts may write), and the Pi's
outbox keeps every result until such an acknowledgement covers it. See docs/mqtt.md.
"""

from __future__ import annotations

from typing import Any

from hipsense.protocol.delivery import Envelope
from hipsense.protocol.envelopes import seal
from hipsense.protocol.timestamps import Instant, format_timestamp
from hipsense.protocol.topics import MessageKind
from hipsense.protocol.validation import SCHEMA_VERSION


def build_stored_ack(patient: str, seq: int, *, t: Instant | None = None) -> Envelope:
    """The retained acknowledgement that ``patient``'s results ``1..seq`` are all stored."""
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "patient": patient, "seq": int(seq)}
    if t is not None:
        doc["t"] = format_timestamp(t)
    return seal(MessageKind.STORED, patient, doc)
