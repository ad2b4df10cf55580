"""Calibration files: where they go, atomic owner-only writes, validation with clear errors."""

from __future__ import annotations

import json
import stat

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hipsense.calibration.store import (
    MissingCalibrationError,
    StoredCalibration,
    calibration_dir,
    calibration_path,
    load_calibration,
    save_calibration,
)
from hipsense.errors import ConfigError
from hipsense.signal.calibration import Calibration, PersonalRom

ADDRESS = "F1:57:00:00:00:01"


def _stored(side: str = "left") -> StoredCalibration:
    matrix = Rotation.random(random_state=3).as_matrix()
    calibration = Calibration(
        mounting=tuple(map(tuple, matrix)), side=side, gyro_bias_rad_s=(0.01, -0.02, 0.003),
        gyro_noise_rad_s=0.004, acc_noise_ms2=0.02, axis_angle_deg=89.5,
        rom=(PersonalRom("hip_abductor", 31.5, (30.0, 31.5, 33.0)),), acc_one_g_ms2=10.31)
    return StoredCalibration(calibration, ADDRESS, "witmotion", "WT901BLE68",
                             measurements={"rate_hz": 99.8})


def test_the_standard_place_follows_xdg_and_the_override(monkeypatch, tmp_path):
    monkeypatch.delenv("HIPSENSE_CONFIG_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert calibration_dir() == tmp_path / "xdg" / "hipsense" / "calibration"
    monkeypatch.setenv("HIPSENSE_CONFIG_DIR", str(tmp_path / "mine"))
    assert calibration_path(ADDRESS) == tmp_path / "mine" / "calibration" / "F1-57-00-00-00-01.json"


def test_round_trip_is_exact_and_owner_only(monkeypatch, tmp_path):
    monkeypatch.setenv("HIPSENSE_CONFIG_DIR", str(tmp_path))
    stored = _stored()
    path = save_calibration(stored)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    loaded = load_calibration(ADDRESS.lower())
    assert loaded.calibration == stored.calibration  # floats survive JSON bit for bit
    assert (loaded.address, loaded.sensor_type, loaded.name) == (ADDRESS, "witmotion", "WT901BLE68")
    assert loaded.measurements == {"rate_hz": 99.8}
    # Saving again replaces the file and leaves no temporary files behind.
    save_calibration(_stored(side="right"))
    assert load_calibration(ADDRESS).calibration.side == "right"
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_file_from_before_acc_one_g_loads_with_the_nominal_1_g(tmp_path):
    path = save_calibration(_stored(), tmp_path)
    document = json.loads(path.read_text())
    del document["acc_one_g_ms2"]
    path.write_text(json.dumps(document))
    assert load_calibration(ADDRESS, tmp_path).calibration.acc_one_g_ms2 is None


def test_a_missing_calibration_says_how_to_make_one(tmp_path):
    with pytest.raises(MissingCalibrationError, match="hipsense calibrate --sensor"):
        load_calibration(ADDRESS, tmp_path)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.update(format_version=99), "version 99 is not supported"),
    (lambda d: d.update(format="something else"), "not a hipsense calibration"),
    (lambda d: d.pop("side"), "'side' is missing"),
    (lambda d: d.update(side="middle"), "side must be"),
    (lambda d: d.update(gyro_bias_rad_s=[1, 2]), "gyro_bias_rad_s must be a list of 3"),
    (lambda d: d["mounting_sensor_to_thigh"][0].__setitem__(0, 5.0), "must be a rotation"),
    (lambda d: d["mounting_sensor_to_thigh"][1].__setitem__(1, "x"), "finite number"),
    (lambda d: d["sensor"].update(address="../../etc/passwd"), "not a sensor address"),
    (lambda d: d.update(acc_one_g_ms2=30.0), "acc_one_g_ms2 must be within"),
])
def test_damaged_files_are_rejected_naming_the_field(tmp_path, edit, message):
    path = save_calibration(_stored(), tmp_path)
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match=message):
        load_calibration(ADDRESS, tmp_path)


def test_broken_json_names_the_line(tmp_path):
    path = save_calibration(_stored(), tmp_path)
    path.write_text('{\n  "format": "hipsense-calibration",\n  oops\n}')
    with pytest.raises(ConfigError, match="line 3"):
        load_calibration(ADDRESS, tmp_path)


def test_a_bad_address_never_becomes_a_path(tmp_path):
    with pytest.raises(ConfigError):
        calibration_path("../x", tmp_path)
    assert np.isfinite(_stored().calibration.matrix).all()
