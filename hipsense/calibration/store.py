"""Calibration files: one versioned JSON file per sensor, where the service will find it.

Where: ``$HIPSENSE_CONFIG_DIR/calibration/<address>.json`` when ``HIPSENSE_CONFIG_DIR`` is set,
else ``$XDG_CONFIG_HOME/hipsense/calibration/<address>.json`` (``~/.config/...`` when
``XDG_CONFIG_HOME`` is unset). In the file name the address's colons become dashes
(``F1-57-00-00-00-01.json``): colons are awkward in shells, copies and some file systems.

How: written to a temporary file in the same directory, fsynced, then renamed over the old one
(a rename is atomic on POSIX), so a power cut leaves the old calibration or the new one, never
half of either. Files are owner-only (0600, directory 0700): they say nothing medical, but
nobody else on the Pi needs to change how a patient's sensor is read.

The document (``format_version`` 1)::

    {"format": "hipsense-calibration", "format_version": 1,
     "sensor": {"address": "F1:57:00:00:00:01", "type": "witmotion", "name": "WT901BLE68"},
     "created_at_utc": "2026-11-26T13:00:00.000+00:00", "hipsense_version": "0.1.0",
     "side": "right",
     "mounting_sensor_to_thigh": [[...], [...], [...]],   # rows: thigh x, y, z in sensor frame
     "gyro_bias_rad_s": [bx, by, bz] | null, "gyro_noise_rad_s": float | null,
     "acc_noise_ms2": float | null, "axis_angle_deg": float,
     "acc_one_g_ms2": float | null,                       # |a| at rest (optional: older files)
     "rom": [{"exercise_id": "...", "rom_deg": float, "peaks_deg": [...]}],
     "measurements": {...}}                                # free-form, for people (rate, ...)

Loading validates every field and names the one that is wrong; a missing file raises
:class:`MissingCalibrationError` so the service can fall back to the uncalibrated angle.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hipsense import __version__
from hipsense.calibration.paths import calibration_dir, calibration_path, check_address
from hipsense.durable_file import write_atomically
from hipsense.errors import ConfigError
from hipsense.signal.calibration import Calibration, PersonalRom

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MissingCalibrationError",
    "StoredCalibration",
    "calibration_dir",
    "calibration_path",
    "list_calibrations",
    "load_calibration",
    "load_calibration_file",
    "save_calibration",
]

FORMAT_NAME = "hipsense-calibration"
FORMAT_VERSION = 1


class MissingCalibrationError(ConfigError):
    """No calibration file exists for this sensor."""


@dataclass(frozen=True)
class StoredCalibration:
    """A calibration and what it was made for."""

    calibration: Calibration
    address: str
    sensor_type: str
    name: str | None = None
    created_at_utc: str = ""
    hipsense_version: str = __version__
    measurements: Mapping[str, Any] = field(default_factory=dict)


# -- writing ---------------------------------------------------------------------------------


def _document(stored: StoredCalibration) -> dict[str, Any]:
    c = stored.calibration
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "sensor": {"address": stored.address, "type": stored.sensor_type, "name": stored.name},
        "created_at_utc": stored.created_at_utc
        or dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "hipsense_version": stored.hipsense_version,
        "side": c.side,
        "mounting_sensor_to_thigh": [list(row) for row in c.mounting],
        "gyro_bias_rad_s": None if c.gyro_bias_rad_s is None else list(c.gyro_bias_rad_s),
        "gyro_noise_rad_s": c.gyro_noise_rad_s,
        "acc_noise_ms2": c.acc_noise_ms2,
        "axis_angle_deg": c.axis_angle_deg,
        "acc_one_g_ms2": c.acc_one_g_ms2,
        "rom": [
            {"exercise_id": r.exercise_id, "rom_deg": r.rom_deg, "peaks_deg": list(r.peaks_deg)}
            for r in c.rom
        ],
        "measurements": dict(stored.measurements),
    }


def save_calibration(stored: StoredCalibration, directory: Path | None = None) -> Path:
    """Write (or replace) the sensor's calibration file atomically; returns its path."""
    path = calibration_path(stored.address, directory)
    text = json.dumps(_document(stored), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    write_atomically(path, text.encode("utf-8"), mode=0o600, dir_mode=0o700)
    return path


# -- reading ---------------------------------------------------------------------------------


def _field(document: Mapping[str, Any], key: str, source: Path) -> Any:
    if key not in document:
        raise ConfigError(f"{source}: the field {key!r} is missing", setting=key)
    return document[key]


def _number(value: Any, key: str, source: Path, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{source}: {key} must be a finite number, got {value!r}", setting=key)
    return float(value)


def _vector(value: Any, key: str, source: Path) -> tuple[float, float, float]:
    if not isinstance(value, list) or len(value) != 3:
        raise ConfigError(f"{source}: {key} must be a list of 3 numbers, got {value!r}",
                          setting=key)
    x, y, z = (_number(v, key, source) for v in value)
    return (x, y, z)  # type: ignore[return-value]


def load_calibration_file(path: str | os.PathLike[str]) -> StoredCalibration:
    """Read and validate one calibration file."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MissingCalibrationError(f"{source}: no such calibration file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read the calibration file ({exc})") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}, line {exc.lineno} column {exc.colno}: not valid JSON "
                          f"({exc.msg})") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise ConfigError(f"{source}: not a hipsense calibration file", setting="format")
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        raise ConfigError(
            f"{source}: calibration format version {version!r} is not supported (this hipsense "
            f"reads version {FORMAT_VERSION}); run `hipsense calibrate` again",
            setting="format_version")
    sensor = _field(document, "sensor", source)
    if not isinstance(sensor, dict):
        raise ConfigError(f"{source}: sensor must be an object", setting="sensor")
    address = check_address(_field(sensor, "address", source))
    sensor_type = _field(sensor, "type", source)
    if not isinstance(sensor_type, str) or not sensor_type:
        raise ConfigError(f"{source}: sensor.type must be a sensor type", setting="sensor.type")
    matrix = _field(document, "mounting_sensor_to_thigh", source)
    if not isinstance(matrix, list) or len(matrix) != 3:
        raise ConfigError(f"{source}: mounting_sensor_to_thigh must be 3 rows of 3 numbers",
                          setting="mounting_sensor_to_thigh")
    rows = tuple(_vector(row, "mounting_sensor_to_thigh", source) for row in matrix)
    bias_value = document.get("gyro_bias_rad_s")
    bias = None if bias_value is None else _vector(bias_value, "gyro_bias_rad_s", source)
    roms = []
    rom_list = document.get("rom", [])
    if not isinstance(rom_list, list):
        raise ConfigError(f"{source}: rom must be a list", setting="rom")
    for entry in rom_list:
        if not isinstance(entry, dict) or not isinstance(entry.get("exercise_id"), str):
            raise ConfigError(f"{source}: each rom entry needs an exercise_id", setting="rom")
        peaks = entry.get("peaks_deg", [])
        if not isinstance(peaks, list):
            raise ConfigError(f"{source}: rom.peaks_deg must be a list", setting="rom")
        roms.append(PersonalRom(
            entry["exercise_id"], _number(entry.get("rom_deg"), "rom.rom_deg", source),
            tuple(_number(p, "rom.peaks_deg", source) for p in peaks)))
    try:
        calibration = Calibration(
            mounting=rows,
            side=_field(document, "side", source),
            gyro_bias_rad_s=bias,
            gyro_noise_rad_s=_number(document.get("gyro_noise_rad_s"), "gyro_noise_rad_s",
                                     source, optional=True),
            acc_noise_ms2=_number(document.get("acc_noise_ms2"), "acc_noise_ms2", source,
                                  optional=True),
            axis_angle_deg=_number(document.get("axis_angle_deg", 90.0), "axis_angle_deg",
                                   source),
            acc_one_g_ms2=_number(document.get("acc_one_g_ms2"), "acc_one_g_ms2", source,
                                  optional=True),
            rom=tuple(roms),
        )
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}", setting="mounting_sensor_to_thigh") from exc
    measurements = document.get("measurements", {})
    if not isinstance(measurements, dict):
        raise ConfigError(f"{source}: measurements must be an object", setting="measurements")
    name = sensor.get("name")
    return StoredCalibration(
        calibration=calibration,
        address=address,
        sensor_type=sensor_type,
        name=name if isinstance(name, str) else None,
        created_at_utc=str(document.get("created_at_utc", "")),
        hipsense_version=str(document.get("hipsense_version", "")),
        measurements=measurements,
    )


def load_calibration(address: str, directory: Path | None = None) -> StoredCalibration:
    """The calibration of the sensor at ``address``.

    Raises :class:`MissingCalibrationError` when the sensor was never calibrated (the message
    says how to do it) and :class:`~hipsense.errors.ConfigError` when the file is damaged.
    """
    path = calibration_path(address, directory)
    if not path.exists():
        raise MissingCalibrationError(
            f"sensor {address} has no calibration ({path} does not exist): run "
            f"`hipsense calibrate --sensor {address}`", setting="calibration")
    stored = load_calibration_file(path)
    if stored.address.upper() != address.upper():
        raise ConfigError(f"{path} holds the calibration of {stored.address}, not {address}",
                          setting="sensor.address")
    return stored


def list_calibrations(directory: Path | None = None) -> list[Path]:
    """Calibration files present, by name."""
    folder = directory or calibration_dir()
    return sorted(folder.glob("*.json")) if folder.is_dir() else []
