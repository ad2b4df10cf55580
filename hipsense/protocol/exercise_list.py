"""The exercises a prescription may name, as data: what the dashboard's editor offers.

``exercises.json`` next to this module is exported from the exercise catalogue
(:meth:`hipsense.exercises.catalogue.Catalogue.offered`; ``tests/exercises/test_catalogue.py``
checks it is current), so a dashboard knows the ids, names and default doses without
importing the exercises layer or its numpy/scipy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

__all__ = ["OfferedExercise", "load_exercise_list"]

RESOURCE = "exercises.json"


@dataclass(frozen=True, slots=True)
class OfferedExercise:
    """One exercise a prescription may name."""

    id: str
    name: str
    dose: str
    """The default dose in words, e.g. ``"3 sets of 10 reps, hold 2 s"``."""


def load_exercise_list() -> dict[str, OfferedExercise]:
    """Exercise id → :class:`OfferedExercise`, in catalogue order."""
    text = resources.files("hipsense.protocol").joinpath(RESOURCE).read_text(encoding="utf-8")
    return {row["id"]: OfferedExercise(row["id"], row["name"], row["dose"]) for row in json.loads(text)["exercises"]}
