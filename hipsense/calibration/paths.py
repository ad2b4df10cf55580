"""Where calibration files live: importable without numpy or scipy.

``$HIPSENSE_CONFIG_DIR/calibration/<address>.json`` when ``HIPSENSE_CONFIG_DIR`` is set, else
``$XDG_CONFIG_HOME/hipsense/calibration/<address>.json`` (``~/.config/...`` when
``XDG_CONFIG_HOME`` is unset); the address's colons become dashes. The service looks here
before it imports :mod:`hipsense.calibration.store` (which needs scipy through
:mod:`hipsense.signal.calibration`), so a Pi without a calibration never loads scipy.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from hipsense.errors import ConfigError

__all__ = ["calibration_dir", "calibration_path", "check_address"]

_ADDRESS = re.compile(r"^[0-9A-Za-z][0-9A-Za-z:_-]{0,63}$")  # MACs, and CoreBluetooth UUIDs


def calibration_dir() -> Path:
    """The directory calibration files live in (not created here)."""
    override = os.environ.get("HIPSENSE_CONFIG_DIR")
    if override:
        return Path(override) / "calibration"
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".config"
    return base / "hipsense" / "calibration"


def check_address(address: str) -> str:
    """``address`` if it looks like a sensor address, else ConfigError."""
    if not isinstance(address, str) or not _ADDRESS.match(address):
        raise ConfigError(f"{address!r} is not a sensor address (like F1:57:00:00:00:01)",
                          setting="address")
    return address


def calibration_path(address: str, directory: Path | None = None) -> Path:
    """The file for the sensor at ``address``."""
    name = check_address(address).upper().replace(":", "-")
    return (directory or calibration_dir()) / f"{name}.json"
