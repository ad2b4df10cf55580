"""Calibration fits: how the sensor sits on the thigh, from three short guided spells.

The thigh frame is the one of ``hipsense.exercises.spec`` (x anterior, y superior = knee → hip,
z = x × y = the person's right, for both thighs). A calibration is the rotation that takes
sensor-frame vectors into it, plus what the still spell says about the sensor itself:

* **still** (sensor lying still, e.g. on the thigh of a seated person, or on a table):
  gyroscope bias = mean rate; noise floor = standard deviation of gyro and accelerometer.
* **stand upright**: the accelerometer reads "up", which *is* the thigh's +y (superior) axis
  when the person stands straight — the standing thigh defines y in the spec's convention.
* **swing the leg forward and back**: a hip flexion/extension turns the thigh about its z
  axis; the dominant axis of the (bias-corrected) gyroscope is ±z. Gravity cannot tell front
  from back, so the sign comes from the movement: hip extension is anatomically limited
  (≈ 10–30°) while a forward swing goes further, so the larger excursion is forward
  (+flexion). When both excursions are about equal, the first one is taken as forward (the
  prompt asks to swing forward first). Without a gyroscope the axis is the normal of the plane
  the gravity direction sweeps.
  Limit: a swing in a single but *diagonal* plane (forward and outward together) yields an
  axis that is still perpendicular to the long axis, so no check can catch it; only the prompt
  ("straight forward and back, like a pendulum") prevents it. A wobbly swing (the knee drawing
  an ellipse) is caught: the gyroscope's energy is then spread over two axes.
* y is trusted as measured (a long average of gravity is precise); z is projected onto the plane
  perpendicular to it and x = y × z completes a proper rotation (Gram–Schmidt).

Every fit reports :class:`Problem` values instead of raising: codes a program can branch on and
sentences a patient can act on. Nothing here knows about files, BLE or clocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

GRAVITY_MS2 = 9.80665
SIDES = ("left", "right")

__all__ = [
    "Calibration",
    "CalibrationFit",
    "CalibrationSettings",
    "FlexionAxisFit",
    "LongAxisFit",
    "PersonalRom",
    "Problem",
    "StillFit",
    "check_stream",
    "fit_calibration",
    "fit_flexion_axis",
    "fit_long_axis",
    "fit_personal_rom",
    "fit_still",
    "mounting_from_axes",
]


@dataclass(frozen=True)
class Problem:
    """A quality check that failed: ``code`` for programs, ``message`` for people."""

    code: str
    message: str


@dataclass(frozen=True)
class CalibrationSettings:
    """Thresholds of the quality checks. Defaults suit consumer IMUs at 25–200 Hz."""

    min_still_s: float = 2.0
    still_gyro_dps: float = 2.0  # rms of the gyro about its mean while "still"
    still_acc_ms2: float = 0.15  # rms of |a| about its mean while "still"
    still_tilt_deg: float = 2.0  # largest wander of the gravity direction while "still"
    max_bias_dps: float = 10.0  # a larger constant rate is motion, or a faulty gyro
    max_gyro_noise_dps: float = 1.0  # per-sample noise floor beyond this: a poor sensor
    max_acc_noise_ms2: float = 0.3
    min_swing_deg: float = 20.0  # peak-to-peak thigh swing needed to see the axis
    max_swing_wobble: float = 0.25  # 2nd/1st principal rate energy: a swing in one plane
    max_axis_error_deg: float = 15.0  # swing axis vs. perpendicular to the long axis
    rate_tolerance: float = 0.1  # measured rate within ±10 % of the nominal one
    max_gap_periods: float = 5.0  # a hole longer than this many periods is a dropped link
    saturation_fraction: float = 0.98  # |value| at this fraction of full scale = clipped


def _problem(code: str, message: str) -> Problem:
    return Problem(code, message)


def _as_samples(t_s: np.ndarray, x: np.ndarray | None, name: str) -> np.ndarray | None:
    if x is None:
        return None
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[1] != 3 or len(x) != len(t_s):
        raise ValueError(f"{name} must be (n, 3) with n == len(t_s); got {x.shape}")
    return x


def _duration(t_s: np.ndarray) -> float:
    return float(t_s[-1] - t_s[0]) if len(t_s) > 1 else 0.0


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def _saturation(
    acc_ms2: np.ndarray | None,
    gyr_rad_s: np.ndarray | None,
    acc_full_scale_ms2: float | None,
    gyr_full_scale_rad_s: float | None,
    settings: CalibrationSettings,
) -> list[Problem]:
    problems = []
    for values, full_scale, what in (
        (acc_ms2, acc_full_scale_ms2, "accelerometer"),
        (gyr_rad_s, gyr_full_scale_rad_s, "gyroscope"),
    ):
        if values is None or full_scale is None or len(values) == 0:
            continue
        if float(np.max(np.abs(values))) >= settings.saturation_fraction * full_scale:
            problems.append(_problem(
                "saturated",
                f"the {what} hit the end of its range, so some readings were clipped — "
                "move a little more gently (no knocks or jumps) and try again",
            ))
    return problems


# -- the stream itself ----------------------------------------------------------------------------


def check_stream(
    t_s: np.ndarray, nominal_rate_hz: float, settings: CalibrationSettings | None = None
) -> tuple[float, tuple[Problem, ...]]:
    """Measured sample rate (Hz) of a stretch of samples, and what is wrong with it."""
    s = settings or CalibrationSettings()
    t_s = np.asarray(t_s, dtype=float)
    if len(t_s) < 3:
        return 0.0, (_problem("no_data", "no data arrived from the sensor — is it switched on "
                                          "and close to the Raspberry Pi?"),)
    rate = (len(t_s) - 1) / _duration(t_s) if _duration(t_s) > 0 else 0.0
    problems = []
    if abs(rate / nominal_rate_hz - 1.0) > s.rate_tolerance:
        problems.append(_problem(
            "rate_off",
            f"the sensor sends {rate:.0f} samples a second instead of {nominal_rate_hz:.0f}: "
            "move it closer to the Raspberry Pi, or switch it off and on again",
        ))
    if float(np.max(np.diff(t_s))) > s.max_gap_periods / nominal_rate_hz:
        problems.append(_problem(
            "dropouts",
            "some data was lost on the way from the sensor: keep it within a few metres of "
            "the Raspberry Pi, away from Wi-Fi routers",
        ))
    return rate, tuple(problems)


# -- still spell: gyro bias and noise floor -------------------------------------------------------


@dataclass(frozen=True)
class StillFit:
    duration_s: float
    gyro_bias_rad_s: tuple[float, float, float] | None
    gyro_noise_rad_s: float | None  # per-sample standard deviation, rms over axes
    acc_noise_ms2: float  # per-sample standard deviation, rms over axes
    acc_norm_ms2: float  # mean |a|: should be ≈ 9.81 (scale check)
    tilt_wander_deg: float
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def _stillness_problems(
    t_s: np.ndarray,
    acc: np.ndarray,
    gyr: np.ndarray | None,
    settings: CalibrationSettings,
    *,
    code: str,
    message: str,
) -> tuple[list[Problem], float]:
    """Did the sensor stay still? (problems, largest wander of the gravity direction in deg)."""
    directions = acc / np.linalg.norm(acc, axis=1, keepdims=True)
    mean = _unit(directions.mean(axis=0))
    wander = float(np.degrees(np.arccos(np.clip(directions @ mean, -1.0, 1.0))).max())
    # Single samples are noisy; judge the wander on a short moving average (0.1 s).
    k = max(1, round(0.1 * (len(t_s) - 1) / max(_duration(t_s), 1e-9)))
    if k > 1 and len(directions) > k:
        kernel = np.ones(k) / k
        smooth = np.stack([np.convolve(directions[:, i], kernel, "valid") for i in range(3)], 1)
        smooth /= np.linalg.norm(smooth, axis=1, keepdims=True)
        wander = float(np.degrees(np.arccos(np.clip(smooth @ mean, -1.0, 1.0))).max())
    moved = wander > settings.still_tilt_deg
    moved |= float(np.std(np.linalg.norm(acc, axis=1))) > settings.still_acc_ms2
    if gyr is not None:
        rms = float(np.sqrt(np.mean(np.sum((gyr - gyr.mean(axis=0)) ** 2, axis=1))))
        moved |= math.degrees(rms) > settings.still_gyro_dps
    return ([_problem(code, message)] if moved else []), wander


def fit_still(
    t_s: np.ndarray,
    acc_ms2: np.ndarray,
    gyr_rad_s: np.ndarray | None = None,
    settings: CalibrationSettings | None = None,
    *,
    acc_full_scale_ms2: float | None = None,
    gyr_full_scale_rad_s: float | None = None,
) -> StillFit:
    """Gyro bias and noise floors from a spell in which the sensor did not move."""
    s = settings or CalibrationSettings()
    t_s = np.asarray(t_s, dtype=float)
    acc = _as_samples(t_s, acc_ms2, "acc_ms2")
    gyr = _as_samples(t_s, gyr_rad_s, "gyr_rad_s")
    duration = _duration(t_s)
    if len(t_s) < 10 or duration < s.min_still_s:
        return StillFit(duration, None, None, math.nan, math.nan, math.nan, (_problem(
            "too_short", f"only {duration:.1f} s of still data arrived; "
                         f"at least {s.min_still_s:g} s is needed — let's try again"),))
    problems, wander = _stillness_problems(
        t_s, acc, gyr, s, code="moved_while_still",
        message="the sensor moved while it should have been still — rest it on something "
                "steady, don't touch it, and let's try again")
    acc_noise = float(np.sqrt(np.mean(np.var(acc, axis=0))))
    acc_norm = float(np.mean(np.linalg.norm(acc, axis=1)))
    bias = noise = None
    if gyr is not None:
        bias_v = gyr.mean(axis=0)
        bias = (float(bias_v[0]), float(bias_v[1]), float(bias_v[2]))
        noise = float(np.sqrt(np.mean(np.var(gyr, axis=0))))
        if not problems and math.degrees(float(np.linalg.norm(bias_v))) > s.max_bias_dps:
            problems.append(_problem(
                "bias_too_large",
                f"the gyroscope reads {math.degrees(float(np.linalg.norm(bias_v))):.0f}°/s while "
                "still — if it really did not move, the sensor needs its own factory "
                "calibration (see its manual)"))
        if not problems and math.degrees(noise) > s.max_gyro_noise_dps:
            problems.append(_problem("noisy", "the gyroscope is unusually noisy — charge the "
                                              "sensor, or try another one"))
    if not problems and acc_noise > s.max_acc_noise_ms2:
        problems.append(_problem("noisy", "the accelerometer is unusually noisy — charge the "
                                          "sensor, or try another one"))
    if abs(acc_norm / GRAVITY_MS2 - 1.0) > 0.1:
        problems.append(_problem(
            "acc_scale", f"at rest the accelerometer reads {acc_norm / GRAVITY_MS2:.2f} g "
                         "instead of 1 g — the sensor type may be set wrongly"))
    problems += _saturation(acc, gyr, acc_full_scale_ms2, gyr_full_scale_rad_s, s)
    return StillFit(duration, bias, noise, acc_noise, acc_norm, wander, tuple(problems))


# -- standing upright: the long axis ----------------------------------------------------------


@dataclass(frozen=True)
class LongAxisFit:
    """The thigh's superior axis (+y, knee → hip) in the sensor frame."""

    axis_sensor: tuple[float, float, float]
    tilt_wander_deg: float
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def fit_long_axis(
    t_s: np.ndarray,
    acc_ms2: np.ndarray,
    gyr_rad_s: np.ndarray | None = None,
    settings: CalibrationSettings | None = None,
    *,
    acc_full_scale_ms2: float | None = None,
    gyr_full_scale_rad_s: float | None = None,
) -> LongAxisFit:
    """Standing upright and still: the mean accelerometer direction is the thigh's +y."""
    s = settings or CalibrationSettings()
    t_s = np.asarray(t_s, dtype=float)
    acc = _as_samples(t_s, acc_ms2, "acc_ms2")
    gyr = _as_samples(t_s, gyr_rad_s, "gyr_rad_s")
    if len(t_s) < 10 or _duration(t_s) < s.min_still_s:
        return LongAxisFit((0.0, 1.0, 0.0), math.nan, (_problem(
            "too_short", f"only {_duration(t_s):.1f} s of standing data arrived; at least "
                         f"{s.min_still_s:g} s is needed — let's try again"),))
    problems, wander = _stillness_problems(
        t_s, acc, gyr, s, code="moved_while_standing",
        message="the leg moved while you should have been standing still — stand straight, "
                "weight on both feet, hold on to something if you need to, and let's try again")
    problems += _saturation(acc, gyr, acc_full_scale_ms2, gyr_full_scale_rad_s, s)
    up = _unit(acc.mean(axis=0))
    return LongAxisFit((float(up[0]), float(up[1]), float(up[2])), wander, tuple(problems))


# -- swinging forward and back: the flexion axis ---------------------------------------------


@dataclass(frozen=True)
class FlexionAxisFit:
    """The thigh's flexion axis (+z) in the sensor frame, signed so a forward swing is +."""

    axis_sensor: tuple[float, float, float]
    forward_deg: float  # largest excursion forward of the mean long axis position
    backward_deg: float  # largest excursion backward (positive number)
    wobble: float  # energy off the main axis / on it: 0 for a clean swing in one plane
    sign_from: str  # "range" (forward went further) or "first_move" (about equal)
    problems: tuple[Problem, ...] = ()

    @property
    def swing_deg(self) -> float:
        return self.forward_deg + self.backward_deg

    @property
    def ok(self) -> bool:
        return not self.problems


def _principal_axis(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors (columns) of the uncentred second moment."""
    values, vectors = np.linalg.eigh(samples.T @ samples / max(len(samples), 1))
    order = np.argsort(values)[::-1]
    return values[order], vectors[:, order]


def fit_flexion_axis(
    t_s: np.ndarray,
    acc_ms2: np.ndarray,
    gyr_rad_s: np.ndarray | None = None,
    settings: CalibrationSettings | None = None,
    *,
    gyro_bias_rad_s: tuple[float, float, float] | np.ndarray | None = None,
    standing_up_sensor: tuple[float, float, float] | np.ndarray | None = None,
    acc_full_scale_ms2: float | None = None,
    gyr_full_scale_rad_s: float | None = None,
) -> FlexionAxisFit:
    """The axis of a forward/back leg swing, from the gyroscope (or the accelerometer alone).

    ``standing_up_sensor`` (the long-axis fit) is where the leg hangs: excursions forward and
    back are measured from it. Without it, from the median position of the swing.
    """
    s = settings or CalibrationSettings()
    t_s = np.asarray(t_s, dtype=float)
    acc = _as_samples(t_s, acc_ms2, "acc_ms2")
    gyr = _as_samples(t_s, gyr_rad_s, "gyr_rad_s")
    if len(t_s) < 10:
        return FlexionAxisFit((0.0, 0.0, 1.0), 0.0, 0.0, math.nan, "range", (_problem(
            "too_short", "no swing data arrived — let's try again"),))
    directions = acc / np.linalg.norm(acc, axis=1, keepdims=True)
    up = None if standing_up_sensor is None else _unit(np.asarray(standing_up_sensor, float))
    if gyr is not None:
        bias = np.zeros(3) if gyro_bias_rad_s is None else np.asarray(gyro_bias_rad_s, float)
        rate = gyr - bias
        values, vectors = _principal_axis(rate)
        axis = vectors[:, 0]
        wobble = float(values[1] / values[0]) if values[0] > 0 else math.inf
        # The swing angle: integrate the rate about the axis (trapezoid), from the start.
        w = rate @ axis
        angle = np.concatenate(([0.0], np.cumsum(0.5 * (w[1:] + w[:-1]) * np.diff(t_s))))
        angle_deg = np.degrees(angle)
        if up is not None:
            # Anchor the integrated angle on gravity: on average over the swing, the gravity
            # direction's angle about the axis from standing is the thigh's angle from standing
            # (the swing's own acceleration averages out; the median ignores its peaks).
            from_gravity = np.degrees(np.arctan2(np.cross(directions, up) @ axis, directions @ up))
            angle_deg = angle_deg - float(np.median(angle_deg - from_gravity))
    else:
        # Gravity sweeps the plane perpendicular to the swing axis: its normal is the axis.
        values, vectors = _principal_axis(directions - directions.mean(axis=0))
        axis = vectors[:, 2]
        wobble = float(values[2] / values[1]) if values[1] > 0 else math.inf
        # Signed angle of each gravity direction about the axis, from the first one.
        ref = directions[0] if up is None else up
        angle_deg = np.degrees(np.arctan2(np.cross(directions, ref) @ axis, directions @ ref))
        # arctan2(gravity_now × gravity_0 · axis): the thigh turning +axis moves the measured
        # "up" vector the other way in the sensor frame, hence the order of the cross product.
    # Excursions from where the leg hangs when standing (else from the swing's median).
    centre = 0.0 if up is not None else float(np.median(angle_deg))
    forward = float(angle_deg.max() - centre)
    backward = float(centre - angle_deg.min())
    sign_from = "range"
    if min(forward, backward) > 0.8 * max(forward, backward):
        # About symmetric: trust the prompt ("swing forward first").
        threshold = 0.25 * max(forward, backward)
        first = np.flatnonzero(np.abs(angle_deg - angle_deg[0]) > threshold)
        first_sign = np.sign(angle_deg[first[0]] - angle_deg[0]) if len(first) else 1.0
        flip = first_sign < 0
        sign_from = "first_move"
    else:
        flip = backward > forward
    if flip:
        axis, forward, backward = -axis, backward, forward
    problems = []
    if forward + backward < s.min_swing_deg:
        problems.append(_problem(
            "swing_too_small",
            f"the leg swung only {forward + backward:.0f}° — swing it further forward and back "
            f"(about {s.min_swing_deg:.0f}° or more in all), and let's try again"))
    elif wobble > s.max_swing_wobble:
        problems.append(_problem(
            "swing_not_planar",
            "the swing went sideways or twisted — swing the leg straight forward and back, like "
            "a pendulum, and let's try again"))
    problems += _saturation(acc, gyr, acc_full_scale_ms2, gyr_full_scale_rad_s, s)
    z = (float(axis[0]), float(axis[1]), float(axis[2]))
    return FlexionAxisFit(z, forward, backward, wobble, sign_from, tuple(problems))


# -- the rotation ----------------------------------------------------------------------------


def mounting_from_axes(
    long_axis_sensor: np.ndarray | tuple[float, float, float],
    flexion_axis_sensor: np.ndarray | tuple[float, float, float],
) -> tuple[np.ndarray, float]:
    """Rotation matrix ``M`` (sensor → thigh: ``v_thigh = M @ v_sensor``) and the angle (deg)
    between the two measured axes.

    y is kept as measured; z is made perpendicular to it; x = y × z. The rows of ``M`` are the
    thigh's x, y, z axes written in the sensor frame.
    """
    y = _unit(np.asarray(long_axis_sensor, dtype=float))
    z_raw = _unit(np.asarray(flexion_axis_sensor, dtype=float))
    between = math.degrees(math.acos(max(-1.0, min(1.0, float(y @ z_raw)))))
    z = _unit(z_raw - (z_raw @ y) * y)
    x = np.cross(y, z)
    return np.vstack((x, y, z)), between


# -- personal range of motion ------------------------------------------------------------------


@dataclass(frozen=True)
class PersonalRom:
    """Range of motion of reference reps: the angle along the exercise's motion, in degrees."""

    exercise_id: str
    rom_deg: float  # median peak of the reps seen
    peaks_deg: tuple[float, ...]
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def fit_personal_rom(
    exercise_id: str,
    t_s: np.ndarray,
    angle_deg: np.ndarray,
    *,
    min_rom_deg: float = 5.0,
    expected_reps: int | None = None,
) -> PersonalRom:
    """Peaks of ``angle_deg`` (the signed angle along the exercise's motion, 0 at rest)."""
    t_s = np.asarray(t_s, dtype=float)
    angle = np.asarray(angle_deg, dtype=float)
    finite = np.isfinite(angle)
    if finite.sum() < 10:
        return PersonalRom(exercise_id, math.nan, (), (_problem(
            "too_short", "no reference reps arrived — let's try again"),))
    angle = np.interp(t_s, t_s[finite], angle[finite])
    rate = (len(t_s) - 1) / max(_duration(t_s), 1e-9)
    # A rep: a peak that stands out by most of its own height, at least 0.8 s from the next.
    # imported here: scipy.signal costs ~60 MB, and the live service imports this module for
    # the Calibration type alone (reference reps are fitted only by `hipsense calibrate`)
    from scipy.signal import find_peaks

    peaks, _ = find_peaks(angle, height=min_rom_deg, prominence=0.6 * min_rom_deg,
                          distance=max(1, int(0.8 * rate)))
    heights = tuple(float(angle[p]) for p in peaks)
    problems = []
    if not heights:
        problems.append(_problem(
            "no_reps", f"no repetitions of at least {min_rom_deg:g}° were seen — do the "
                       "exercise a few times as your therapist showed you, and let's try again"))
    elif expected_reps is not None and len(heights) < expected_reps:
        problems.append(_problem(
            "too_few_reps", f"{len(heights)} of {expected_reps} repetitions were seen — "
                            "let's try again"))
    rom = float(np.median(heights)) if heights else math.nan
    return PersonalRom(exercise_id, rom, heights, tuple(problems))


# -- the value the service loads ---------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    """How one sensor sits on one thigh. Frozen, so the service can share it freely.

    Attributes
    ----------
    mounting
        Rows: the thigh's x (anterior), y (superior), z (right) axes in the sensor frame; so
        ``v_thigh = matrix @ v_sensor``. Orthonormal, determinant +1.
    side
        ``"left"`` or ``"right"`` thigh (abduction and rotation signs mirror).
    gyro_bias_rad_s
        Gyroscope bias (sensor frame) at calibration time; None without a gyroscope.
    gyro_noise_rad_s, acc_noise_ms2
        Per-sample noise floors measured while still.
    acc_one_g_ms2
        What the accelerometer read while still (its own 1 g; cheap sensors are a few %
        off), so "not accelerating" is judged against it. None: assume 9.80665.
    axis_angle_deg
        Angle between the measured long and swing axes (ideally 90°): how well the two
        spells agreed, kept for the record.
    rom
        Personal range of motion from reference reps, if they were done.
    """

    mounting: tuple[tuple[float, float, float], ...]
    side: str = "right"
    gyro_bias_rad_s: tuple[float, float, float] | None = None
    gyro_noise_rad_s: float | None = None
    acc_noise_ms2: float | None = None
    axis_angle_deg: float = 90.0
    rom: tuple[PersonalRom, ...] = field(default_factory=tuple)
    acc_one_g_ms2: float | None = None

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise ValueError(f"side must be 'left' or 'right', got {self.side!r}")
        m = np.asarray(self.mounting, dtype=float)
        if m.shape != (3, 3) or not np.all(np.isfinite(m)):
            raise ValueError(f"mounting must be a finite 3 × 3 matrix, got shape {m.shape}")
        if not np.allclose(m @ m.T, np.eye(3), atol=1e-6) or np.linalg.det(m) < 0:
            raise ValueError("mounting must be a rotation (orthonormal rows, determinant +1)")
        rows = tuple(tuple(float(v) for v in row) for row in m)
        object.__setattr__(self, "mounting", rows)
        if self.gyro_bias_rad_s is not None:
            bias = tuple(float(v) for v in self.gyro_bias_rad_s)
            if len(bias) != 3 or not all(math.isfinite(v) for v in bias):
                raise ValueError("gyro_bias_rad_s must be three finite numbers")
            object.__setattr__(self, "gyro_bias_rad_s", bias)
        if self.acc_one_g_ms2 is not None and not 0.5 * GRAVITY_MS2 < self.acc_one_g_ms2 < 1.5 * GRAVITY_MS2:
            raise ValueError(f"acc_one_g_ms2 must be within 0.5-1.5 g, got {self.acc_one_g_ms2!r}")
        object.__setattr__(self, "rom", tuple(self.rom))

    @property
    def matrix(self) -> np.ndarray:
        """Sensor → thigh rotation matrix (a fresh array)."""
        return np.array(self.mounting, dtype=float)

    def to_thigh(self, v_sensor: np.ndarray) -> np.ndarray:
        """Vectors (…, 3) from the sensor frame into the thigh frame."""
        return np.asarray(v_sensor, dtype=float) @ self.matrix.T

    def rom_for(self, exercise_id: str) -> PersonalRom | None:
        for rom in self.rom:
            if rom.exercise_id == exercise_id:
                return rom
        return None


@dataclass(frozen=True)
class CalibrationFit:
    """The outcome of the whole fit: the calibration, the parts, and every failed check."""

    calibration: Calibration | None
    still: StillFit
    long_axis: LongAxisFit
    flexion_axis: FlexionAxisFit
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return self.calibration is not None and not self.problems


def fit_calibration(
    still: StillFit,
    long_axis: LongAxisFit,
    flexion_axis: FlexionAxisFit,
    *,
    side: str,
    settings: CalibrationSettings | None = None,
    rom: tuple[PersonalRom, ...] = (),
) -> CalibrationFit:
    """Combine the three spells into a :class:`Calibration`, checking that they agree."""
    s = settings or CalibrationSettings()
    problems = list(still.problems) + list(long_axis.problems) + list(flexion_axis.problems)
    matrix, between = mounting_from_axes(long_axis.axis_sensor, flexion_axis.axis_sensor)
    if abs(between - 90.0) > s.max_axis_error_deg:
        problems.append(_problem(
            "axes_not_perpendicular",
            f"the swing axis is {abs(between - 90.0):.0f}° off what standing upright showed — "
            "the sensor may have slipped, or the swing was not straight forward and back; "
            "tighten the strap, then stand and swing again"))
    calibration = Calibration(
        mounting=tuple(tuple(r) for r in matrix.tolist()),
        side=side,
        gyro_bias_rad_s=still.gyro_bias_rad_s,
        gyro_noise_rad_s=still.gyro_noise_rad_s,
        acc_noise_ms2=still.acc_noise_ms2,
        axis_angle_deg=between,
        acc_one_g_ms2=still.acc_norm_ms2 if math.isfinite(still.acc_norm_ms2) else None,
        rom=rom,
    )
    return CalibrationFit(calibration, still, long_axis, flexion_axis, tuple(problems))
