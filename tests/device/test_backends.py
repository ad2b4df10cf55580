"""``HIPSENSE_BLE_BACKEND=emulator:<recording>`` replays a recording as any registered sensor type:
a raw recording as the sensor that recorded it, anything as ``HIPSENSE_EMULATOR_SENSOR``, through
the real ``hipsense scan`` and ``hipsense record``."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import pytest
from click.testing import CliRunner
from scipy.spatial.transform import Rotation

from hipsense.cli import main
from hipsense.device.sample_files import read_samples
from tests.calibration.emulated import ADDRESS, write_session_recording
from tests.calibration.sessions import session

pytest.importorskip("bumble")

MEX_BRIDGES = Path(str(files("hipsense") / "data" / "mex_01_02_act_1.csv.gz"))  # no gyroscope


@pytest.fixture(scope="module")
def witmotion_recording(tmp_path_factory) -> Path:
    s = session(Rotation.random(random_state=5), seed=5, still_s=3.0, stand_s=2.0, swing_s=3.0)
    return write_session_recording(s, tmp_path_factory.mktemp("backends") / "witmotion.hsrec")


def _scan(monkeypatch, spec: str, sensor_type: str | None = None) -> list[str]:
    monkeypatch.setenv("HIPSENSE_BLE_BACKEND", spec)
    monkeypatch.setenv("HIPSENSE_EMULATOR_SPEED", "5")
    if sensor_type is None:
        monkeypatch.delenv("HIPSENSE_EMULATOR_SENSOR", raising=False)
    else:
        monkeypatch.setenv("HIPSENSE_EMULATOR_SENSOR", sensor_type)
    result = CliRunner().invoke(main, ["scan", "--timeout", "0.3"])
    assert result.exit_code == 0, result.output
    return re.split(r"\s{2,}", result.output.splitlines()[1])  # name, address, type, RSSI, battery


def test_a_raw_recording_replays_as_the_sensor_that_recorded_it(monkeypatch, witmotion_recording):
    assert _scan(monkeypatch, f"emulator:{witmotion_recording}")[1:3] == [ADDRESS, "witmotion"]


@pytest.mark.parametrize("sensor_type", ["polar", "movella_dot", "metamotion"])
def test_a_recording_replays_as_any_registered_type_and_records_as_it(monkeypatch, tmp_path, witmotion_recording,
                                                                        sensor_type):
    name, address, listed = _scan(monkeypatch, f"emulator:{witmotion_recording}", sensor_type)[:3]
    assert listed == sensor_type and address == ADDRESS  # the recording's address, another type's protocol
    out = tmp_path / f"{sensor_type}.hsrec"
    result = CliRunner().invoke(main, ["record", str(out), "--sensor", ADDRESS, "--duration", "1",
                                       "--scan-timeout", "0.3"])
    assert result.exit_code == 0, result.output
    samples = read_samples(out)
    assert samples.source == f"hipsense-ble:{sensor_type}" and len(samples.t_s) > 20
    assert samples.gyr_rad_s is not None
    # ... and that recording replays as its own type again, with nothing else said
    assert _scan(monkeypatch, f"emulator:{out}")[1:3] == [ADDRESS, sensor_type]


@pytest.mark.parametrize("sensor_type", ["polar", "metamotion"])
def test_an_accelerometer_only_recording_replays_as_a_sensor_that_can_stream_acc_alone(monkeypatch, sensor_type):
    assert _scan(monkeypatch, f"emulator:{MEX_BRIDGES}", sensor_type)[2] == sensor_type


def test_a_sensor_that_always_sends_its_gyroscope_refuses_an_accelerometer_only_recording(monkeypatch):
    monkeypatch.setenv("HIPSENSE_BLE_BACKEND", f"emulator:{MEX_BRIDGES}")
    monkeypatch.delenv("HIPSENSE_EMULATOR_SENSOR", raising=False)
    result = CliRunner().invoke(main, ["scan", "--timeout", "0.3"])
    assert result.exit_code != 0
    assert "always sends its gyroscope" in result.output and "as polar or metamotion" in result.output
    monkeypatch.setenv("HIPSENSE_EMULATOR_SENSOR", "fitbit")
    result = CliRunner().invoke(main, ["scan", "--timeout", "0.3"])
    assert result.exit_code != 0 and "HIPSENSE_EMULATOR_SENSOR='fitbit'" in result.output
