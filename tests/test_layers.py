"""The layers hold, checked by a tool: import-linter's contracts in ``pyproject.toml``.

signal/ imports no other hipsense package (nor I/O, clocks or logging); device/ knows nothing
of signal/ or exercises/; exercises/ builds on signal/ only; protocol/ and the dashboard stay
off the Pi's layers; only publish/mqtt.py imports paho. import-linter reads the import graph
(relative imports included, unlike a grep of ``import`` lines), and checks indirect chains too.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "hipsense"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    if not LINT_IMPORTS.exists():
        pytest.fail("lint-imports is missing: pip install -e '.[dev]' (import-linter is in the dev extra)")
    # Run from ``root`` so that the hipsense found first is the one under it, not the installed one.
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
                          cwd=root, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)})


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


def test_every_layer_contract_is_kept():
    result = _lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_relative_import_across_layers_breaks_a_contract(tmp_path):
    # The case that hand-written import tests missed: a relative import from signal/ into device/.
    shutil.copytree(PKG, tmp_path / "hipsense", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    cycles = tmp_path / "hipsense" / "signal" / "cycles.py"
    cycles.write_text(cycles.read_text() + "\nfrom ..device.samples import ImuSamples  # noqa: E402,F401\n")
    result = _lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "hipsense.signal is not allowed to import hipsense.device" in result.stdout
    assert "hipsense.signal.cycles -> hipsense.device.samples" in result.stdout


@pytest.mark.parametrize("contract_id", ["signal", "protocol"])
def test_self_contained_layers_forbid_every_other_top_level_module(contract_id):
    # A package added later is covered too: the list must name every sibling.
    siblings = {f"hipsense.{p.stem if p.is_file() else p.name}" for p in PKG.iterdir()
                if (p.suffix == ".py" and p.stem not in ("__init__", "__main__"))
                or (p.is_dir() and (p / "__init__.py").exists())}
    contract = _contracts()[contract_id]
    (source,) = contract["source_modules"]
    shared = {"hipsense.errors"} if contract_id == "protocol" else set()
    missing = siblings - {source} - shared - set(contract["forbidden_modules"])
    assert not missing, f"add {sorted(missing)} to the {contract_id!r} contract's forbidden_modules"


def test_no_module_in_the_package_is_run_as_a_script():
    # hipsense.signal shares its name with the standard library's signal: a module run as a
    # script (``python hipsense/cli.py``) would put hipsense/ first on sys.path and break every
    # ``import signal``. Entry points are ``hipsense`` and ``python -m hipsense`` only.
    scripts = []
    for path in PKG.rglob("*.py"):
        if path.name == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id == "__name__":
                scripts.append(str(path.relative_to(REPO)))
    assert not scripts


def test_no_top_level_module_shadows_the_standard_library():
    # What ``python -m pytest`` / ``python benchmarks/x.py`` put on sys.path: the repository
    # root, and a directory of scripts that is not a package (benchmarks/). A file there named
    # like a stdlib module would hide it. (tests/ is a package: tests/signal is tests.signal.)
    found = set()
    for directory in (REPO, *(d for d in (REPO / "tests", REPO / "benchmarks") if not (d / "__init__.py").exists())):
        for path in directory.iterdir():
            name = path.stem if path.suffix == ".py" else path.name
            if path.suffix == ".py" or (path.is_dir() and (path / "__init__.py").exists()):
                found.add((str(path.relative_to(REPO)), name))
    shadowing = sorted(where for where, name in found if name in sys.stdlib_module_names)
    assert not shadowing, f"{shadowing} shadow standard library modules"
    assert ("hipsense", "hipsense") in found  # the walk saw the package itself


def test_the_readme_layout_lists_every_package_and_loose_module():
    readme = (REPO / "README.md").read_text()
    layout = readme[readme.index("## Layout"):readme.index("```", readme.index("```", readme.index("## Layout")) + 3)]
    listed = {line.split()[0].rstrip("/") for line in layout.splitlines() if line.startswith("hipsense/")}
    present = {f"hipsense/{p.name}" for p in PKG.iterdir()
               if (p.is_dir() and ((p / "__init__.py").exists() or p.name == "data"))
               or (p.suffix == ".py" and p.stem not in ("__init__", "__main__"))}
    assert present - listed == set(), f"add these to README's Layout: {sorted(present - listed)}"
    assert listed - present == set(), f"README's Layout lists what is gone: {sorted(listed - present)}"
