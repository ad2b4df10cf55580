"""The thigh angle the dashboard shows live, per sensor.

With a calibration from ``hipsense calibrate`` (:mod:`hipsense.calibration.store`, looked up
by the sensor's address) it is the calibrated hip flexion from standing, positive forward, plus
abduction (:func:`hipsense.signal.angles.thigh_angles_step`): exactly what the protocol's
``thigh_angle_deg`` and ``abduction_deg`` mean. It is O(1) per sample (about 3 µs here) and sees
every sample, since it tracks the orientation continuously; only the newest sample's angles are
worked out (:func:`~hipsense.signal.angles.thigh_angles_latest`).

Without a calibration the engine shows the tracker pipeline's excursion from the exercise's rest
posture instead (already computed for counting; no anatomical zero). Not the principal-axis
angle of ``signal.angles``: that module imports ``signal.calibration``, which imports
scipy.signal at the top (about 60 MB resident with scipy.stats and friends) — worth paying for
a calibrated angle, not for an uncalibrated one. For the same reason the calibration file is
looked for (:mod:`hipsense.calibration.paths`) before the calibration store is imported.

The filter's per-sample recurrence runs compiled (``hipsense/signal/_anglefilter.c``, built at
install time where a C compiler is) when it is importable: bit for bit the pure-Python filter's
result, a push of 12 samples in a quarter of the instructions (docs/performance.md, "Round 5").
``HIPSENSE_PURE_PYTHON=1`` in the environment forces the pure-Python filter (as does an install
without the compiled module).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from typing import Any

import numpy as np

from hipsense.errors import ConfigError
from hipsense.service.logs import fields

__all__ = ["AngleReading", "CalibratedAngle", "load_sensor_calibration"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class AngleReading:
    t_s: float
    thigh_angle_deg: float
    abduction_deg: float | None


def load_sensor_calibration(address: str | None) -> Any | None:
    """The stored :class:`~hipsense.signal.calibration.Calibration` of ``address``, or None (logged)."""
    if not address:
        return None
    from hipsense.calibration.paths import calibration_path  # cheap: no scipy until a file exists

    try:
        path = calibration_path(address)
    except ConfigError:
        return None  # not an address a calibration could have been saved under
    if not path.exists():
        log.info("no calibration: the live angle is the uncalibrated excursion from rest",
                 extra=fields(address=address, expected=str(path)))
        return None
    from hipsense.calibration.store import load_calibration

    try:
        return load_calibration(address).calibration
    except ConfigError as exc:  # damaged file: say so, and carry on uncalibrated
        log.warning("calibration unusable: the live angle is uncalibrated", extra=fields(address=address,
                                                                                        error=str(exc)))
    return None


#: set to 1 to run the angle filter in pure Python even where the compiled one is built
PURE_PYTHON_ENV = "HIPSENSE_PURE_PYTHON"


def compiled_filter_wanted() -> bool:
    """The compiled angle filter if it is built, unless ``HIPSENSE_PURE_PYTHON=1``."""
    from hipsense.signal.angles import COMPILED_FILTER_AVAILABLE

    return COMPILED_FILTER_AVAILABLE and os.environ.get(PURE_PYTHON_ENV, "") != "1"


class CalibratedAngle:
    """Streaming calibrated thigh angles of one sensor. ``compiled``: None picks
    (:func:`compiled_filter_wanted`); True or False forces one (True needs it built)."""

    def __init__(self, calibration: Any, *, compiled: bool | None = None) -> None:
        from hipsense.signal.angles import COMPILED_FILTER_AVAILABLE, ThighAngleSettings, thigh_angles_init

        if compiled is None:
            compiled = compiled_filter_wanted()
        elif compiled and not COMPILED_FILTER_AVAILABLE:
            raise RuntimeError("the compiled angle filter is not built in this install")
        self.compiled = compiled
        log.info("calibrated live angle", extra=fields(filter="compiled" if compiled else "python"))
        self.calibration = calibration
        self._settings = ThighAngleSettings(calibration=calibration)
        self._state = thigh_angles_init(self._settings)
        self.latest: AngleReading | None = None

    def push(self, t_s: np.ndarray, acc_ms2: np.ndarray, gyr_rad_s: np.ndarray | None) -> AngleReading | None:
        """Add samples; return the newest finite reading (kept in :attr:`latest`)."""
        from hipsense.signal.angles import thigh_angles_latest, thigh_angles_latest_arrays

        t = np.asarray(t_s, dtype=float).reshape(-1)
        acc = np.asarray(acc_ms2, dtype=float)
        gyr = None if gyr_rad_s is None else np.asarray(gyr_rad_s, dtype=float)
        if acc.shape != (len(t), 3) or (gyr is not None and gyr.shape != (len(t), 3)):
            raise ValueError(f"acc_ms2 and gyr_rad_s must be (n, 3) with n == len(t_s); got {acc.shape}")
        if self.compiled:
            self._state, newest = thigh_angles_latest_arrays(self._settings, self._state, t, acc, gyr)
        else:
            self._state, newest = thigh_angles_latest(self._settings, self._state, t.tolist(), acc.tolist(),
                                                      None if gyr is None else gyr.tolist())
        if newest is not None:
            t_newest, flexion, abduction = newest
            self.latest = AngleReading(t_newest, flexion, abduction if math.isfinite(abduction) else None)
        return self.latest


def excursion_reading(t_s: np.ndarray, angle_deg: np.ndarray) -> AngleReading | None:
    """The newest finite sample of the tracker pipeline's excursion angle (NaN until anchored)."""
    finite = np.flatnonzero(np.isfinite(angle_deg))
    if not len(finite):
        return None
    i = int(finite[-1])
    return AngleReading(float(t_s[i]), float(angle_deg[i]), None)
