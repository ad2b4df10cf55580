from __future__ import annotations

import pytest

from tests.protocol.broker import MOSQUITTO, Mosquitto

PI_PATIENT, PI_PASSWORD = "p-0001", "pi-secret"


@pytest.fixture
def broker(tmp_path):
    """A running mosquitto with its own config; stopped by PID at teardown."""
    if MOSQUITTO is None:
        pytest.skip("mosquitto binary not found (apt-get install mosquitto); MQTT integration tests need a real broker")
    workdir = tmp_path / "broker"
    workdir.mkdir()
    server = Mosquitto(workdir, patients={PI_PATIENT: PI_PASSWORD})
    server.start()
    yield server
    server.stop()
