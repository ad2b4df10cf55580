"""Load the exercise catalogue from TOML.

The catalogue is data: ``catalogue.toml`` next to this module holds one table per exercise,
``[exercise.<id>]`` with sub-tables ``motion``, ``dose`` and ``thresholds``. Adding an exercise
means adding a table; no code changes. Every key is checked: an unknown key (a typo) or a bad
value raises :class:`~hipsense.exercises.spec.ExerciseSpecError` naming the exercise and field.

Only the standard library is used here (``tomllib``), so the catalogue loads on a Pi Zero without
the BLE or MQTT stacks.
"""

from __future__ import annotations

import functools
import json
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import fields
from importlib import resources
from pathlib import Path
from typing import Any

from hipsense.errors import ConfigError
from hipsense.exercises.spec import (
    DatasetRef,
    Dose,
    ExerciseSpec,
    ExerciseSpecError,
    Motion,
    Thresholds,
)

__all__ = ["SCHEMA_VERSION", "Catalogue", "UnknownExerciseError", "get_exercise", "load_catalogue",
           "load_evidence"]

SCHEMA_VERSION = 1
_DEFAULT_RESOURCE = "catalogue.toml"
# What each exercise's figures rest on: generated from the evaluation reports by
# `hipsense eval-report` (hipsense/evaluation/accuracy.py), together with docs/accuracy.md.
_EVIDENCE_RESOURCE = "evidence.json"


@functools.lru_cache(maxsize=1)
def load_evidence() -> dict[str, dict[str, Any]]:
    """Exercise id → how it is measured, the real data it was measured on (or synthetic only)
    and its figures there. Empty when the file was never generated."""
    resource = resources.files("hipsense.exercises").joinpath(_EVIDENCE_RESOURCE)
    try:
        document = json.loads(resource.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise ConfigError(f"exercise evidence {resource} is unreadable: {error}") from error
    return dict(document.get("exercises", {}))


class UnknownExerciseError(ConfigError, KeyError):
    """No exercise has this id. A ``KeyError`` too, so ``Mapping.get`` and ``in`` behave."""

    def __init__(self, exercise_id: str, valid_ids: list[str]) -> None:
        message = f"unknown exercise id {exercise_id!r}; valid ids: {', '.join(valid_ids)}"
        super().__init__(message, setting="exercise")
        self.exercise_id = exercise_id
        self.valid_ids = tuple(valid_ids)

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


class Catalogue(Mapping[str, ExerciseSpec]):
    """Exercise id -> :class:`ExerciseSpec`, in the order of the TOML file. Read-only."""

    def __init__(self, specs: Mapping[str, ExerciseSpec], *, source: str = "") -> None:
        self._specs = dict(specs)
        self.source = source  # where it was loaded from, for messages

    def __getitem__(self, exercise_id: str) -> ExerciseSpec:
        try:
            return self._specs[exercise_id]
        except KeyError:
            raise UnknownExerciseError(exercise_id, list(self._specs)) from None

    def __contains__(self, exercise_id: object) -> bool:
        return exercise_id in self._specs

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"Catalogue({len(self)} exercises from {self.source or '<memory>'})"

    def to_dict(self) -> dict[str, Any]:
        """The whole catalogue as JSON-ready data; each exercise carries its ``evidence``
        (:func:`load_evidence`; ``None`` for an exercise never measured)."""
        evidence = load_evidence()
        return {
            "schema_version": SCHEMA_VERSION,
            "exercises": {eid: {**spec.to_dict(), "evidence": evidence.get(eid)}
                          for eid, spec in self._specs.items()},
        }

    def offered(self) -> list[dict[str, str]]:
        """What a prescription editor offers, in catalogue order: id, name and default dose.

        Shipped as data (``hipsense/protocol/exercises.json``) so that a dashboard can read
        the list without importing the exercises layer; a test keeps the file in step.
        """
        return [{"id": eid, "name": spec.name, "dose": spec.describe_dose()} for eid, spec in self._specs.items()]


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Read and validate a catalogue file; ``None`` = the one shipped with hipsense.

    Raises :class:`ConfigError` for an unreadable or malformed file, and
    :class:`ExerciseSpecError` (a ``ConfigError``) for an invalid definition.
    """
    if path is None:
        resource = resources.files("hipsense.exercises").joinpath(_DEFAULT_RESOURCE)
        return _parse(resource.read_text(encoding="utf-8"), source=str(resource))
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read exercise catalogue {path}: {error}") from error
    return _parse(text, source=str(path))


@functools.lru_cache(maxsize=1)
def _default_catalogue() -> Catalogue:
    return load_catalogue()


def get_exercise(exercise_id: str, catalogue: Catalogue | None = None) -> ExerciseSpec:
    """The spec for ``exercise_id`` (from the shipped catalogue unless one is given).

    Raises :class:`UnknownExerciseError` listing the valid ids.
    """
    return (catalogue if catalogue is not None else _default_catalogue())[exercise_id]


# -- parsing ------------------------------------------------------------------------------------


def _parse(text: str, *, source: str) -> Catalogue:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:  # its message carries line and column
        raise ConfigError(f"exercise catalogue {source} is not valid TOML: {error}") from error

    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ConfigError(
            f"exercise catalogue {source}: schema_version must be {SCHEMA_VERSION} "
            f"(got {version!r})", setting="schema_version")
    _reject_unknown(document, {"schema_version", "exercise"}, exercise=None, section=None)
    tables = document.get("exercise")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"exercise catalogue {source} defines no [exercise.<id>] tables",
                          setting="exercise")

    specs = {exercise_id: _spec_from_table(exercise_id, table)
             for exercise_id, table in tables.items()}
    return Catalogue(specs, source=source)


_SECTIONS: dict[str, type] = {"motion": Motion, "dose": Dose, "thresholds": Thresholds}
# Keys of an exercise table that are not plain fields, or whose TOML form differs.
_TUPLE_FIELDS = {"rest_gravity_thigh", "instructions", "axis_thigh", "directions"}


def _spec_from_table(exercise_id: str, table: Any) -> ExerciseSpec:
    if not isinstance(table, dict):
        raise ExerciseSpecError("must be a table", exercise=exercise_id)
    expected = {f.name for f in fields(ExerciseSpec)} - {"id"}
    _reject_unknown(table, expected, exercise=exercise_id, section=None)
    required = {f.name for f in fields(ExerciseSpec) if f.name not in ("id", "datasets")}
    missing = sorted(required - table.keys())
    if missing:
        raise ExerciseSpecError("is missing", exercise=exercise_id, field=missing[0])

    values: dict[str, Any] = {}
    for name, value in table.items():
        if name in _SECTIONS:
            values[name] = _section(exercise_id, name, _SECTIONS[name], value)
        elif name == "datasets":
            values[name] = tuple(_dataset_ref(exercise_id, i, ref) for i, ref in enumerate(value))
        else:
            values[name] = _tuple_if_list(name, value)
    return ExerciseSpec(id=exercise_id, **values)


def _section(exercise_id: str, name: str, kind: type, table: Any) -> Any:
    if not isinstance(table, dict):
        raise ExerciseSpecError("must be a table", exercise=exercise_id, field=name)
    _reject_unknown(table, {f.name for f in fields(kind)}, exercise=exercise_id, section=name)
    try:
        return kind(**{key: _tuple_if_list(key, value) for key, value in table.items()})
    except ExerciseSpecError as error:
        raise error.within(exercise_id, name) from None
    except TypeError as error:  # a required key is missing
        raise ExerciseSpecError(f"incomplete table: {error}", exercise=exercise_id,
                                field=name) from None


def _dataset_ref(exercise_id: str, index: int, table: Any) -> DatasetRef:
    where = f"datasets[{index}]"
    if not isinstance(table, dict):
        raise ExerciseSpecError("must be a table", exercise=exercise_id, field=where)
    expected = {f.name for f in fields(DatasetRef)}
    _reject_unknown(table, expected, exercise=exercise_id, section=where)
    try:
        return DatasetRef(**table)
    except ExerciseSpecError as error:
        raise error.within(exercise_id, where) from None
    except TypeError as error:
        raise ExerciseSpecError(f"incomplete table: {error}", exercise=exercise_id,
                                field=where) from None


def _tuple_if_list(name: str, value: Any) -> Any:
    # TOML arrays arrive as lists; frozen specs hold tuples so they stay hashable and immutable.
    return tuple(value) if name in _TUPLE_FIELDS and isinstance(value, list) else value


def _reject_unknown(mapping: dict[str, Any], expected: set[str], *, exercise: str | None,
                    section: str | None) -> None:
    # Unknown keys are almost always typos ("hold_min" for "hold_min_s"); silently ignoring
    # them would drop a therapist's setting without a word.
    for key in mapping:
        if key not in expected:
            where = f"{section}.{key}" if section else key
            raise ExerciseSpecError(
                f"unknown key; expected one of {', '.join(sorted(expected))}",
                exercise=exercise, field=where)
