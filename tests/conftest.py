"""Shared fixtures: the real recordings shipped under tests/data (see their README for the
citation)."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(scope="session")
def uci_dir() -> Path:
    return DATA / "uci-pt"


@pytest.fixture(scope="session")
def uci_s1_e3():
    from hipsense.evaluation.uci import read_uci_file

    return read_uci_file(DATA / "uci-pt" / "s1" / "e3" / "u3" / "test.txt.gz")
