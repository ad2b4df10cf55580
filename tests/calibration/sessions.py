"""A synthetic calibration session: still, stand upright, swing forward and back.

Physics as in ``tests/synth.py`` (world z up, thigh frame x anterior / y superior / z right,
gyro and acceleration as finite differences of the orientation and of the sensor's position),
but choreographed for the calibration flow instead of an exercise. Test helper only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

GRAVITY_MS2 = 9.80665
_SENSOR_OFFSET_M = np.array([0.0, -0.30, 0.07])  # right thigh, 30 cm below the hip, lateral
_H = 1e-3


@dataclass(frozen=True)
class Session:
    t_s: np.ndarray
    acc_ms2: np.ndarray  # sensor frame
    gyr_rad_s: np.ndarray  # sensor frame
    segments: dict[str, tuple[float, float]]  # name -> (start_s, end_s)
    mounting: Rotation  # sensor -> thigh
    gyro_bias_rad_s: np.ndarray

    def part(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        start, end = self.segments[name]
        keep = (self.t_s >= start) & (self.t_s < end)
        return self.t_s[keep], self.acc_ms2[keep], self.gyr_rad_s[keep]


def _smooth(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u**3 * (10 - 15 * u + 6 * u**2)


def session(
    mounting: Rotation,
    *,
    seed: int = 0,
    rate_hz: float = 100.0,
    still_s: float = 3.0,
    move_s: float = 1.5,
    stand_s: float = 3.0,
    swing_s: float = 5.0,
    tail_s: float = 1.0,
    forward_deg: float = 40.0,
    backward_deg: float = 15.0,
    swing_hz: float = 0.7,
    sideways_deg: float = 0.0,
    still_jiggle_deg: float = 0.0,
    gyro_bias_rad_s: np.ndarray | None = None,
    acc_noise_ms2: float = 0.02,
    gyr_noise_rad_s: float = 0.003,
) -> Session:
    """still (thigh resting horizontally, as when seated) → stand up → stand → swing → stand."""
    rng = np.random.default_rng(seed)
    heading = Rotation.from_euler("z", rng.uniform(0, 2 * np.pi))
    standing = heading * Rotation.align_vectors([[0, 0, -1.0]], [[0, -1.0, 0]])[0]
    t_still_end = still_s
    t_stand0 = t_still_end + move_s
    t_swing0 = t_stand0 + stand_s
    t_swing1 = t_swing0 + swing_s
    t_end = t_swing1 + tail_s
    mid = (forward_deg - backward_deg) / 2
    amp = (forward_deg + backward_deg) / 2

    def orientation(t: np.ndarray) -> Rotation:
        # Seated → standing: unflex 90° with a smooth profile.
        flex = 90.0 * (1 - _smooth((t - t_still_end) / move_s))
        # The swing: a ramped pendulum between -backward and +forward, starting forward.
        u = np.clip((t - t_swing0) / swing_s, 0, 1)
        ramp = _smooth(np.minimum(u * swing_s, (1 - u) * swing_s) / 0.8)
        phase = 2 * np.pi * swing_hz * (t - t_swing0)
        # An offset part (0 → 2·mid) plus a symmetric one: peaks ≈ +forward and -backward,
        # and the first move is forward.
        swinging = (t > t_swing0) & (t < t_swing1)
        swing = np.where(swinging, ramp * (mid * (1 - np.cos(phase)) + amp * np.sin(phase)), 0.0)
        total = flex + swing
        # Sideways out of phase with the swing: the knee draws an ellipse (a wobbly swing).
        side = np.where(swinging, ramp * sideways_deg * np.cos(phase), 0.0)
        jiggle = np.where(t < t_still_end, still_jiggle_deg * np.sin(2 * np.pi * 1.3 * t), 0.0)
        rot = Rotation.from_rotvec(np.radians(total + jiggle)[:, None] * [0, 0, 1.0])
        abd = Rotation.from_rotvec(np.radians(side)[:, None] * [-1.0, 0, 0])
        return standing * rot * abd

    t = np.arange(int(t_end * rate_hz)) / rate_hz
    before, now, after = orientation(t - _H), orientation(t), orientation(t + _H)
    gyr_thigh = (before.inv() * after).as_rotvec() / (2 * _H)
    lin = (after.apply(_SENSOR_OFFSET_M) - 2 * now.apply(_SENSOR_OFFSET_M)
           + before.apply(_SENSOR_OFFSET_M)) / _H**2
    acc_thigh = now.inv().apply(lin + [0, 0, GRAVITY_MS2])
    bias = (np.asarray(gyro_bias_rad_s, float) if gyro_bias_rad_s is not None
            else rng.normal(0, 0.01, 3))
    acc = mounting.inv().apply(acc_thigh) + rng.normal(0, acc_noise_ms2, acc_thigh.shape)
    gyr = mounting.inv().apply(gyr_thigh) + bias + rng.normal(0, gyr_noise_rad_s, gyr_thigh.shape)
    segments = {
        "still": (0.0, t_still_end),
        "stand": (t_stand0, t_swing0),
        "swing": (t_swing0, t_swing1),
    }
    return Session(t, acc, gyr, segments, mounting, bias)


def angle_between_deg(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, float) / np.linalg.norm(a)
    b = np.asarray(b, float) / np.linalg.norm(b)
    return float(np.degrees(np.arccos(np.clip(a @ b, -1, 1))))


def rotation_error_deg(estimated: np.ndarray, truth: Rotation) -> float:
    """Angle of the rotation between an estimated sensor→thigh matrix and the truth."""
    return float(np.degrees((Rotation.from_matrix(estimated) * truth.inv()).magnitude()))
