"""The protocol is what a dashboard depends on: it must not pull in the Pi's layers or paho."""

from __future__ import annotations

import ast
from pathlib import Path

import hipsense

PACKAGE = Path(hipsense.__file__).parent
FORBIDDEN_IN_PROTOCOL = ("hipsense.signal", "hipsense.exercises", "hipsense.device", "hipsense.publish", "paho", "numpy", "scipy")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_protocol_imports_only_stdlib_jsonschema_and_itself():
    for path in (PACKAGE / "protocol").rglob("*.py"):
        for name in _imports(path):
            assert not name.startswith(FORBIDDEN_IN_PROTOCOL), f"{path.name} imports {name}"


def test_only_publish_mqtt_imports_paho():
    importers = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if any(name.startswith("paho") for name in _imports(path))
    }
    assert importers <= {"publish/mqtt.py"}
