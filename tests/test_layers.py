"""Imports follow the layers: signal/ imports only numpy/scipy (and harmless stdlib), device/
knows nothing of signal/ or exercises/, exercises/ builds on signal/ only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "hipsense"
SIGNAL_ALLOWED = {"numpy", "scipy", "math", "copy", "dataclasses", "typing", "__future__", "collections", "statistics"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((PKG / "signal").rglob("*.py")), ids=lambda p: p.name)
def test_signal_imports_only_numpy_and_scipy(path):
    bad = {n for n in _imports(path) if n.split(".")[0] not in SIGNAL_ALLOWED}
    assert not bad, f"{path.name} imports {bad}: signal/ has no clocks, I/O, logging or hipsense layers"


@pytest.mark.parametrize("path", sorted((PKG / "device").rglob("*.py")), ids=lambda p: p.name)
def test_device_knows_nothing_of_signal_or_exercises(path):
    bad = {n for n in _imports(path) if n.startswith(("hipsense.signal", "hipsense.exercises"))}
    assert not bad


@pytest.mark.parametrize("path", sorted((PKG / "exercises").rglob("*.py")), ids=lambda p: p.name)
def test_exercises_build_on_signal_only(path):
    bad = {n for n in _imports(path) if n.startswith(("hipsense.device", "hipsense.protocol", "hipsense.publish", "click", "paho", "bleak"))}
    assert not bad
