"""The recogniser's sliding window and the exercises its shipped model knows: cheap to import.

The service's switcher (:mod:`hipsense.service.switching`) reads these to decide whether a plan
needs the recogniser at all, without loading it (:mod:`.recognition` keeps its model and
feature code for when it does). One definition, used by both.
"""

from __future__ import annotations

import json
from importlib import resources

__all__ = ["HOP_S", "WINDOW_S", "model_classes"]

WINDOW_S = 15.0
"""Seconds of data in each recognition window."""
HOP_S = 5.0
"""Seconds between windows."""


def model_classes() -> frozenset[str]:
    """The exercises the shipped recognition model knows (``recognition_model.json``'s classes)."""
    text = resources.files("hipsense.exercises").joinpath("recognition_model.json").read_text()
    return frozenset(json.loads(text)["classes"])
