"""Every registered sensor type through ``hipsense run``'s configuration path.

The sensor registry (:data:`hipsense.device.decoders.DECODERS`) is the one place a sensor type
is named: the config validator accepts exactly its names and rates, and with
``backend = "emulator"`` the real ``hipsense run`` process finds the emulated sensor by scanning
for what the registry says that type advertises (no address configured, as on a fresh Pi),
connects, configures its rate, streams, and the reps reach a real Mosquitto. Sensors that can
stream their accelerometer alone (``gyroscope = false``) are counted on tilt alone, from a real
accelerometer-only recording (MEx).
"""

from __future__ import annotations

import datetime as dt
from importlib.resources import files
from pathlib import Path

import pytest

from hipsense import protocol as p
from hipsense.device.decoders import DECODERS
from hipsense.device.emulator import EMULATORS
from hipsense.errors import ConfigError
from hipsense.protocol import MessageKind
from hipsense.service.config import config_from_mapping
from tests.service.conftest import PATIENT, Dashboard, prescription, wait_until

MQTT = {"host": "localhost", "patient_id": PATIENT}
ACCELEROMETER_ONLY = sorted(t for t, d in DECODERS.items() if d.accelerometer_only is not None)
MEX_BRIDGES = Path(str(files("hipsense") / "data" / "mex_01_02_act_1.csv.gz"))  # 9 bridges, no gyroscope


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


def test_only_sensor_types_that_can_stream_their_accelerometer_alone_accept_gyroscope_false():
    assert ACCELEROMETER_ONLY == ["metamotion", "polar"]
    for sensor_type in ACCELEROMETER_ONLY:
        (sensor,) = config_from_mapping({"mqtt": MQTT, "sensor": {"type": sensor_type, "gyroscope": False}}).sensors
        assert sensor.gyroscope is False
    with pytest.raises(ConfigError, match="WitMotion WT901BLE always streams its gyroscope; "
                                          "gyroscope = false is for type = polar | metamotion"):
        config_from_mapping({"mqtt": MQTT, "sensor": {"type": "witmotion", "gyroscope": False}})


@pytest.mark.slow
@pytest.mark.parametrize("sensor_type", ACCELEROMETER_ONLY)
def test_hipsense_run_counts_an_accelerometer_only_sensor(sensor_type, broker, service_factory):
    service = service_factory(broker, sensor_type=sensor_type, sensor={"gyroscope": False}, recording=MEX_BRIDGES,
                              speed=10.0)
    bridges = p.build_prescription(PATIENT, version=1, updated_at=dt.datetime.now(dt.UTC), exercises=[
        p.PrescribedExercise(order=1, exercise="bridge", sets=1, reps=9, hold_s=5, sides=("both",))])
    with Dashboard(broker) as dashboard:
        dashboard.publish(p.build_topic(MessageKind.PRESCRIPTION, PATIENT), bridges.payload)
        service.start()
        try:
            wait_until(lambda: dashboard.events(MessageKind.SESSION), 60, f"the session of the emulated {sensor_type}")
        finally:
            assert service.terminate() == 0, service.log_path.read_text()[-3000:]
    reps = dashboard.events(MessageKind.REP)
    assert {m.data["exercise"] for m in reps} == {"bridge"}
    # `hipsense replay` counts 9 in the file. A MetaMotion has no clock: its samples are timed on
    # arrival, and on a loaded machine a replay at 10x may blur one rep away.
    assert [m.data["rep_index"] for m in reps] == list(range(1, len(reps) + 1))
    assert len(reps) == 9 or (sensor_type == "metamotion" and len(reps) == 8)
    (summary,) = dashboard.events(MessageKind.SESSION)
    assert summary.data["adherence"] == pytest.approx(len(reps) / 9)


def test_a_sensor_that_always_sends_its_gyroscope_cannot_replay_an_accelerometer_only_recording():
    pytest.importorskip("bumble")
    from hipsense.device.bumble_backend import VirtualRadio
    from hipsense.service.config import EmulatorConfig, SensorConfig
    from hipsense.service.sensors import emulated_sensor

    for sensor_type in sorted(set(DECODERS) - set(ACCELEROMETER_ONLY)):
        with pytest.raises(ConfigError, match="always sends its gyroscope: it needs a recording with gyroscope"):
            emulated_sensor(SensorConfig(type=sensor_type, backend="emulator"), VirtualRadio(),
                            EmulatorConfig(recording=MEX_BRIDGES), index=0)
