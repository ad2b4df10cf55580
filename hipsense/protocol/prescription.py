"""The prescription: what the therapist asks the patient to do, as typed values.

The therapist side builds and publishes it (retained); the Pi parses it with
:func:`prescription_from_message` and follows ``exercises`` in ``order``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

from hipsense.protocol.delivery import Envelope
from hipsense.protocol.envelopes import seal
from hipsense.protocol.errors import ProtocolError
from hipsense.protocol.parsing import Message
from hipsense.protocol.timestamps import Instant, format_timestamp, parse_timestamp
from hipsense.protocol.topics import MessageKind
from hipsense.protocol.validation import SCHEMA_VERSION


@dataclasses.dataclass(frozen=True, slots=True)
class PrescribedExercise:
    """One line of a prescription.

    ``reps`` is per set and side, None for a timed exercise (a stretch held ``hold_s``);
    ``sides`` is ``("left", "right")``, ``("left",)``, ``("both",)`` and so on.
    """

    order: int
    exercise: str
    sets: int
    reps: int | None
    hold_s: float
    sides: tuple[str, ...]
    rest_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "order": self.order,
            "exercise": self.exercise,
            "sets": self.sets,
            "reps": self.reps,
            "hold_s": self.hold_s,
            "sides": list(self.sides),
        }
        if self.rest_s is not None:
            doc["rest_s"] = self.rest_s
        return doc


@dataclasses.dataclass(frozen=True, slots=True)
class Prescription:
    """A patient's prescription, ``exercises`` sorted by ``order``."""

    patient: str
    version: int
    updated_at: dt.datetime
    exercises: tuple[PrescribedExercise, ...]


def build_prescription(
    patient: str, *, version: int, updated_at: Instant, exercises: Sequence[PrescribedExercise]
) -> Envelope:
    """Envelope of a prescription, for the therapist side to publish (retained)."""
    doc = {
        "schema_version": SCHEMA_VERSION,
        "patient": patient,
        "version": version,
        "updated_at": format_timestamp(updated_at),
        "exercises": [item.to_json() for item in exercises],
    }
    # Made from a therapist's form, not by construction: checked as the Pi will read it.
    return seal(MessageKind.PRESCRIPTION, patient, doc, validate=True)


def prescription_from_message(message: Message) -> Prescription:
    """Return the typed prescription carried by a parsed ``message``."""
    if message.kind is not MessageKind.PRESCRIPTION:
        raise ProtocolError(f"expected a prescription, got {message.kind.name.lower()}", topic=message.topic)
    data = message.data
    items = sorted(data["exercises"], key=lambda item: item["order"])
    return Prescription(
        patient=data["patient"],
        version=data["version"],
        updated_at=parse_timestamp(data["updated_at"]),
        exercises=tuple(
            PrescribedExercise(
                order=item["order"],
                exercise=item["exercise"],
                sets=item["sets"],
                reps=item["reps"],
                hold_s=item["hold_s"],
                sides=tuple(item["sides"]),
                rest_s=item.get("rest_s"),
            )
            for item in items
        ),
    )
