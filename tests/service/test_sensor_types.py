"""Every registered sensor type through ``hipsense run``'s configuration path.

The sensor registry (:data:`hipsense.device.decoders.DECODERS`) is the one place a sensor type
is named: the config validator accepts exactly its names and rates, and with
``backend = "emulator"`` the real ``hipsense run`` process finds the emulated sensor by scanning
for what the registry says that type advertises (no address configured, as on a fresh Pi),
connects, configures its rate, streams, and the reps reach a real Mosquitto.
"""

from __future__ import annotations

import pytest

from hipsense import protocol as p
from hipsense.device.decoders import DECODERS
from hipsense.device.emulator import EMULATORS
from hipsense.errors import ConfigError
from hipsense.protocol import MessageKind
from hipsense.service.config import config_from_mapping
from tests.service.conftest import PATIENT, Dashboard, prescription, wait_until

MQTT = {"host": "localhost", "patient_id": PATIENT}


def test_the_validator_accepts_exactly_the_registered_types_at_their_default_rates():
    for sensor_type, decoder in DECODERS.items():
        (sensor,) = config_from_mapping({"mqtt": MQTT, "sensor": {"type": sensor_type}}).sensors
        assert (sensor.type, sensor.rate_hz) == (sensor_type, decoder.default_rate_hz)
        assert decoder.default_rate_hz in decoder.rates_hz
    with pytest.raises(ConfigError, match="must be one of witmotion, polar, movella_dot, metamotion, got 'polar_pmd'"):
        config_from_mapping({"mqtt": MQTT, "sensor": {"type": "polar_pmd"}})


@pytest.mark.parametrize("sensor_type", sorted(DECODERS))
def test_a_rate_the_sensor_type_cannot_stream_is_refused_by_name(sensor_type):
    decoder = DECODERS[sensor_type]
    bad = max(decoder.rates_hz) + 1
    with pytest.raises(ConfigError, match=rf"sensor.rate_hz: {decoder.display_name} supports .* got {bad}"):
        config_from_mapping({"mqtt": MQTT, "sensor": {"type": sensor_type, "rate_hz": bad}})


def test_every_registered_type_can_be_emulated():
    assert sorted(EMULATORS) == sorted(DECODERS)


@pytest.mark.slow
@pytest.mark.parametrize("sensor_type", sorted(DECODERS))
def test_hipsense_run_scans_connects_and_counts_with_every_registered_type(sensor_type, broker, service_factory):
    service = service_factory(broker, sensor_type=sensor_type)
    with Dashboard(broker) as dashboard:
        dashboard.publish(p.build_topic(MessageKind.PRESCRIPTION, PATIENT), prescription().payload)
        service.start()
        try:
            wait_until(lambda: len(dashboard.events(MessageKind.REP)) >= 5, 60, f"reps from the emulated {sensor_type}")
        finally:
            assert service.terminate() == 0, service.log_path.read_text()[-3000:]
    (started,) = service.logged("emulated sensor started")
    assert started["type"] == sensor_type
    connected = service.logged("sensor connected")
    assert connected and started["address"] in connected[0]["detail"]  # found by scanning, not told
    reps = dashboard.events(MessageKind.REP)
    assert {m.data["exercise"] for m in reps} == {"straight_leg_raise"}
