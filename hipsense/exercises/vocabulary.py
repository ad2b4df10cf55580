"""The words of the exercise layer, each defined once: how an exercise is measured, which thigh
wears the sensor, what kind of repetition the tracker counted, and the form flags it puts on one.

String-valued enums (:class:`enum.StrEnum`): a member equals its string, so the catalogue (TOML),
its JSON export, the MQTT results and the tests read exactly as before. The form flags travel in
the results' ``flags``; the wire's list of known flags is :class:`hipsense.protocol.Flag`
(``protocol`` cannot import this layer, nor this layer ``protocol``; a test checks every form
flag is one of them).
"""

from __future__ import annotations

import enum

__all__ = ["ONE_THIGH", "FormFlag", "Measure", "RepKind", "Thigh"]


class Measure(enum.StrEnum):
    """How an exercise is measured (``measure`` in ``catalogue.toml``)."""

    REPS = "reps"
    """Repetitions away from a rest pose and back."""
    HOLDS = "holds"
    """Stretches: each hold away from rest counts, with its duration."""
    CYCLES = "cycles"
    """Circles of the thigh, per direction."""
    IMPACTS = "impacts"
    """Landings (hops, jumps)."""
    STEPS = "steps"
    """Steps (walking, step-ups)."""
    TIMED = "timed"
    """Nothing a thigh can count (press-ups): timed, one hold a set."""


class Thigh(enum.StrEnum):
    """Which thigh wears a sensor (the tracker's ``side``, the service's ``sensor.side``)."""

    LEFT = "left"
    RIGHT = "right"
    EITHER = "either"
    """One sensor that the patient moves to the leg being trained."""


ONE_THIGH = (Thigh.LEFT, Thigh.RIGHT)
"""The thighs a sensor can be on at a given moment (what ``either`` resolves to)."""


class RepKind(enum.StrEnum):
    """What one counted repetition is (``RepResult.kind``), from the exercise's measure."""

    REP = "rep"
    HOLD = "hold"
    CYCLE = "cycle"
    IMPACT = "impact"
    STEP = "step"


class FormFlag(enum.StrEnum):
    """The tracker's judgement of one repetition's form (``RepResult.flags``; the rules are in
    :mod:`hipsense.exercises.tracker`'s docstring)."""

    TOO_FAST = "too_fast"
    """Quicker than the exercise's ``too_fast_s``, or under 1 s of a prescribed hold."""
    SHORT_HOLD = "short_hold"
    """Held for less than ``short_hold_fraction`` of the prescribed hold."""
    LOW_ROM = "low_rom"
    """Range of motion below ``low_rom_fraction`` of the reference range."""
    INCOMPLETE = "incomplete"
    """Below half the reference range."""
