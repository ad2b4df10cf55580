"""The exercise list the dashboard reads (``hipsense/protocol/exercises.json``) is the catalogue's.

The dashboard may not import the exercises layer (import-linter), so the ids, names and doses
its prescription editor offers are shipped as data. When the catalogue's names or doses change,
regenerate the file: ``HIPSENSE_REGENERATE=1 python -m pytest tests/exercises/test_catalogue_export.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import hipsense.protocol
from hipsense.exercises.catalogue import load_catalogue
from hipsense.protocol.exercise_list import RESOURCE, OfferedExercise, load_exercise_list

EXPORT = Path(hipsense.protocol.__file__).parent / RESOURCE
HEADER = "hipsense/exercises/catalogue.toml (Catalogue.offered); do not edit by hand"


def test_the_shipped_exercise_list_is_the_catalogues():
    expected = {"generated_from": HEADER, "exercises": load_catalogue().offered()}
    if os.environ.get("HIPSENSE_REGENERATE"):
        EXPORT.write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    assert json.loads(EXPORT.read_text(encoding="utf-8")) == expected, (
        f"{EXPORT} is stale: regenerate it with HIPSENSE_REGENERATE=1 python -m pytest {__file__}")


def test_the_dashboard_reads_every_catalogue_exercise_by_id_name_and_dose():
    catalogue = load_catalogue()
    offered = load_exercise_list()
    assert list(offered) == list(catalogue)
    for exercise_id, spec in catalogue.items():
        assert offered[exercise_id] == OfferedExercise(exercise_id, spec.name, spec.describe_dose())
