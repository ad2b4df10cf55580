"""hipsense MQTT protocol v1, shared by the Pi and any dashboard.

Topics (:mod:`.topics`), how each kind travels (:mod:`.delivery`), payload builders
(:mod:`.builders`, :mod:`.prescription`) and the reader :func:`parse_message`. The JSON Schema
files in ``schemas/`` are the contract; ``docs/mqtt.md`` explains it. This package imports only
the standard library, fastjsonschema and :mod:`hipsense.errors`; never the signal, exercise or
device layers, so a dashboard can depend on it alone.
"""

from hipsense.protocol.acknowledgement import build_stored_ack
from hipsense.protocol.builders import (
    ExerciseSummary,
    build_hold_event,
    build_live,
    build_pain_checkin,
    build_rep_event,
    build_session_summary,
    build_set_event,
    build_status,
)
from hipsense.protocol.delivery import DELIVERY, LIVE_EXPIRY_S, LIVE_MAX_RATE_HZ, Delivery, Envelope, Importance
from hipsense.protocol.errors import ProtocolError
from hipsense.protocol.ingest_online import INGEST_ONLINE_TOPIC, build_ingest_online, parse_ingest_online
from hipsense.protocol.ids import new_message_id, new_patient_id, new_session_id
from hipsense.protocol.parsing import MAX_JSON_DEPTH, MAX_PAYLOAD_BYTES, Message, max_payload_bytes, parse_message
from hipsense.protocol.prescription import (
    PrescribedExercise,
    Prescription,
    build_prescription,
    prescription_from_message,
)
from hipsense.protocol.time_window import refuse_implausible_instants
from hipsense.protocol.timestamps import format_timestamp, parse_timestamp
from hipsense.protocol.topics import (
    PROTOCOL_ROOT,
    MessageKind,
    build_topic,
    parse_topic,
    subscription_filter,
    validate_patient_id,
)
from hipsense.protocol.validation import SCHEMA_VERSION, load_schema
from hipsense.protocol.vocabulary import EventKind, Flag, Side

__all__ = [
    "DELIVERY",
    "INGEST_ONLINE_TOPIC",
    "LIVE_EXPIRY_S",
    "LIVE_MAX_RATE_HZ",
    "MAX_JSON_DEPTH",
    "MAX_PAYLOAD_BYTES",
    "PROTOCOL_ROOT",
    "SCHEMA_VERSION",
    "Delivery",
    "Envelope",
    "ExerciseSummary",
    "EventKind",
    "Flag",
    "Importance",
    "Message",
    "MessageKind",
    "PrescribedExercise",
    "Prescription",
    "ProtocolError",
    "Side",
    "build_hold_event",
    "build_ingest_online",
    "build_live",
    "build_pain_checkin",
    "build_prescription",
    "build_rep_event",
    "build_session_summary",
    "build_set_event",
    "build_status",
    "build_stored_ack",
    "build_topic",
    "format_timestamp",
    "load_schema",
    "max_payload_bytes",
    "new_message_id",
    "new_patient_id",
    "new_session_id",
    "parse_ingest_online",
    "parse_message",
    "parse_timestamp",
    "parse_topic",
    "prescription_from_message",
    "refuse_implausible_instants",
    "subscription_filter",
    "validate_patient_id",
]
