"""Shared fixtures: the real recordings shipped under tests/data (see their README for the
citation), and the one real Mosquitto the MQTT tests run against."""

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


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """A throw-away CA and a server certificate for 127.0.0.1 (tests/pki.py), for the TLS tests."""
    from tests.pki import make_pki

    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def broker_patients() -> dict[str, str]:
    """The Pi accounts (patient id → password) the test broker knows; a folder's conftest may
    override it (tests/dashboard has three patients)."""
    return {"p-0001": "pi-secret"}


@pytest.fixture
def broker(tmp_path: Path, broker_patients: dict[str, str]):
    """A running Mosquitto with its own config and per-patient ACL on a free port; stopped by
    PID at teardown. Skipped (with the reason) where no mosquitto binary is installed."""
    from tests.mosquitto import MOSQUITTO, Mosquitto

    if MOSQUITTO is None:
        pytest.skip("mosquitto binary not found (apt-get install mosquitto); MQTT tests need a real broker")
    workdir = tmp_path / "broker"
    workdir.mkdir()
    server = Mosquitto(workdir, patients=broker_patients)
    server.start()
    yield server
    server.stop()

