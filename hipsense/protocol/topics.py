"""The topic tree of protocol v1: builders, the parser, and patient-id rules.

::

    hipsense/v1/<patient>/status          retained, QoS 1   device online/offline (last will)
    hipsense/v1/<patient>/live            QoS 0, expiring   thigh angle + current exercise
    hipsense/v1/<patient>/event/rep       QoS 1             one repetition
    hipsense/v1/<patient>/event/hold      QoS 1             one timed hold
    hipsense/v1/<patient>/event/set       QoS 1             a finished set
    hipsense/v1/<patient>/event/session   QoS 1             a session summary
    hipsense/v1/<patient>/event/pain      QoS 1             a pain check-in (0-10)
    hipsense/v1/<patient>/prescription    retained, QoS 1   published by the therapist side
    hipsense/v1/<patient>/stored          retained, QoS 1   the dashboard: results 1..seq are stored

Every results topic sits under ``event/`` so that a dashboard subscribes to
``hipsense/v1/+/event/#`` once, and a broker ACL can grant a Pi ``hipsense/v1/<its id>/#``.
"""

from __future__ import annotations

import enum
import re

from hipsense.protocol.errors import ProtocolError

PROTOCOL_ROOT = "hipsense/v1"

# A pseudonym is a code, not a name: lowercase letters, digits, '-' and '_', 4-64 characters,
# with at least one digit. The digit rule is cheap and catches the common mistake of using a
# first name ("maria") or a login; it cannot prove an id is not personal, which is why the
# docs tell installers to use new_patient_id(). '/', '+', '#' can never appear, so a patient
# id cannot break out of its subtree or act as a wildcard.
_PATIENT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{3,63}$")
_HAS_DIGIT = re.compile(r"[0-9]")


class MessageKind(enum.Enum):
    """What a message is; the value is the topic suffix after ``hipsense/v1/<patient>/``."""

    STATUS = "status"
    LIVE = "live"
    REP = "event/rep"
    HOLD = "event/hold"
    SET = "event/set"
    SESSION = "event/session"
    PAIN = "event/pain"
    PRESCRIPTION = "prescription"
    STORED = "stored"  # the end-to-end acknowledgement; written by the dashboard only

    @property
    def is_event(self) -> bool:
        """True for the QoS 1 results that carry ``id`` and ``seq``."""
        return self.value.startswith("event/")


_KIND_BY_SUFFIX = {kind.value: kind for kind in MessageKind}


def validate_patient_id(patient: str) -> str:
    """Return ``patient`` unchanged if it is a valid pseudonymous id, else raise ProtocolError."""
    if not isinstance(patient, str) or not _PATIENT_ID.fullmatch(patient):
        raise ProtocolError(
            f"patient id {patient!r} is not a pseudonym: use 4-64 characters of a-z, 0-9, '-' "
            "or '_', starting with a letter or digit"
        )
    if not _HAS_DIGIT.search(patient):
        raise ProtocolError(
            f"patient id {patient!r} has no digit; pseudonyms are codes (e.g. 'p-7k2m9q4x'), "
            "never names"
        )
    return patient


_TOPICS: dict[tuple[MessageKind, str], str] = {}
_TOPICS_MAX = 4096  # a Pi has one patient; a dashboard thousands at most: past this, no caching


def build_topic(kind: MessageKind, patient: str) -> str:
    """Return the topic of a ``kind`` message for ``patient`` (validated).

    Topics of valid ids are remembered: the Pi builds one per live message (10 a second), and
    checking the id's two patterns each time was a tenth of the cost of building one.
    """
    if type(patient) is str:  # exactly str: a subclass could compare equal and differ in text
        topic = _TOPICS.get((kind, patient))
        if topic is not None:
            return topic
    topic = f"{PROTOCOL_ROOT}/{validate_patient_id(patient)}/{kind.value}"
    if type(patient) is str and len(_TOPICS) < _TOPICS_MAX:
        _TOPICS[kind, patient] = topic
    return topic


_PARSED: dict[str, tuple[MessageKind, str]] = {}


def parse_topic(topic: str) -> tuple[MessageKind, str]:
    """Split a protocol v1 topic into ``(kind, patient)``; raise ProtocolError if it is not one.

    Valid topics are remembered (up to ``_TOPICS_MAX``; a dashboard reads a few per patient):
    checking the id's two patterns was a tenth of parsing a rep event (issue 14).
    """
    if type(topic) is str:  # exactly str, as in build_topic
        known = _PARSED.get(topic)
        if known is not None:
            return known
    kind, patient = _parse_topic(topic)
    if type(topic) is str and len(_PARSED) < _TOPICS_MAX:
        _PARSED[topic] = kind, patient
    return kind, patient


def _parse_topic(topic: str) -> tuple[MessageKind, str]:
    prefix = PROTOCOL_ROOT + "/"
    if not topic.startswith(prefix):
        raise ProtocolError(f"not a protocol v1 topic (expected prefix {prefix!r})", topic=topic)
    patient, _, suffix = topic[len(prefix):].partition("/")
    kind = _KIND_BY_SUFFIX.get(suffix)
    if kind is None:
        known = ", ".join(sorted(_KIND_BY_SUFFIX))
        raise ProtocolError(f"unknown message kind {suffix!r} (known: {known})", topic=topic)
    try:
        validate_patient_id(patient)
    except ProtocolError as exc:
        raise ProtocolError(exc.reason, topic=topic) from None
    return kind, patient


def subscription_filter(kind: MessageKind | None = None, patient: str | None = None) -> str:
    """Return a topic filter, e.g. all events of all patients: ``subscription_filter()``.

    ``kind=None`` means every event kind (``event/#``); ``patient=None`` means every patient.
    """
    who = "+" if patient is None else validate_patient_id(patient)
    what = "event/#" if kind is None else kind.value
    return f"{PROTOCOL_ROOT}/{who}/{what}"
