"""Thigh angles: calibrated (flexion, abduction, rotation) and, without a calibration, the
signed angle along the thigh's main motion.

Both kernels track the thigh's orientation *relative to a rest pose* with one filter: the
gyroscope is integrated (trapezoid rule on the quaternion), and the accelerometer pulls the
tilt back toward gravity only while the thigh is slow (below ``moving_dps``, |a| ≈ 1 g) — during a
swing the accelerometer also feels the swing itself (≈ 1–2 m/s² at the knee), which would tilt
the estimate by several degrees. The rotation about the vertical (heading) is invisible to
gravity; it is kept by the gyroscope alone and re-zeroed while the thigh rests still in its
rest pose (``heading_tau_s``), which is where drift would otherwise pile up. While still, the
gyroscope bias is refined (the calibration's value is only the starting point: bias wanders
with temperature).

Calibrated angles (``thigh_angles_*``)
--------------------------------------
In the thigh frame of ``hipsense.exercises.spec``, relative to the rest pose given by
``rest_gravity_thigh`` (standing by default): intrinsic z-x-y Euler angles of the rotation from
the rest pose — flexion (+z) first, then abduction (about the flexed thigh's x), then rotation
about the thigh's own long axis — with abduction and internal rotation positive on both legs
(signs mirrored for the left thigh), as hip joint angles are usually given.

What gravity observes depends on the posture, because gravity sees rotations about horizontal
axes only:

* **flexion/extension** (about z): whenever z is horizontal — standing, lying on the back or
  front, sitting, on hands and knees, kneeling. In side-lying, z is vertical: gyroscope only.
* **abduction/adduction** (about x): whenever x is horizontal — standing, side-lying, hands and
  knees. Lying on the back or front and sitting, x is vertical: gyroscope only.
* **rotation** (about y, the long axis): whenever the long axis is well away from vertical —
  lying, sitting. Standing or kneeling it is vertical, so rotation is pure gyroscope
  integration, bounded by the re-zeroing at rest; ``rotation_observable`` says, per sample,
  whether either gravity or a recent re-zeroing (``rotation_trust_s``) backs it up. Without a
  gyroscope rotation is NaN: not observable.

Gyroscope-only angles hold for the length of a rep (drift ≈ bias error × time) but not for
minutes; the rest-pose re-zeroing is what bounds them. Near 90° of flexion the z-x-y angles
approach gimbal lock (abduction and rotation become the same motion): valid for sitting and
supine rest poses only relative to that rest pose, not to standing.

Fallback without a calibration (``principal_angle_*``)
------------------------------------------------------
The first still spell (``rest_init_s``) sets the rest pose and the gyro bias; the principal
axis of the gyroscope while moving (one power-iteration step per sample, so it is cheap and
chunk-invariant) is the motion axis, signed so that the first movement is positive; the output
is the twist of the orientation about that axis (rad → deg). Without a gyroscope: the tilt away
from rest, signed by the principal direction of the tilt.

All kernels are causal, O(1) per sample, and take any chunking: streaming equals batch bit for
bit.

The calibrated kernel's per-sample recurrence also exists compiled (``_anglefilter.c``, built by
setup.py where a C compiler is; optional): ``thigh_angles_step(..., compiled=True)`` and
:func:`thigh_angles_latest_arrays` use it, bit for bit the Python filter's result (the Python
code stays the reference; tests/signal/test_compiled_angle_filter.py). Which one the service
runs is the service's choice (``hipsense.service.live_angle``). Input may be irregular; a step longer than ``max_dt_s`` restarts the orientation from the
accelerometer (after a gap the old orientation means nothing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .calibration import Calibration
from .stream import shallow_copy

#: the compiled filter's calling convention this module speaks (``ANGLEFILTER_ABI`` in the C)
ANGLEFILTER_ABI = 1

try:  # the calibrated filter's recurrence compiled (setup.py builds it where a C compiler is)
    from . import _anglefilter
except ImportError:  # installed without a compiler: the pure-Python filter, which is the reference
    _anglefilter = None
if _anglefilter is not None and getattr(_anglefilter, "ABI", None) != ANGLEFILTER_ABI:
    # a build left over from an older source (an editable install after a pull): its arguments
    # may differ, so it is not used — the Python filter gives the same angles
    import warnings

    warnings.warn("hipsense.signal._anglefilter is a stale build (re-run pip install): using the Python filter",
                  RuntimeWarning, stacklevel=1)
    _anglefilter = None

#: whether the compiled angle filter is importable (``compiled=True`` of the thigh kernels)
COMPILED_FILTER_AVAILABLE = _anglefilter is not None

GRAVITY_MS2 = 9.80665
_DEG = 180.0 / math.pi

__all__ = [
    "COMPILED_FILTER_AVAILABLE",
    "AngleFilterSettings",
    "PrincipalAngle",
    "PrincipalAngleSettings",
    "PrincipalAngleState",
    "ThighAngleSettings",
    "ThighAngleState",
    "ThighAngles",
    "principal_angle",
    "principal_angle_init",
    "principal_angle_step",
    "thigh_angles",
    "thigh_angles_init",
    "thigh_angles_latest",
    "thigh_angles_latest_arrays",
    "thigh_angles_step",
]


@dataclass(frozen=True)
class AngleFilterSettings:
    acc_tau_s: float = 0.5  # tilt correction time constant while slow
    # Without a gyroscope the accelerometer is all there is: follow it faster, and trust it
    # less (not never) while |a| says the thigh accelerates.
    acc_only_tau_s: float = 0.1
    acc_only_norm_tolerance: float = 0.15
    moving_dps: float = 15.0  # faster than this: no tilt correction at all
    acc_norm_tolerance: float = 0.05  # |a|/g outside 1 ± this: the accelerometer sees motion
    still_dps: float = 3.0  # bias-corrected rate below this counts as still
    still_min_s: float = 1.0  # still this long: refine bias; at rest: re-zero heading
    bias_tau_s: float = 10.0
    max_bias_dps: float = 10.0
    rest_tol_deg: float = 8.0  # "in the rest pose": gravity within this of the rest gravity
    heading_tau_s: float = 2.0
    rotation_trust_s: float = 60.0
    rotation_tilt_deg: float = 30.0  # long axis this far off vertical: gravity sees rotation
    max_dt_s: float = 0.3

    def __post_init__(self) -> None:
        for name in ("acc_tau_s", "acc_only_tau_s", "bias_tau_s", "heading_tau_s", "max_dt_s", "still_min_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")


# -- quaternion helpers on plain floats (w, x, y, z): fast per sample, identical per chunking --


def _qmul(a: tuple, b: tuple) -> tuple:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return (
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    )


def _qnorm(q: tuple) -> tuple:
    n = math.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
    return (q[0] / n, q[1] / n, q[2] / n, q[3] / n)


def _qexp(wx: float, wy: float, wz: float, dt: float) -> tuple:
    """Quaternion of a rotation by rate vector ω (rad/s) over dt."""
    n = math.sqrt(wx * wx + wy * wy + wz * wz)
    half = 0.5 * n * dt
    if n < 1e-12:
        return (1.0, 0.5 * wx * dt, 0.5 * wy * dt, 0.5 * wz * dt)
    s = math.sin(half) / n
    return (math.cos(half), wx * s, wy * s, wz * s)


def _qrot_inv(q: tuple, v: tuple) -> tuple:
    """R(q)ᵀ v: a vector of the reference frame seen from the body frame."""
    w, x, y, z = q
    vx, vy, vz = v
    # t = 2 (q_vec × v); R(q*) v = v - w t + q_vec × t
    tx = 2.0 * (y * vz - z * vy)
    ty = 2.0 * (z * vx - x * vz)
    tz = 2.0 * (x * vy - y * vx)
    return (
        vx - w * tx + (y * tz - z * ty),
        vy - w * ty + (z * tx - x * tz),
        vz - w * tz + (x * ty - y * tx),
    )


def _q_from_to(a: tuple, b: tuple) -> tuple:
    """The smallest rotation taking unit vector a onto unit vector b."""
    ax, ay, az = a
    bx, by, bz = b
    dot = ax * bx + ay * by + az * bz
    if dot < -0.999999:
        # Opposite: turn half a turn about any axis perpendicular to a.
        px, py, pz = (0.0, -az, ay) if abs(ax) < 0.9 else (-ay, ax, 0.0)
        n = math.sqrt(px * px + py * py + pz * pz)
        return (0.0, px / n, py / n, pz / n)
    cx, cy, cz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
    return _qnorm((1.0 + dot, cx, cy, cz))


def _euler_zxy(q: tuple) -> tuple[float, float, float]:
    """Intrinsic z-x-y angles (rad) of R(q) = Rz(f) Rx(a) Ry(r)."""
    w, x, y, z = q
    r01 = 2.0 * (x * y - w * z)
    r11 = 1.0 - 2.0 * (x * x + z * z)
    r20 = 2.0 * (x * z - w * y)
    r21 = 2.0 * (y * z + w * x)
    r22 = 1.0 - 2.0 * (x * x + y * y)
    a = math.asin(max(-1.0, min(1.0, r21)))
    return math.atan2(-r01, r11), a, math.atan2(-r20, r22)


def _unit3(v: tuple) -> tuple:
    n = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    return (v[0] / n, v[1] / n, v[2] / n)


# -- the shared orientation filter -------------------------------------------------------------


@dataclass
class _Orientation:
    """Orientation of the body relative to a rest frame whose "up" is ``up_ref`` (body at
    rest reads ``up_ref``). ``q`` maps body vectors into the rest frame."""

    up_ref: tuple[float, float, float]
    q: tuple = (1.0, 0.0, 0.0, 0.0)
    t: float | None = None
    w_prev: tuple | None = None  # previous bias-corrected rate (body frame), for the trapezoid
    still_s: float = 0.0
    since_rezero_s: float = math.inf
    # what this accelerometer reads at rest: cheap sensors read 1 g as 0.95-1.05 g, and
    # "|a| = 1 g" is the test for "not accelerating" (UCI subject 2's reads 1.05 g)
    one_g: float = GRAVITY_MS2


def _reset_from_acc(o: _Orientation, a: tuple) -> None:
    # Heading is unknown after a (re)start: take the smallest rotation to the rest pose.
    o.q = _q_from_to(a, o.up_ref)
    o.w_prev = None
    o.still_s = 0.0


def _orientation_update(
    s: AngleFilterSettings, o: _Orientation, t: float, a_raw: tuple, w: tuple | None
) -> tuple[float, bool]:
    """Advance one sample. ``a_raw`` accelerometer (body frame, m/s²); ``w`` bias-corrected
    rate (body frame, rad/s) or None. Returns (angular speed rad/s, still)."""
    an = math.sqrt(a_raw[0] ** 2 + a_raw[1] ** 2 + a_raw[2] ** 2)
    a = (a_raw[0] / an, a_raw[1] / an, a_raw[2] / an) if an > 1e-6 else o.up_ref
    dt = -1.0 if o.t is None else t - o.t
    o.t = t
    if dt <= 0.0 or dt > s.max_dt_s:
        _reset_from_acc(o, a)
        o.since_rezero_s = math.inf
        o.w_prev = w
        return 0.0, False
    norm_ok = abs(an / o.one_g - 1.0) < s.acc_norm_tolerance
    u = _qrot_inv(o.q, o.up_ref)  # predicted "up" in the body frame
    if w is None:
        # No gyroscope: a low-pass of the gravity direction, smallest rotation (no heading).
        k = min(1.0, dt / s.acc_only_tau_s)
        if abs(an / o.one_g - 1.0) > s.acc_only_norm_tolerance:
            k *= 0.3
        nu = _unit3((u[0] + k * (a[0] - u[0]), u[1] + k * (a[1] - u[1]), u[2] + k * (a[2] - u[2])))
        speed = math.acos(max(-1.0, min(1.0, nu[0] * u[0] + nu[1] * u[1] + nu[2] * u[2]))) / dt
        o.q = _q_from_to(nu, o.up_ref)
        o.since_rezero_s = math.inf
        return speed, speed < math.radians(s.still_dps) and norm_ok
    wp = o.w_prev if o.w_prev is not None else w
    wx, wy, wz = 0.5 * (w[0] + wp[0]), 0.5 * (w[1] + wp[1]), 0.5 * (w[2] + wp[2])
    o.w_prev = w
    speed = math.sqrt(w[0] ** 2 + w[1] ** 2 + w[2] ** 2)
    if norm_ok and speed < math.radians(s.moving_dps):
        # Mahony's correction: a rate k (a × u) turns the predicted up toward the measured.
        k = 1.0 / s.acc_tau_s
        wx += k * (a[1] * u[2] - a[2] * u[1])
        wy += k * (a[2] * u[0] - a[0] * u[2])
        wz += k * (a[0] * u[1] - a[1] * u[0])
    o.q = _qnorm(_qmul(o.q, _qexp(wx, wy, wz, dt)))
    still = speed < math.radians(s.still_dps) and norm_ok
    o.still_s = o.still_s + dt if still else 0.0
    o.since_rezero_s += dt
    if o.still_s >= s.still_min_s:
        cos_rest = a[0] * o.up_ref[0] + a[1] * o.up_ref[1] + a[2] * o.up_ref[2]
        if cos_rest > math.cos(math.radians(s.rest_tol_deg)):
            # At rest in the rest pose: pull the rotation about the vertical back to zero.
            ux, uy, uz = o.up_ref
            twist = 2.0 * math.atan2(o.q[1] * ux + o.q[2] * uy + o.q[3] * uz, o.q[0])
            if twist > math.pi:
                twist -= 2.0 * math.pi
            elif twist < -math.pi:
                twist += 2.0 * math.pi
            turn = -twist * min(1.0, dt / s.heading_tau_s)
            o.q = _qnorm(_qmul(_qexp(ux, uy, uz, turn), o.q))
            o.since_rezero_s = 0.0
    return speed, still


def _track_bias(
    s: AngleFilterSettings, bias: tuple, raw: tuple, dt: float, still_s: float
) -> tuple:
    """While still long enough the raw gyro reading is the bias: follow it slowly."""
    if still_s < s.still_min_s or dt <= 0.0 or dt > s.max_dt_s:
        return bias
    k = dt / s.bias_tau_s
    b = (bias[0] + k * (raw[0] - bias[0]), bias[1] + k * (raw[1] - bias[1]),
         bias[2] + k * (raw[2] - bias[2]))
    n = math.sqrt(b[0] ** 2 + b[1] ** 2 + b[2] ** 2)
    limit = math.radians(s.max_bias_dps)
    return b if n <= limit else (b[0] * limit / n, b[1] * limit / n, b[2] * limit / n)


def _rows(t_s: np.ndarray, x: np.ndarray | None, name: str) -> list | None:
    if x is None:
        return None
    x = np.asarray(x, dtype=float)
    if x.shape != (len(t_s), 3):
        raise ValueError(f"{name} must be (n, 3) with n == len(t_s); got {x.shape}")
    return x.tolist()


# -- calibrated thigh angles -------------------------------------------------------------------


@dataclass(frozen=True)
class ThighAngleSettings:
    calibration: Calibration
    rest_gravity_thigh: tuple[float, float, float] = (0.0, -1.0, 0.0)  # standing
    filter: AngleFilterSettings = field(default_factory=AngleFilterSettings)

    @cached_property
    def _compiled_constants(self) -> tuple[float, ...]:
        """The compiled filter's constants (``_anglefilter.c``), worked out as :func:`_thigh_filter`
        works out its locals."""
        fs = self.filter
        return tuple(float(v) for v in (
            *(v for row in self.calibration.mounting for v in row),
            fs.max_dt_s, fs.acc_norm_tolerance, fs.still_min_s, fs.acc_only_tau_s, fs.acc_only_norm_tolerance,
            math.radians(fs.still_dps), math.radians(fs.moving_dps), 1.0 / fs.acc_tau_s,
            math.cos(math.radians(fs.rest_tol_deg)), fs.heading_tau_s, fs.bias_tau_s,
            math.radians(fs.max_bias_dps),
        ))


@dataclass
class ThighAngleState:
    orientation: _Orientation
    bias: tuple[float, float, float]  # sensor frame, rad/s


@dataclass
class ThighAngles:
    t_s: np.ndarray  # (m,)
    flexion_deg: np.ndarray  # (m,) + flexion, - extension
    abduction_deg: np.ndarray  # (m,) + abduction, - adduction (both legs)
    rotation_deg: np.ndarray  # (m,) + internal rotation (both legs); NaN without a gyroscope
    rotation_observable: np.ndarray  # (m,) bool: gravity or a recent re-zero backs rotation up
    speed_dps: np.ndarray  # (m,) angular speed (bias-corrected)
    up_thigh: np.ndarray  # (m, 3) estimated "up" in the thigh frame


def thigh_angles_init(settings: ThighAngleSettings) -> ThighAngleState:
    g = settings.rest_gravity_thigh
    up = _unit3((-g[0], -g[1], -g[2]))
    bias = settings.calibration.gyro_bias_rad_s or (0.0, 0.0, 0.0)
    one_g = settings.calibration.acc_one_g_ms2 or GRAVITY_MS2
    return ThighAngleState(_Orientation(up_ref=up, one_g=one_g), tuple(bias))


def _thigh_filter(
    settings: ThighAngleSettings,
    state: ThighAngleState,
    ts: list,
    acc: list,
    gyr: list | None,
) -> tuple[ThighAngleState, list, list, list]:
    """The orientation filter of :func:`thigh_angles_step` over one chunk of plain floats.

    Per sample, exactly :func:`_orientation_update` then :func:`_track_bias` (the readable
    reference, still used by the principal-axis kernel), written out as straight-line float
    arithmetic on locals: no tuples, calls or attribute lookups per sample, the same
    operations in the same order, so the result is bit-identical (a test compares the two on
    random and hostile input). This is the service's per-sample cost on the Pi (issue 14).

    Returns the new state and, per sample, the orientation ``q`` (w, x, y, z), the angular
    speed (rad/s) and the time since the last heading re-zero.
    """
    fs = settings.filter
    o = shallow_copy(state.orientation)
    b0, b1, b2 = state.bias
    (m00, m01, m02), (m10, m11, m12), (m20, m21, m22) = settings.calibration.mounting
    r0, r1, r2 = o.up_ref
    qw, qx, qy, qz = o.q
    t_last = o.t
    w_prev = o.w_prev
    still_s, since_rezero, one_g = o.still_s, o.since_rezero_s, o.one_g
    max_dt, norm_tol, still_min = fs.max_dt_s, fs.acc_norm_tolerance, fs.still_min_s
    acc_only_tau, acc_only_tol = fs.acc_only_tau_s, fs.acc_only_norm_tolerance
    still_rad = math.radians(fs.still_dps)
    moving_rad = math.radians(fs.moving_dps)
    k_acc = 1.0 / fs.acc_tau_s
    cos_rest_tol = math.cos(math.radians(fs.rest_tol_deg))
    heading_tau, bias_tau = fs.heading_tau_s, fs.bias_tau_s
    bias_limit = math.radians(fs.max_bias_dps)
    sqrt, sin, cos, atan2, acos = math.sqrt, math.sin, math.cos, math.atan2, math.acos
    pi, two_pi, inf = math.pi, 2.0 * math.pi, math.inf
    qs: list = []
    speeds: list = []
    sinces: list = []
    for i in range(len(ts)):
        t = ts[i]
        ax, ay, az = acc[i]
        a0 = m00 * ax + m01 * ay + m02 * az
        a1 = m10 * ax + m11 * ay + m12 * az
        a2 = m20 * ax + m21 * ay + m22 * az
        if gyr is not None:
            g0, g1, g2 = gyr[i]
            gx, gy, gz = g0 - b0, g1 - b1, g2 - b2
            w0 = m00 * gx + m01 * gy + m02 * gz
            w1 = m10 * gx + m11 * gy + m12 * gz
            w2 = m20 * gx + m21 * gy + m22 * gz
        # -- _orientation_update --
        an = sqrt(a0 ** 2 + a1 ** 2 + a2 ** 2)
        if an > 1e-6:
            a0, a1, a2 = a0 / an, a1 / an, a2 / an
        else:
            a0, a1, a2 = r0, r1, r2
        t_prev = t_last
        dt = -1.0 if t_last is None else t - t_last
        t_last = t
        if dt <= 0.0 or dt > max_dt:
            qw, qx, qy, qz = _q_from_to((a0, a1, a2), (r0, r1, r2))
            still_s = 0.0
            since_rezero = inf
            w_prev = None if gyr is None else (w0, w1, w2)
            sp = 0.0
        else:
            nerr = abs(an / one_g - 1.0)
            norm_ok = nerr < norm_tol
            # u = _qrot_inv(q, up_ref)
            tx = 2.0 * (qy * r2 - qz * r1)
            ty = 2.0 * (qz * r0 - qx * r2)
            tz = 2.0 * (qx * r1 - qy * r0)
            u0 = r0 - qw * tx + (qy * tz - qz * ty)
            u1 = r1 - qw * ty + (qz * tx - qx * tz)
            u2 = r2 - qw * tz + (qx * ty - qy * tx)
            if gyr is None:
                k = min(1.0, dt / acc_only_tau)
                if nerr > acc_only_tol:
                    k *= 0.3
                v0, v1, v2 = u0 + k * (a0 - u0), u1 + k * (a1 - u1), u2 + k * (a2 - u2)
                n = sqrt(v0 * v0 + v1 * v1 + v2 * v2)
                v0, v1, v2 = v0 / n, v1 / n, v2 / n
                sp = acos(max(-1.0, min(1.0, v0 * u0 + v1 * u1 + v2 * u2))) / dt
                qw, qx, qy, qz = _q_from_to((v0, v1, v2), (r0, r1, r2))
                since_rezero = inf
            else:
                if w_prev is None:
                    p0, p1, p2 = w0, w1, w2
                else:
                    p0, p1, p2 = w_prev
                wx, wy, wz = 0.5 * (w0 + p0), 0.5 * (w1 + p1), 0.5 * (w2 + p2)
                w_prev = (w0, w1, w2)
                sp = sqrt(w0 ** 2 + w1 ** 2 + w2 ** 2)
                if norm_ok and sp < moving_rad:
                    wx += k_acc * (a1 * u2 - a2 * u1)
                    wy += k_acc * (a2 * u0 - a0 * u2)
                    wz += k_acc * (a0 * u1 - a1 * u0)
                # q = _qnorm(_qmul(q, _qexp(wx, wy, wz, dt)))
                n = sqrt(wx * wx + wy * wy + wz * wz)
                if n < 1e-12:
                    ew, ex, ey, ez = 1.0, 0.5 * wx * dt, 0.5 * wy * dt, 0.5 * wz * dt
                else:
                    half = 0.5 * n * dt
                    s = sin(half) / n
                    ew, ex, ey, ez = cos(half), wx * s, wy * s, wz * s
                cw = qw * ew - qx * ex - qy * ey - qz * ez
                cx = qw * ex + qx * ew + qy * ez - qz * ey
                cy = qw * ey - qx * ez + qy * ew + qz * ex
                cz = qw * ez + qx * ey - qy * ex + qz * ew
                n = sqrt(cw * cw + cx * cx + cy * cy + cz * cz)
                qw, qx, qy, qz = cw / n, cx / n, cy / n, cz / n
                still = sp < still_rad and norm_ok
                still_s = still_s + dt if still else 0.0
                since_rezero += dt
                if still_s >= still_min and a0 * r0 + a1 * r1 + a2 * r2 > cos_rest_tol:
                    # At rest in the rest pose: pull the rotation about the vertical back to zero.
                    twist = 2.0 * atan2(qx * r0 + qy * r1 + qz * r2, qw)
                    if twist > pi:
                        twist -= two_pi
                    elif twist < -pi:
                        twist += two_pi
                    turn = -twist * min(1.0, dt / heading_tau)
                    # q = _qnorm(_qmul(_qexp(up_ref, turn), q))
                    n = sqrt(r0 * r0 + r1 * r1 + r2 * r2)
                    if n < 1e-12:
                        ew, ex, ey, ez = 1.0, 0.5 * r0 * turn, 0.5 * r1 * turn, 0.5 * r2 * turn
                    else:
                        half = 0.5 * n * turn
                        s = sin(half) / n
                        ew, ex, ey, ez = cos(half), r0 * s, r1 * s, r2 * s
                    cw = ew * qw - ex * qx - ey * qy - ez * qz
                    cx = ew * qx + ex * qw + ey * qz - ez * qy
                    cy = ew * qy - ex * qz + ey * qw + ez * qx
                    cz = ew * qz + ex * qy - ey * qx + ez * qw
                    n = sqrt(cw * cw + cx * cx + cy * cy + cz * cz)
                    qw, qx, qy, qz = cw / n, cx / n, cy / n, cz / n
                    since_rezero = 0.0
        # -- _track_bias (sensor frame, on the raw reading) --
        # (conditions written as the reference's, negated: NaN input takes the same branches)
        if gyr is not None and t_prev is not None and not (still_s < still_min or dt <= 0.0 or dt > max_dt):
            k = dt / bias_tau
            b0, b1, b2 = b0 + k * (g0 - b0), b1 + k * (g1 - b1), b2 + k * (g2 - b2)
            n = sqrt(b0 ** 2 + b1 ** 2 + b2 ** 2)
            if not n <= bias_limit:
                b0, b1, b2 = b0 * bias_limit / n, b1 * bias_limit / n, b2 * bias_limit / n
        qs.append((qw, qx, qy, qz))
        speeds.append(sp)
        sinces.append(since_rezero)
    o.q, o.t, o.w_prev = (qw, qx, qy, qz), t_last, w_prev
    o.still_s, o.since_rezero_s = still_s, since_rezero
    return ThighAngleState(o, (b0, b1, b2)), qs, speeds, sinces


def _thigh_filter_compiled(
    settings: ThighAngleSettings,
    state: ThighAngleState,
    t_s: np.ndarray,
    acc: np.ndarray,
    gyr: np.ndarray | None,
    per_sample: bool,
) -> tuple[ThighAngleState, np.ndarray, np.ndarray | None, np.ndarray | None] | None:
    """:func:`_thigh_filter` compiled (``_anglefilter.c``), bit for bit: the new state, the
    orientations (m, 4) and, if ``per_sample``, the speeds and times since the last re-zero
    (m,) — or None where the Python filter raises (a division by zero, an overflow, the sine of
    an infinity): the caller then runs the chunk in Python, which raises it. ``t_s``, ``acc``
    and ``gyr``: C-contiguous float64 arrays."""
    o = state.orientation
    n = len(t_s)
    qs = np.empty((n, 4))
    speeds = np.empty(n) if per_sample else None
    sinces = np.empty(n) if per_sample else None
    out = _anglefilter.filter(settings._compiled_constants, o.up_ref, o.one_g, o.q, o.t, o.w_prev, o.still_s,
                              o.since_rezero_s, state.bias, t_s, acc, gyr, qs, speeds, sinces)
    if out is None:
        return None
    o = shallow_copy(o)
    o.q, o.t, o.w_prev, o.still_s, o.since_rezero_s, bias = out
    return ThighAngleState(o, bias), qs, speeds, sinces


def _check_compiled(compiled: bool) -> None:
    if compiled and _anglefilter is None:
        raise RuntimeError("the compiled angle filter (hipsense.signal._anglefilter) is not built in this install")


def _float_rows(t_s: np.ndarray, x: np.ndarray | None, name: str) -> np.ndarray | None:
    if x is None:
        return None
    x = np.ascontiguousarray(x, dtype=float)
    if x.shape != (len(t_s), 3):
        raise ValueError(f"{name} must be (n, 3) with n == len(t_s); got {x.shape}")
    return x


def thigh_angles_step(
    settings: ThighAngleSettings,
    state: ThighAngleState,
    t_s: np.ndarray,
    acc_ms2: np.ndarray,
    gyr_rad_s: np.ndarray | None = None,
    *,
    compiled: bool = False,
) -> tuple[ThighAngleState, ThighAngles]:
    """One chunk: ``t_s`` (m,), ``acc_ms2`` (m, 3) and ``gyr_rad_s`` (m, 3) in the SENSOR frame.
    ``compiled``: run the filter's recurrence compiled (bit-identical; see
    :data:`COMPILED_FILTER_AVAILABLE`)."""
    _check_compiled(compiled)
    t_s = np.ascontiguousarray(t_s, dtype=float).reshape(-1)
    has_gyro = gyr_rad_s is not None
    result = None
    if compiled:
        result = _thigh_filter_compiled(settings, state, t_s, _float_rows(t_s, acc_ms2, "acc_ms2"),
                                        _float_rows(t_s, gyr_rad_s, "gyr_rad_s"), True)
    if result is None:
        acc = _rows(t_s, acc_ms2, "acc_ms2")
        gyr = _rows(t_s, gyr_rad_s, "gyr_rad_s")
        new_state, qs, speeds, sinces = _thigh_filter(settings, state, t_s.tolist(), acc, gyr)
    else:
        new_state, q_array, speeds, since_array = result
        qs, sinces = q_array.tolist(), since_array.tolist()
    fs = settings.filter
    up_ref = new_state.orientation.up_ref
    mirror_a, mirror_r = (-1.0, 1.0) if settings.calibration.side == "right" else (1.0, -1.0)
    tilt_cos = math.cos(math.radians(fs.rotation_tilt_deg))
    n = len(qs)
    out = []
    observable = []
    ups = []
    for i in range(n):
        q = qs[i]
        f, ab, r = _euler_zxy(q)
        u = _qrot_inv(q, up_ref)
        out.append((f * _DEG, mirror_a * ab * _DEG, mirror_r * r * _DEG if has_gyro else math.nan))
        # The long axis (thigh y) seen in the rest frame, against the rest frame's vertical.
        long_vertical = abs(u[1]) > tilt_cos
        observable.append(has_gyro and (not long_vertical or sinces[i] <= fs.rotation_trust_s))
        ups.append(u)
    angles = np.array(out, dtype=float).reshape(n, 3)
    return (
        new_state,
        ThighAngles(t_s, angles[:, 0], angles[:, 1], angles[:, 2], np.array(observable, dtype=bool).reshape(n),
                    np.array(speeds, dtype=float).reshape(n) * _DEG, np.array(ups, dtype=float).reshape(n, 3)),
    )


def thigh_angles_latest(
    settings: ThighAngleSettings,
    state: ThighAngleState,
    t_s: list,
    acc_ms2: list,
    gyr_rad_s: list | None = None,
) -> tuple[ThighAngleState, tuple[float, float, float] | None]:
    """:func:`thigh_angles_step` for a caller that only wants the newest reading (the live
    view): the same filter over every sample, but the angles of the last sample with a finite
    flexion only, as ``(t_s, flexion_deg, abduction_deg)`` — or None if no sample of the chunk
    has one. Takes plain lists (``ndarray.tolist()``): ``t_s`` (m,), ``acc_ms2`` and
    ``gyr_rad_s`` m rows of 3, sensor frame."""
    new_state, qs, _, _ = _thigh_filter(settings, state, t_s, acc_ms2, gyr_rad_s)
    mirror_a = -1.0 if settings.calibration.side == "right" else 1.0
    for i in range(len(qs) - 1, -1, -1):
        f, ab, _ = _euler_zxy(qs[i])
        flexion = f * _DEG
        if math.isfinite(flexion):
            return new_state, (t_s[i], flexion, mirror_a * ab * _DEG)
    return new_state, None


def thigh_angles_latest_arrays(
    settings: ThighAngleSettings,
    state: ThighAngleState,
    t_s: np.ndarray,
    acc_ms2: np.ndarray,
    gyr_rad_s: np.ndarray | None = None,
) -> tuple[ThighAngleState, tuple[float, float, float] | None]:
    """:func:`thigh_angles_latest` with the filter compiled (bit-identical), on arrays: ``t_s``
    (m,), ``acc_ms2`` and ``gyr_rad_s`` (m, 3) float64, sensor frame (copied only if not
    C-contiguous float64). Needs :data:`COMPILED_FILTER_AVAILABLE`."""
    _check_compiled(True)
    t = np.ascontiguousarray(t_s, dtype=float).reshape(-1)
    # (the compiled filter checks lengths only: an (3, m) array would be read as rows)
    acc = _float_rows(t, acc_ms2, "acc_ms2")
    gyr = _float_rows(t, gyr_rad_s, "gyr_rad_s")
    result = _thigh_filter_compiled(settings, state, t, acc, gyr, False)
    if result is None:  # Python raises here (or, should it not, gives the answer)
        return thigh_angles_latest(settings, state, t.tolist(), acc.tolist(), None if gyr is None else gyr.tolist())
    new_state, qs, _, _ = result
    mirror_a = -1.0 if settings.calibration.side == "right" else 1.0
    for i in range(len(qs) - 1, -1, -1):
        f, ab, _ = _euler_zxy(qs[i].tolist())
        flexion = f * _DEG
        if math.isfinite(flexion):
            return new_state, (float(t[i]), flexion, mirror_a * ab * _DEG)
    return new_state, None


def thigh_angles(
    settings: ThighAngleSettings,
    t_s: np.ndarray,
    acc_ms2: np.ndarray,
    gyr_rad_s: np.ndarray | None = None,
) -> ThighAngles:
    """Batch form: init, one step over everything."""
    _, out = thigh_angles_step(settings, thigh_angles_init(settings), t_s, acc_ms2, gyr_rad_s)
    return out


# -- fallback: the signed angle along the principal motion axis ----------------------------------


@dataclass(frozen=True)
class PrincipalAngleSettings:
    rest_init_s: float = 1.0  # still this long at the start: the rest pose
    still_raw_dps: float = 6.0  # raw (bias not yet known) gyro rate that counts as still
    # |a| within this of 1 g can be a rest (the sensor's own 1 g is learned from that rest)
    rest_norm_tolerance: float = 0.15
    motion_dps: float = 20.0  # rates above this teach the motion axis
    min_tilt_deg: float = 10.0  # accelerometer-only: tilt that teaches the motion direction
    filter: AngleFilterSettings = field(default_factory=AngleFilterSettings)


@dataclass
class PrincipalAngleState:
    t: float | None = None
    rest_s: float = 0.0
    rest_sum: tuple = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0.0)  # acc dir xyz, gyro xyz, count, |a|
    orientation: _Orientation | None = None  # set once the rest pose is known
    bias: tuple = (0.0, 0.0, 0.0)
    moment: tuple = (0.0,) * 6  # xx, xy, xz, yy, yz, zz of the motion samples
    axis: tuple | None = None


@dataclass
class PrincipalAngle:
    t_s: np.ndarray  # (m,)
    angle_deg: np.ndarray  # (m,) NaN until the rest pose and a motion axis are known
    axis: np.ndarray  # (3,) motion axis (sensor frame) at the end of the chunk, NaN if unknown
    speed_dps: np.ndarray  # (m,)


def principal_angle_init(settings: PrincipalAngleSettings) -> PrincipalAngleState:
    return PrincipalAngleState()


def _moment_add(m: tuple, v: tuple, weight: float) -> tuple:
    x, y, z = v
    return (m[0] + weight * x * x, m[1] + weight * x * y, m[2] + weight * x * z,
            m[3] + weight * y * y, m[4] + weight * y * z, m[5] + weight * z * z)


def _power_step(m: tuple, a: tuple) -> tuple:
    v = (m[0] * a[0] + m[1] * a[1] + m[2] * a[2], m[1] * a[0] + m[3] * a[1] + m[4] * a[2],
         m[2] * a[0] + m[4] * a[1] + m[5] * a[2])
    n = math.sqrt(v[0] ** 2 + v[1] ** 2 + v[2] ** 2)
    return a if n < 1e-300 else (v[0] / n, v[1] / n, v[2] / n)


def principal_angle_step(
    settings: PrincipalAngleSettings,
    state: PrincipalAngleState,
    t_s: np.ndarray,
    acc_ms2: np.ndarray,
    gyr_rad_s: np.ndarray | None = None,
) -> tuple[PrincipalAngleState, PrincipalAngle]:
    """One chunk of sensor-frame samples; no calibration needed."""
    t_s = np.asarray(t_s, dtype=float).reshape(-1)
    acc = _rows(t_s, acc_ms2, "acc_ms2")
    gyr = _rows(t_s, gyr_rad_s, "gyr_rad_s")
    st = shallow_copy(state)
    if st.orientation is not None:
        st.orientation = shallow_copy(st.orientation)
    s = settings
    fs = s.filter
    n = len(t_s)
    angle = np.full(n, math.nan)
    speed = np.zeros(n)
    ts = t_s.tolist()
    for i in range(n):
        t = ts[i]
        a = tuple(acc[i])
        an = math.sqrt(a[0] ** 2 + a[1] ** 2 + a[2] ** 2)
        dt = -1.0 if st.t is None else t - st.t
        st.t = t
        if st.orientation is None:
            # Still looking for the rest pose: a still spell of rest_init_s.
            raw_speed = 0.0 if gyr is None else math.sqrt(sum(v * v for v in gyr[i]))
            still = (abs(an / GRAVITY_MS2 - 1.0) < s.rest_norm_tolerance
                     and raw_speed < math.radians(s.still_raw_dps) and an > 1e-6)
            if still and st.rest_sum[6] > 0:  # and steady: |a| stays what it was in the spell
                still = abs(an * st.rest_sum[6] / st.rest_sum[7] - 1.0) < fs.acc_norm_tolerance
            if gyr is None and still and st.rest_sum[6] > 0:
                mean = _unit3(st.rest_sum[:3])
                still = (a[0] * mean[0] + a[1] * mean[1] + a[2] * mean[2]) / an > math.cos(
                    math.radians(2.0))
            if not still or dt <= 0.0 or dt > fs.max_dt_s:
                st.rest_s, st.rest_sum = 0.0, (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0.0)
                if not still:
                    continue
            g = gyr[i] if gyr is not None else (0.0, 0.0, 0.0)
            r = st.rest_sum
            st.rest_sum = (r[0] + a[0] / an, r[1] + a[1] / an, r[2] + a[2] / an,
                           r[3] + g[0], r[4] + g[1], r[5] + g[2], r[6] + 1, r[7] + an)
            if r[6] > 0:
                st.rest_s += dt
            if st.rest_s >= s.rest_init_s:
                r = st.rest_sum
                st.bias = (r[3] / r[6], r[4] / r[6], r[5] / r[6])
                st.orientation = _Orientation(up_ref=_unit3(r[:3]), one_g=r[7] / r[6])
                st.orientation.t = t  # continue from here without a reset
                st.orientation.q = (1.0, 0.0, 0.0, 0.0)
                st.orientation.still_s = st.rest_s
                angle[i] = 0.0
            continue
        o = st.orientation
        w = None
        if gyr is not None:
            g = gyr[i]
            w = (g[0] - st.bias[0], g[1] - st.bias[1], g[2] - st.bias[2])
        sp, _ = _orientation_update(fs, o, t, a, w)
        if w is not None:
            st.bias = _track_bias(fs, st.bias, tuple(gyr[i]), dt, o.still_s)
        speed[i] = sp * _DEG
        if w is not None:
            if sp > math.radians(s.motion_dps):
                st.moment = _moment_add(st.moment, w, dt)
                # The first movement fixes the sign; power iteration keeps it (M is PSD).
                st.axis = _unit3(w) if st.axis is None else _power_step(st.moment, st.axis)
            if st.axis is not None:
                ax = st.axis
                twist = 2.0 * math.atan2(o.q[1] * ax[0] + o.q[2] * ax[1] + o.q[3] * ax[2], o.q[0])
                if twist > math.pi:
                    twist -= 2.0 * math.pi
                elif twist < -math.pi:
                    twist += 2.0 * math.pi
                angle[i] = twist * _DEG
        else:
            u = _qrot_inv(o.q, o.up_ref)
            ref = o.up_ref
            d = (u[0] - ref[0], u[1] - ref[1], u[2] - ref[2])
            tilt = math.acos(max(-1.0, min(1.0, u[0] * ref[0] + u[1] * ref[1] + u[2] * ref[2])))
            if tilt > math.radians(s.min_tilt_deg):
                dn = _unit3(d)
                st.moment = _moment_add(st.moment, dn, dt)
                st.axis = dn if st.axis is None else _power_step(st.moment, st.axis)
            if st.axis is not None:
                side = d[0] * st.axis[0] + d[1] * st.axis[1] + d[2] * st.axis[2]
                angle[i] = (tilt if side >= 0 else -tilt) * _DEG
    axis = np.array(st.axis) if st.axis is not None else np.full(3, math.nan)
    return st, PrincipalAngle(t_s, angle, axis, speed)


def principal_angle(
    settings: PrincipalAngleSettings,
    t_s: np.ndarray,
    acc_ms2: np.ndarray,
    gyr_rad_s: np.ndarray | None = None,
) -> PrincipalAngle:
    """Batch form: init, one step over everything."""
    _, out = principal_angle_step(settings, principal_angle_init(settings), t_s, acc_ms2, gyr_rad_s)
    return out
