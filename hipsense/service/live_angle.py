"""The thigh angle the dashboard shows live, per sensor.

With a calibration from ``hipsense calibrate`` (:mod:`hipsense.calibration_store`, looked up
by the sensor's address) it is the calibrated hip flexion from standing, positive forward, plus
abduction: exactly what the protocol's ``thigh_angle_deg`` and ``abduction_deg`` mean. Without
one it is the signed angle along the thigh's main motion
(:func:`hipsense.signal.angles.principal_angle_step`), which needs no calibration but has no
anatomical zero; the service logs which one it uses. Both kernels are O(1) per sample (about
6 µs here) and see every sample, since they track orientation continuously.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np

from hipsense.errors import ConfigError
from hipsense.service.logs import fields
from hipsense.signal.angles import (
    PrincipalAngleSettings,
    ThighAngleSettings,
    principal_angle_init,
    principal_angle_step,
    thigh_angles_init,
    thigh_angles_step,
)
from hipsense.signal.calibration import Calibration

__all__ = ["AngleReading", "LiveAngle", "load_sensor_calibration"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class AngleReading:
    t_s: float
    thigh_angle_deg: float
    abduction_deg: float | None


def load_sensor_calibration(address: str | None) -> Calibration | None:
    """The stored calibration of the sensor at ``address``, or None (logged) if there is none."""
    if not address:
        return None
    from hipsense.calibration_store import MissingCalibrationError, load_calibration

    try:
        return load_calibration(address).calibration
    except MissingCalibrationError as exc:
        log.info("no calibration; the live angle is uncalibrated", extra=fields(address=address, detail=str(exc)))
    except ConfigError as exc:  # damaged file: say so, and carry on uncalibrated
        log.warning("calibration unusable; the live angle is uncalibrated", extra=fields(address=address,
                                                                                        error=str(exc)))
    return None


class LiveAngle:
    """Streaming live angle of one sensor (see the module docstring)."""

    def __init__(self, calibration: Calibration | None = None) -> None:
        self.calibration = calibration
        if calibration is not None:
            self._settings: ThighAngleSettings | PrincipalAngleSettings = ThighAngleSettings(calibration=calibration)
            self._state = thigh_angles_init(self._settings)
        else:
            self._settings = PrincipalAngleSettings()
            self._state = principal_angle_init(self._settings)
        self.latest: AngleReading | None = None

    @property
    def calibrated(self) -> bool:
        return self.calibration is not None

    def push(self, t_s: np.ndarray, acc_ms2: np.ndarray, gyr_rad_s: np.ndarray | None) -> AngleReading | None:
        """Add samples; return the newest finite reading (kept in :attr:`latest`)."""
        if isinstance(self._settings, ThighAngleSettings):
            self._state, out = thigh_angles_step(self._settings, self._state, t_s, acc_ms2, gyr_rad_s)
            angle, abduction = out.flexion_deg, out.abduction_deg
        else:
            self._state, out = principal_angle_step(self._settings, self._state, t_s, acc_ms2, gyr_rad_s)
            angle, abduction = out.angle_deg, None
        finite = np.flatnonzero(np.isfinite(angle))
        if len(finite):
            i = int(finite[-1])
            ab = None if abduction is None or not math.isfinite(abduction[i]) else float(abduction[i])
            self.latest = AngleReading(float(out.t_s[i]), float(angle[i]), ab)
        return self.latest
