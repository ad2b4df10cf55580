"""Exercise definitions as frozen, validated values.

An :class:`ExerciseSpec` says what an exercise is (posture, main thigh motion, dose) and how a
single thigh-worn IMU can measure it. The catalogue (``catalogue.toml``) is the data; this module
is only the shape of it. Every value is validated on construction, and errors name the exercise
and the field, so a typo in the TOML points at its own line of thought.

Thigh frame
-----------
All vectors in a spec are expressed in the THIGH frame, a right-handed frame fixed to the thigh::

    x = anterior  (out of the front of the thigh)
    y = superior  (along the thigh's long axis, knee -> hip)
    z = x × y     (= to the person's RIGHT, for both thighs)

The frame is the same for the left and the right thigh (z always points to the person's right),
so one set of numbers cannot describe both legs of a one-sided exercise. Catalogue values are
given for the RIGHT thigh; :meth:`ExerciseSpec.rest_gravity_for` and :meth:`Motion.axis_for`
mirror them for the left thigh (a reflection z -> -z: polar vectors such as gravity flip z,
rotation axes, being pseudo-vectors, flip x and y).

Signs of rotation about thigh-frame axes (right-hand rule), right thigh:

* +z = flexion (knee moves forward/up), -z = extension;
* -x = abduction (knee moves out to the right), +x = adduction;
* +y = internal rotation (front of thigh turns inward), -y = external rotation.

``rest_gravity_thigh`` is the unit direction of gravity ("down") in the thigh frame when the
person is in the starting position: standing ``[0, -1, 0]``; lying on the back or seated with the
thigh horizontal ``[-1, 0, 0]``; lying face down ``[1, 0, 0]``; lying on the left side with the
right leg on top ``[0, 0, -1]``; lying on the back with knees bent and feet flat (thigh ~45° up)
``[-0.707, 0.707, 0]``; on hands and knees (thigh vertical) ``[0, -1, 0]``. An accelerometer at
rest reads the opposite: ``-9.81 * rest_gravity_thigh`` m/s² once rotated into the thigh frame.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from hipsense.errors import ConfigError
from hipsense.exercises.vocabulary import ONE_THIGH, Measure, Thigh

__all__ = [
    "DATASETS",
    "DIRECTIONS",
    "MEASURES",
    "MOTIONS",
    "POSTURES",
    "SENSOR_LEGS",
    "SIDES",
    "SOURCES",
    "DatasetRef",
    "Dose",
    "ExerciseSpec",
    "ExerciseSpecError",
    "Motion",
    "Thresholds",
]

SOURCES = ("seed", "variant")
POSTURES = ("standing", "supine", "prone", "side_lying", "seated", "quadruped", "kneeling")
# How a rep is recognised in the thigh signal:
#   reps     move, (optionally hold), return: one excursion from rest = one rep
#   holds    a sustained position is the point (stretches): counted by held time
#   cycles   the thigh goes round (hip circles): one turn = one cycle, per direction
#   impacts  jumps: one landing spike = one rep
#   steps    walking: one step of the instrumented leg = one rep
#   timed    the thigh barely moves; reported as time spent, honestly not counted
MEASURES = tuple(Measure)
MOTIONS = ("flexion", "extension", "abduction", "adduction", "rotation", "circle", "none")
# Dose sides:
#   each         the dose is per leg: all reps on one side, then switch
#   alternating  legs take turns within a set; reps_min/max count every turn (see dose.note)
#   both         both legs move together (bridge); one count
#   n/a          legs are not the point (press ups)
SIDES = ("each", "alternating", "both", "n/a")
# Which thigh must wear the sensor:
#   moving  the leg that does the work; with one sensor, move it when switching sides
#   either  both thighs move the same way, either one will do
#   left / right  only that thigh gives the signal this definition describes
SENSOR_LEGS = ("moving", "either", "left", "right")
DIRECTIONS = ("clockwise", "counterclockwise")
DATASETS = ("uci-pt", "mex-thigh", "cmu-exercise")

_DOSE_UNITS = {Measure.REPS: "reps", Measure.HOLDS: "holds", Measure.CYCLES: "circles each way",
               Measure.IMPACTS: "jumps", Measure.STEPS: "steps", Measure.TIMED: "reps (timed)"}
_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
_UNIT_TOLERANCE = 1e-3


class ExerciseSpecError(ConfigError):
    """An exercise definition is invalid. ``exercise`` and ``field`` say where."""

    def __init__(self, message: str, *, exercise: str | None = None, field: str | None = None):
        where = []
        if exercise is not None:
            where.append(f"exercise {exercise!r}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message, setting=field)
        self.exercise = exercise
        self.field = field
        self.reason = message

    def within(self, exercise: str | None, parent_field: str | None = None) -> ExerciseSpecError:
        """The same error, located inside ``exercise`` (and a parent table such as ``dose``)."""
        path = self.field
        if parent_field is not None:
            path = f"{parent_field}.{path}" if path else parent_field
        return ExerciseSpecError(self.reason, exercise=exercise or self.exercise, field=path)


# -- small validators: each raises ExerciseSpecError naming the field -------------------------


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ExerciseSpecError(f"{value!r} is not one of {', '.join(allowed)}", field=name)


def _text(name: str, value: Any, *, allow_empty: bool = False) -> None:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise ExerciseSpecError(f"must be a non-empty string (got {value!r})", field=name)


def _number(name: str, value: Any, *, minimum: float, optional: bool = False) -> None:
    if value is None and optional:
        return
    # bool is an int in Python; a TOML `true` where a number belongs is a mistake.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ExerciseSpecError(f"must be a number (got {value!r})", field=name)
    if value < minimum:
        raise ExerciseSpecError(f"must be >= {minimum:g} (got {value!r})", field=name)


def _integer(name: str, value: Any, *, minimum: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ExerciseSpecError(f"must be a whole number (got {value!r})", field=name)
    if value < minimum:
        raise ExerciseSpecError(f"must be >= {minimum} (got {value!r})", field=name)


def _ordered(low_name: str, low: float | None, high_name: str, high: float | None) -> None:
    if (low is None) != (high is None):
        raise ExerciseSpecError(f"give both {low_name} and {high_name}, or neither",
                                field=high_name)
    if low is not None and high is not None and low > high:
        raise ExerciseSpecError(f"must be >= {low_name} ({low!r}), got {high!r}", field=high_name)


def _unit_vector(name: str, value: Any) -> None:
    ok = (
        isinstance(value, tuple)
        and len(value) == 3
        and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in value)
    )
    if not ok:
        raise ExerciseSpecError(f"must be 3 numbers [x, y, z] (got {value!r})", field=name)
    norm = math.sqrt(sum(c * c for c in value))
    if abs(norm - 1.0) > _UNIT_TOLERANCE:
        raise ExerciseSpecError(f"must be a unit vector (norm is {norm:.4f})", field=name)


def _mirror_polar(v: tuple[float, float, float]) -> tuple[float, float, float]:
    # Reflection through the sagittal plane (z -> -z) for an ordinary vector.
    return (v[0], v[1], -v[2])


def _mirror_axial(v: tuple[float, float, float]) -> tuple[float, float, float]:
    # A rotation axis is a pseudo-vector: under a reflection it also changes sign, so z stays.
    return (-v[0], -v[1], v[2])


def _check_side(side: str) -> None:
    if side not in ONE_THIGH:
        raise ValueError(f"side must be 'left' or 'right' (got {side!r})")


# -- the value types ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Dose:
    """The default prescription. ``None`` means "not prescribed" (e.g. no hold)."""

    sides: str
    reps_min: int | None = None
    reps_max: int | None = None
    sets: int | None = None
    hold_s_min: float | None = None
    hold_s_max: float | None = None
    # True when the numbers come from the seed article; False for our own defaults.
    from_article: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        _one_of("sides", self.sides, SIDES)
        _integer("reps_min", self.reps_min, minimum=1, optional=True)
        _integer("reps_max", self.reps_max, minimum=1, optional=True)
        _ordered("reps_min", self.reps_min, "reps_max", self.reps_max)
        _integer("sets", self.sets, minimum=1, optional=True)
        _number("hold_s_min", self.hold_s_min, minimum=0.0, optional=True)
        _number("hold_s_max", self.hold_s_max, minimum=0.0, optional=True)
        _ordered("hold_s_min", self.hold_s_min, "hold_s_max", self.hold_s_max)
        if not isinstance(self.from_article, bool):
            raise ExerciseSpecError("must be true or false", field="from_article")
        _text("note", self.note, allow_empty=True)

    def describe(self, unit: str = "reps") -> str:
        """A short human summary, e.g. ``15-20 reps, hold 2-5 s, both legs``."""
        parts = []
        if self.reps_min is not None:
            if self.reps_min == self.reps_max == 1 and unit.endswith("s"):
                unit = unit[:-1]  # "1 hold", not "1 holds"
            parts.append(f"{_span(self.reps_min, self.reps_max)} {unit}")
        if self.sets is not None:
            parts.append(f"{self.sets} sets")
        if self.hold_s_min is not None:
            parts.append(f"hold {_span(self.hold_s_min, self.hold_s_max)} s")
        parts.append({"each": "each side", "alternating": "alternating sides",
                      "both": "both legs", "n/a": ""}[self.sides])
        return ", ".join(p for p in parts if p)


def _span(low: float, high: float | None) -> str:
    return f"{low:g}" if high is None or high == low else f"{low:g}-{high:g}"


@dataclass(frozen=True)
class Motion:
    """The main movement of the thigh, for the RIGHT thigh (see the module docstring).

    ``axis_thigh`` is the unit rotation axis in the thigh frame whose positive rotation is the
    working direction (e.g. ``[0, 0, 1]`` for flexion). For ``circle`` it is the axis the knee
    circles around (the thigh's long axis at the centre of the circle); for ``none`` any unit
    vector; "counterclockwise" is a positive rotation about it (right-hand rule: seen from the
    hip looking down the thigh), so mirrored legs circling mirror-wise share a direction name.
    ``rom_deg_min``/``rom_deg_max`` is the typical excursion from rest (for circles: the
    cone's full angular diameter). ``bidirectional`` means reps go both ways from rest (side to
    side); ``directions`` lists the circling directions for cycles.
    """

    kind: str
    axis_thigh: tuple[float, float, float]
    rom_deg_min: float
    rom_deg_max: float
    bidirectional: bool = False
    directions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _one_of("kind", self.kind, MOTIONS)
        _unit_vector("axis_thigh", self.axis_thigh)
        _number("rom_deg_min", self.rom_deg_min, minimum=0.0)
        _number("rom_deg_max", self.rom_deg_max, minimum=0.0)
        _ordered("rom_deg_min", self.rom_deg_min, "rom_deg_max", self.rom_deg_max)
        if self.rom_deg_max > 180.0:
            raise ExerciseSpecError("must be <= 180", field="rom_deg_max")
        if not isinstance(self.bidirectional, bool):
            raise ExerciseSpecError("must be true or false", field="bidirectional")
        for d in self.directions:
            _one_of("directions", d, DIRECTIONS)
        if self.kind == "circle" and not self.directions:
            raise ExerciseSpecError("a circle needs at least one direction", field="directions")
        if self.kind != "circle" and self.directions:
            raise ExerciseSpecError("only a circle has directions", field="directions")

    def axis_for(self, side: str) -> tuple[float, float, float]:
        """The working axis for the ``"left"`` or ``"right"`` thigh."""
        _check_side(side)
        return self.axis_thigh if side == "right" else _mirror_axial(self.axis_thigh)


@dataclass(frozen=True)
class Thresholds:
    """What the counter needs. ``None`` = the check does not apply to this exercise."""

    min_rom_deg: float  # smallest excursion from rest that still counts as a rep
    too_fast_s: float | None = None  # reps shorter than this are flagged as too fast
    hold_min_s: float | None = None  # a hold shorter than this is flagged as short
    impacts_per_rep: int = 1  # landings per rep (a half jack lands twice: out and back in)
    # (No per-exercise shortest rep: the rep kernel's bounce guard is one for every exercise,
    # RepSettings.min_rep_s 0.4 s, and a rebound off the mat is told by its shape, bounce_*.)

    def __post_init__(self) -> None:
        _number("min_rom_deg", self.min_rom_deg, minimum=0.0)
        _integer("impacts_per_rep", self.impacts_per_rep, minimum=1)
        _number("too_fast_s", self.too_fast_s, minimum=0.0, optional=True)
        _number("hold_min_s", self.hold_min_s, minimum=0.0, optional=True)


@dataclass(frozen=True)
class DatasetRef:
    """Where a public data set contains this exercise (evaluation.md's mapping table)."""

    dataset: str
    recording: str  # e.g. "e3" (UCI) or "02" (MEx)
    sensor_side: Thigh = Thigh.EITHER  # which thigh the data set's sensor was on
    note: str = ""

    def __post_init__(self) -> None:
        _one_of("dataset", self.dataset, DATASETS)
        _text("recording", self.recording)
        _one_of("sensor_side", self.sensor_side, tuple(Thigh))
        _text("note", self.note, allow_empty=True)


@dataclass(frozen=True)
class ExerciseSpec:
    """One exercise: what it is, its default dose, and what a thigh IMU can measure of it."""

    id: str
    name: str
    source: str
    posture: str
    sensor_leg: str
    measure: Measure  # a plain string is taken and kept as its Measure
    rest_gravity_thigh: tuple[float, float, float]
    motion: Motion
    dose: Dose
    thresholds: Thresholds
    can_see: str
    cannot_see: str
    instructions: tuple[str, ...]
    datasets: tuple[DatasetRef, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _ID_PATTERN.match(self.id):
            raise ExerciseSpecError(
                "an id is lower-case letters, digits and '_', starting with a letter",
                exercise=str(self.id), field="id")
        try:
            self._validate()
        except ExerciseSpecError as error:
            raise error.within(self.id) from None
        object.__setattr__(self, "measure", Measure(self.measure))

    def _validate(self) -> None:
        _text("name", self.name)
        _one_of("source", self.source, SOURCES)
        _one_of("posture", self.posture, POSTURES)
        _one_of("sensor_leg", self.sensor_leg, SENSOR_LEGS)
        _one_of("measure", self.measure, MEASURES)
        _unit_vector("rest_gravity_thigh", self.rest_gravity_thigh)
        for name, value, kind in (("motion", self.motion, Motion), ("dose", self.dose, Dose),
                                  ("thresholds", self.thresholds, Thresholds)):
            if not isinstance(value, kind):
                raise ExerciseSpecError(f"must be a {kind.__name__}", field=name)
        _text("can_see", self.can_see)
        _text("cannot_see", self.cannot_see)
        if not self.instructions:
            raise ExerciseSpecError("give at least one instruction step", field="instructions")
        for step in self.instructions:
            _text("instructions", step)
        for ref in self.datasets:
            if not isinstance(ref, DatasetRef):
                raise ExerciseSpecError("must be DatasetRef values", field="datasets")
        # Cross-field rules: the counter relies on these being coherent.
        if self.measure == Measure.CYCLES and self.motion.kind != "circle":
            raise ExerciseSpecError("measure 'cycles' needs motion kind 'circle'", field="measure")
        if self.measure == Measure.TIMED and self.thresholds.min_rom_deg != 0:
            # A timed exercise is not counted, so a rep threshold would be a false promise.
            raise ExerciseSpecError("a timed exercise has min_rom_deg = 0",
                                    field="thresholds.min_rom_deg")
        if self.measure == Measure.HOLDS and self.thresholds.hold_min_s is None:
            raise ExerciseSpecError("measure 'holds' needs a hold_min_s",
                                    field="thresholds.hold_min_s")
        if self.thresholds.min_rom_deg > self.motion.rom_deg_max:
            raise ExerciseSpecError(
                f"{self.thresholds.min_rom_deg:g} is above the motion's rom_deg_max "
                f"({self.motion.rom_deg_max:g}); no rep could ever count",
                field="thresholds.min_rom_deg")

    def rest_gravity_for(self, side: str) -> tuple[float, float, float]:
        """Gravity at rest in the thigh frame of the ``"left"`` or ``"right"`` thigh."""
        _check_side(side)
        if side == "right":
            return self.rest_gravity_thigh
        return _mirror_polar(self.rest_gravity_thigh)

    def describe_dose(self) -> str:
        """The default dose in words, with the unit this exercise is counted in."""
        return self.dose.describe(_DOSE_UNITS[self.measure])

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (tuples become lists)."""
        return asdict(self)
