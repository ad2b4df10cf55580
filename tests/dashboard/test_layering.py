"""The dashboard knows the Pi only through the protocol (and reads the catalogue as data)."""

from __future__ import annotations

import ast
from pathlib import Path

import hipsense

DASHBOARD = Path(hipsense.__file__).parent / "dashboard"
PI_SIDE = ("hipsense.signal", "hipsense.device", "hipsense.exercises", "hipsense.service", "paho", "numpy", "scipy")
ALLOWED = {"hipsense.exercises.catalogue"}  # exercise ids and names for the prescription editor


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_dashboard_imports_nothing_of_the_pi_side():
    files = sorted(DASHBOARD.rglob("*.py"))
    assert len(files) > 10
    for path in files:
        bad = {n for n in _imports(path) if n.startswith(PI_SIDE) and n not in ALLOWED}
        assert not bad, f"{path.relative_to(DASHBOARD)} imports {bad}"
