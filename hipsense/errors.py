"""The project's exception tree.

    HipsenseError
    ├── ConfigError          a setting is missing or invalid (names the setting)
    ├── DatasetError         a recording or data set on disk is missing or malformed
    ├── DeviceError          anything about the sensor or the BLE link
    │   ├── DeviceNotFoundError
    │   ├── LinkLostError
    │   └── DecodeError      bytes from a sensor that do not decode (carries the payload)
    └── CalibrationError     a calibration step failed (says what to do)

Kernels in ``hipsense.signal`` never raise these: they raise ``ValueError`` for programming
errors only, and report data-quality problems as outputs.
"""

from __future__ import annotations


class HipsenseError(Exception):
    """Base of every error hipsense raises on purpose."""


class ConfigError(HipsenseError):
    """A configuration value is missing or invalid."""

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class DatasetError(HipsenseError):
    """A recording or data-set folder is missing or malformed."""


class DeviceError(HipsenseError):
    """Something about the sensor or the BLE link."""


class DeviceNotFoundError(DeviceError):
    def __init__(self, message: str, *, address: str | None = None) -> None:
        super().__init__(message)
        self.address = address


class LinkLostError(DeviceError):
    """The link to a sensor dropped or went silent."""


class DecodeError(DeviceError):
    """Bytes from a sensor did not decode. Nothing of the payload was used."""

    def __init__(self, message: str, *, payload: bytes = b"") -> None:
        super().__init__(message)
        self.payload_hex = bytes(payload).hex()


class CalibrationError(HipsenseError):
    """A calibration step failed; the message says what the person should do."""
