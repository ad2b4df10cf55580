"""Recognition among the WHOLE catalogue, for a calibrated sensor: posture and motion axis.

The MEx-trained recogniser (``recognition.py``) knows the seven exercises of its data set and
needs no calibration. Once ``hipsense calibrate`` has measured how the sensor sits on the
thigh, every catalogue exercise can be told apart by what its definition already says:

* **posture** — where gravity points in the thigh frame at the exercise's rest
  (``rest_gravity_thigh``: standing, lying on the back, face down, on the side, ...);
* **motion** — the thigh-frame axis the thigh turns about (``motion.axis_thigh``: flexion,
  abduction, rotation), from the gyroscope's principal axis, or without a gyroscope from the
  plane the gravity direction sweeps;
* **shape of the motion** — circles turn about two axes at once (the gyroscope's two largest
  singular values are alike); raises, kicks and swings about one;
* **landings** — jumps show spikes of several g that nothing else in the catalogue makes.

Each candidate scores ``exp(-½(e_posture/σ)² - ½(e_axis/σ)²)``; scores are normalised over
the candidates. Exercises a thigh cannot tell apart (a seated and a supine leg raise look
alike to the thigh) share the probability, so the answer is "unknown" unless the prescription
narrows the candidates — which is how the service asks. Adding an exercise to the catalogue
adds it here: no training, no code.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from .recognition import UNKNOWN, Recognition
from .spec import ExerciseSpec
from .vocabulary import Measure

G_MS2 = 9.80665


@dataclass(frozen=True)
class PostureRecognitionSettings:
    posture_sigma_deg: float = 25.0
    axis_sigma_deg: float = 25.0
    min_confidence: float = 0.5
    max_posture_error_deg: float = 60.0  # farther than this from every candidate: atypical
    min_motion_dps: float = 10.0  # below this the thigh is still: only posture can be judged
    min_tilt_range_deg: float = 4.0
    landing_g: float = 2.5  # a spike above this is a landing
    round_motion: float = 0.5  # second/first singular value above this: going round


def _angle_deg(u: np.ndarray, v: np.ndarray) -> float:
    c = float(np.clip(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)), -1.0, 1.0))
    return math.degrees(math.acos(c))


def measure_posture_and_axis(
    acc_ms2: np.ndarray,
    gyr_rad_s: np.ndarray | None,
    mounting: np.ndarray,
    settings: PostureRecognitionSettings = PostureRecognitionSettings(),
) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Gravity ("down", unit), the main rotation axis (unit, sign-free) in the thigh frame,
    and how two-dimensional the rotation is (second over first singular value, 0..1).

    ``mounting`` is the calibration's sensor→thigh matrix (rows: thigh axes in the sensor
    frame). The axis is None when the thigh hardly moved.
    """
    m = np.asarray(mounting, dtype=float).reshape(3, 3)
    acc_tf = np.asarray(acc_ms2, dtype=float).reshape(-1, 3) @ m.T
    up = acc_tf / np.maximum(np.linalg.norm(acc_tf, axis=1, keepdims=True), 1e-9)
    # the rest pose: the median direction (robust to the excursions of the reps themselves)
    down = -np.median(up, axis=0)
    down /= np.linalg.norm(down)
    axis = None
    roundness = 0.0
    if gyr_rad_s is not None:
        w = np.asarray(gyr_rad_s, dtype=float).reshape(-1, 3) @ m.T
        moving = np.linalg.norm(w, axis=1) > math.radians(settings.min_motion_dps)
        if moving.sum() >= 5:
            _, sv, vt = np.linalg.svd(w[moving], full_matrices=False)
            axis = vt[0]
            roundness = float(sv[1] / sv[0]) if sv[0] > 0 else 0.0
    else:
        centred = up - up.mean(axis=0)
        spread = np.degrees(np.ptp(centred @ np.linalg.svd(centred, full_matrices=False)[2][0]))
        if spread >= settings.min_tilt_range_deg:
            # gravity sweeps a plane whose normal is the rotation axis
            _, _, vt = np.linalg.svd(centred, full_matrices=False)
            axis = np.cross(up.mean(axis=0), vt[0])
            axis /= np.linalg.norm(axis)
            _, sv, _ = np.linalg.svd(centred, full_matrices=False)
            roundness = float(sv[1] / sv[0]) if sv[0] > 0 else 0.0
    return down, axis, roundness


def _rotate(v: np.ndarray, axis: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rodrigues' rotation of ``v`` about unit ``axis``."""
    a = math.radians(angle_deg)
    return v * math.cos(a) + np.cross(axis, v) * math.sin(a) + axis * np.dot(axis, v) * (1 - math.cos(a))


def _posture_error_deg(down: np.ndarray, spec: ExerciseSpec, side: str) -> float:
    """Angle from the observed pose to the exercise's poses: its rest, or partway through its
    range (a stretch is held away from its start; reps with long holds spend time at the top).
    The direction of the movement along the axis is not known, so both signs are tried."""
    rest = np.array(spec.rest_gravity_for(side))
    axis = np.array(spec.motion.axis_for(side))
    mid = 0.5 * (spec.motion.rom_deg_min + spec.motion.rom_deg_max)
    if spec.motion.kind in ("none", "circle") or mid == 0:
        return _angle_deg(down, rest)
    poses = [_rotate(rest, axis, f * mid) for f in (0.0, 0.5, -0.5, 1.0, -1.0)]
    return min(_angle_deg(down, p) for p in poses)


def recognise_by_posture(
    acc_ms2: np.ndarray,
    gyr_rad_s: np.ndarray | None,
    mounting: np.ndarray,
    side: str,
    catalogue: Mapping[str, ExerciseSpec],
    candidates: Iterable[str] | None = None,
    settings: PostureRecognitionSettings = PostureRecognitionSettings(),
) -> Recognition:
    """Name the exercise among ``candidates`` (default: the whole catalogue)."""
    ids = [i for i in (candidates if candidates is not None else catalogue) if i in catalogue]
    if not ids:
        return Recognition(UNKNOWN, 0.0, {}, "no_candidates")
    down, axis, roundness = measure_posture_and_axis(acc_ms2, gyr_rad_s, mounting, settings)
    round_motion = axis is not None and roundness >= settings.round_motion
    acc_norm_g = np.linalg.norm(np.asarray(acc_ms2, dtype=float).reshape(-1, 3), axis=1) / G_MS2
    landings = bool(np.any(acc_norm_g > settings.landing_g))
    log_scores = []
    posture_errors = []
    for i in ids:
        spec = catalogue[i]
        ep = _posture_error_deg(down, spec, side)
        posture_errors.append(ep)
        s = -0.5 * (ep / settings.posture_sigma_deg) ** 2
        moves = spec.motion.kind != "none" and spec.measure != Measure.TIMED
        # circles have no single axis to turn about
        compare_axis = moves and spec.motion.kind != "circle"
        if axis is not None:
            if compare_axis:
                cos = min(1.0, abs(float(axis @ np.array(spec.motion.axis_for(side)))))
                s += -0.5 * (math.degrees(math.acos(cos)) / settings.axis_sigma_deg) ** 2
            elif not moves:
                s += -0.5 * 2.0**2  # it moves, but this exercise barely does
        elif moves and spec.measure != Measure.HOLDS:
            s += -0.5 * 1.0**2  # still: a moving exercise is less likely (a stretch is still)
        if axis is not None and moves and round_motion != (spec.motion.kind == "circle"):
            s += -0.5 * 2.0**2  # circling for a one-axis exercise, or the other way round
        if landings != (spec.measure == Measure.IMPACTS):
            s += -0.5 * 2.0**2  # landings where none belong, or a jump exercise without any
        log_scores.append(s)
    ls = np.array(log_scores)
    p = np.exp(ls - ls.max())
    p /= p.sum()
    scores = {i: round(float(x), 4) for i, x in zip(ids, p)}
    best = int(np.argmax(p))
    if min(posture_errors) > settings.max_posture_error_deg:
        return Recognition(UNKNOWN, float(p[best]), scores, "atypical")
    if p[best] < settings.min_confidence:
        return Recognition(UNKNOWN, float(p[best]), scores, "low_confidence")
    return Recognition(ids[best], float(p[best]), scores, None)
