"""The prescription editor's back end: form rows -> a validated prescription -> the broker.

Saving builds the payload with the protocol's :func:`build_prescription` (which refuses what a
Pi would reject), records it under the next version number (the primary key settles two
saves at once), publishes it retained, waits for the broker's acknowledgement and marks it
confirmed. If the broker does not acknowledge, the therapist sees that it was not sent, and
the version stays unconfirmed (see migration 0002 for why its number is not reused).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError

from hipsense.dashboard.db.tables import prescriptions
from hipsense.protocol import Envelope, PrescribedExercise, ProtocolError, build_prescription

# What the editor offers for "sides", in the order the patient trains them.
SIDE_CHOICES: dict[str, tuple[str, ...]] = {
    "left,right": ("left", "right"),
    "right,left": ("right", "left"),
    "left": ("left",),
    "right": ("right",),
    "both": ("both",),
}
SIDE_LABELS = {
    "left,right": "left, then right",
    "right,left": "right, then left",
    "left": "left only",
    "right": "right only",
    "both": "both legs at once",
}


class PrescriptionFormError(ValueError):
    """The form cannot become a prescription; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class MalformedFormError(ValueError):
    """The request is not what the editor sends (a field name it never makes): a 400."""


_ROW_FIELD = re.compile(r"rows-([0-9]{1,3})-([a-z_]{1,16})")  # ASCII digits: "²".isdigit() is True


@dataclasses.dataclass(frozen=True, slots=True)
class FormRow:
    """One editor row as typed (strings), kept to redisplay the form after an error."""

    exercise: str = ""
    order: str = ""
    sets: str = ""
    reps: str = ""
    hold_s: str = ""
    sides: str = "left,right"
    rest_s: str = ""

    @classmethod
    def from_item(cls, item: PrescribedExercise) -> FormRow:
        sides = ",".join(item.sides)
        return cls(
            exercise=item.exercise, order=str(item.order), sets=str(item.sets),
            reps="" if item.reps is None else str(item.reps), hold_s=f"{item.hold_s:g}",
            sides=sides if sides in SIDE_CHOICES else "left,right",
            rest_s="" if item.rest_s is None else f"{item.rest_s:g}",
        )


def rows_from_form(form: Mapping[str, str]) -> list[FormRow]:
    """Collect ``rows-<n>-<field>`` values, in ``n`` order; MalformedFormError names a
    ``rows-`` field the editor never sends."""
    fields = [f.name for f in dataclasses.fields(FormRow)]
    indices = set()
    for key in form:
        if not key.startswith("rows-"):
            continue
        match = _ROW_FIELD.fullmatch(key)
        if match is None or match.group(2) not in fields:
            raise MalformedFormError(f"unexpected form field {key[:80]!r}: reload the editor and try again")
        indices.add(int(match.group(1)))
    indices = sorted(indices)
    return [FormRow(**{name: str(form.get(f"rows-{i}-{name}", "")).strip() for name in fields}) for i in indices]


def _number(text: str, name: str, row: int, problems: list[str], *, integer: bool, optional: bool = False):
    if text == "":
        if not optional:
            problems.append(f"row {row}: {name} is missing")
        return None
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        problems.append(f"row {row}: {name} {text!r} is not a {'whole ' if integer else ''}number")
        return None
    if not math.isfinite(value):
        problems.append(f"row {row}: {name} {text!r} is not a finite number")
        return None
    if value < 0:
        problems.append(f"row {row}: {name} cannot be negative")
        return None
    return value


def items_from_rows(rows: Sequence[FormRow], known_exercises: Mapping[str, object]) -> list[PrescribedExercise]:
    """Typed prescription lines from the editor rows (blank rows skipped), or PrescriptionFormError."""
    problems: list[str] = []
    items = []
    for number, row in enumerate(rows, start=1):
        if not row.exercise:
            continue
        if row.exercise not in known_exercises:
            problems.append(f"row {number}: {row.exercise!r} is not in the catalogue")
            continue
        order = _number(row.order, "order", number, problems, integer=True)
        sets = _number(row.sets, "sets", number, problems, integer=True)
        reps = _number(row.reps, "reps", number, problems, integer=True, optional=True)
        hold_s = _number(row.hold_s or "0", "hold", number, problems, integer=False)
        rest_s = _number(row.rest_s, "rest", number, problems, integer=False, optional=True)
        if row.sides not in SIDE_CHOICES:
            problems.append(f"row {number}: choose the sides")
            continue
        if None in (order, sets, hold_s):
            continue
        if reps is None and not hold_s:
            problems.append(f"row {number}: give reps, or a hold for a timed exercise")
            continue
        items.append(PrescribedExercise(order=order, exercise=row.exercise, sets=sets, reps=reps, hold_s=hold_s,
                                        sides=SIDE_CHOICES[row.sides], rest_s=rest_s))
    if not items and not problems:
        problems.append("choose at least one exercise")
    orders = [item.order for item in items]
    if len(set(orders)) != len(orders):
        problems.append(f"each exercise needs its own order number (got {sorted(orders)})")
    if problems:
        raise PrescriptionFormError(problems)
    return sorted(items, key=lambda item: item.order)


def next_version(engine: Engine, patient: str) -> int:
    with engine.connect() as connection:
        return connection.scalar(
            select(func.coalesce(func.max(prescriptions.c.version), 0)).where(prescriptions.c.patient == patient)
        ) + 1


def _reserve_version(engine: Engine, patient: str, now: dt.datetime, therapist_id: int,
                     build: Callable[[int], Envelope]) -> Envelope:
    """Insert the next version's row, unconfirmed (the primary key makes two saves at once
    take different numbers) and return its envelope. Retries when another save took the
    number first."""
    for _ in range(5):
        version = next_version(engine, patient)
        envelope = build(version)
        try:
            with engine.begin() as connection:
                connection.execute(prescriptions.insert().values(
                    patient=patient, version=version, published_at=now, published_by=therapist_id,
                    payload=envelope.payload.decode("utf-8"), confirmed=False,
                ))
        except IntegrityError:
            continue
        return envelope
    raise PrescriptionFormError(["another save is in progress; try again"])


def publish_prescription(
    engine: Engine,
    patient: str,
    items: Sequence[PrescribedExercise],
    *,
    therapist_id: int,
    publish: Callable[[Envelope], None],
    now: dt.datetime | None = None,
) -> Envelope:
    """Build and record the next version, publish it (retained), and mark it confirmed once
    the broker acknowledged it. If the broker does not, the error is raised and the version
    stays unconfirmed: not in force here, and its number is never reused, because the
    message may still reach the Pi."""
    now = now or dt.datetime.now(dt.timezone.utc)

    def build(version: int) -> Envelope:
        try:
            return build_prescription(patient, version=version, updated_at=now, exercises=items)
        except ProtocolError as exc:
            raise PrescriptionFormError([str(exc)]) from None

    envelope = _reserve_version(engine, patient, now, therapist_id, build)
    publish(envelope)
    version = json.loads(envelope.payload)["version"]
    with engine.begin() as connection:
        connection.execute(update(prescriptions).where(
            prescriptions.c.patient == patient, prescriptions.c.version == version).values(confirmed=True))
    return envelope


def prescription_summary(envelope: Envelope) -> str:
    data = json.loads(envelope.payload)
    return f"version {data['version']}, {len(data['exercises'])} exercises"
