# Synthetic data: for tests only, no accuracy claim rests on it
"""A synthetic thigh-IMU generator for every catalogue exercise.

``synthesize(spec)`` plays a person doing ``spec``: it builds the thigh's orientation over time
from the spec (rest posture, motion axis, range, tempo, holds, reps, sets), adds person-to-person
and rep-to-rep variability and a little tremor, and derives what a sensor strapped to the thigh
would measure: accelerometer (specific force, m/s², gravity included) and gyroscope (rad/s, body
frame), both in the SENSOR frame, with noise, a constant gyro bias and a random mounting.

It knows the truth (rep intervals, holds, thigh angles, mounting) so tests can check counters
against it. It is a test helper, deliberately simple, and NOT a model of real people: nothing
about hipsense's accuracy may be claimed from it (real recordings are in /work/shared/datasets).

Frames (the thigh frame of ``hipsense.exercises.spec``: x anterior, y superior, z right):

* world: z up, gravity = (0, 0, -9.81) m/s²;
* ``thigh_to_world[i]`` maps thigh-frame vectors to the world at sample ``i``;
* ``mounting`` maps sensor-frame vectors to the thigh frame: ``v_thigh = mounting.apply(v_s)``.

The trajectory is a function of continuous time, so gyro and linear acceleration are finite
differences of orientations (and of the sensor's position) a millisecond apart, evaluated at the
actual (jittered) timestamps. Approximations, on purpose: the thigh pivots about the hip even
where the knee is the real pivot (bridges); jumps move the hip only vertically; the other leg's
turn in alternating exercises is a small sway of the instrumented thigh.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from hipsense.exercises.spec import ExerciseSpec

__all__ = ["GRAVITY_MS2", "SynthImu", "TrueRep", "synthesize"]

GRAVITY_MS2 = 9.81
_FD_STEP_S = 1e-3  # finite-difference step for gyro and acceleration
# Sensor position in the RIGHT thigh frame relative to the hip joint: lateral, 30 cm down the
# thigh (where UCI's u3 sat, just above the knee). Mirrored (z -> -z) for the left thigh.
_SENSOR_OFFSET_M = np.array([0.0, -0.30, 0.07])


@dataclass(frozen=True)
class TrueRep:
    """One rep as it really happened. Times in seconds on the ``t_s`` clock."""

    start_s: float
    end_s: float
    hold_start_s: float | None
    hold_end_s: float | None
    peak_deg: float  # signed excursion along the motion axis (cycles: the cone's diameter)
    set_index: int
    direction: str | None = None  # cycles: clockwise/counterclockwise; side-to-side: +/-


@dataclass(frozen=True)
class SynthImu:
    """A synthetic recording and its truth."""

    exercise_id: str
    side: str
    rate_hz: float
    t_s: np.ndarray  # (n,) seconds, increasing (jittered, with gaps where samples dropped)
    acc_ms2: np.ndarray  # (n, 3) sensor frame, specific force (reads +9.81 "up" at rest)
    gyr_rad_s: np.ndarray  # (n, 3) sensor frame, includes gyro_bias_rad_s and noise
    reps: tuple[TrueRep, ...]
    thigh_angles_deg: np.ndarray  # (n, 3) flexion, abduction, internal rotation vs. rest pose
    mounting: Rotation  # sensor -> thigh
    thigh_to_world: Rotation  # (n,) true orientation
    gyro_bias_rad_s: np.ndarray  # (3,) sensor frame
    dropped_samples: int
    rest_gravity_thigh: np.ndarray = field(default_factory=lambda: np.zeros(3))


# -- smooth keyframe curves ----------------------------------------------------------------------


def _min_jerk(u: np.ndarray) -> np.ndarray:
    # Zero velocity and acceleration at both ends: how people move between two positions.
    u = np.clip(u, 0.0, 1.0)
    return u**3 * (10.0 - 15.0 * u + 6.0 * u**2)


class _Curve:
    """A scalar of time through keyframes, moving between them with minimum-jerk profiles."""

    def __init__(self) -> None:
        self.times: list[float] = [0.0]
        self.values: list[float] = [0.0]

    def to(self, t: float, value: float) -> None:
        if t < self.times[-1]:
            raise ValueError("keyframes must be in time order")
        self.times.append(t)
        self.values.append(value)

    def hold_until(self, t: float) -> None:
        self.to(t, self.values[-1])

    def __call__(self, t: np.ndarray) -> np.ndarray:
        times = np.asarray(self.times)
        values = np.asarray(self.values)
        k = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 1)
        k_next = np.minimum(k + 1, len(times) - 1)
        span = times[k_next] - times[k]
        u = np.where(span > 0, (t - times[k]) / np.where(span > 0, span, 1.0), 1.0)
        return values[k] + (values[k_next] - values[k]) * _min_jerk(u)


@dataclass
class _Pulse:
    """A raised-cosine burst of vertical hip acceleration (m/s²) from t0 lasting duration_s."""

    t0: float
    duration_s: float
    area_ms: float  # its integral: the change of vertical speed, m/s

    def __call__(self, t: np.ndarray) -> np.ndarray:
        u = (t - self.t0) / self.duration_s
        inside = (u >= 0) & (u <= 1)
        return np.where(inside, self.area_ms / self.duration_s * (1 - np.cos(2 * np.pi * u)), 0.0)


@dataclass
class _Script:
    """What the person does, as curves of time. Built by the per-measure choreographers."""

    main: _Curve = field(default_factory=_Curve)  # angle (deg) about the spec's motion axis
    lift_flexion: _Curve = field(default_factory=_Curve)  # deg about +z (circles, steps)
    cone_deg: _Curve = field(default_factory=_Curve)  # circles: cone half-angle
    circle_phase: _Curve = field(default_factory=_Curve)  # circles: radians, + = ccw
    pulses: list[_Pulse] = field(default_factory=list)
    flights: list[tuple[float, float]] = field(default_factory=list)  # free fall intervals
    reps: list[TrueRep] = field(default_factory=list)

    @property
    def now(self) -> float:
        return max(c.times[-1] for c in (self.main, self.lift_flexion, self.cone_deg,
                                         self.circle_phase))

    def wait(self, seconds: float) -> None:
        end = self.now + seconds
        for curve in (self.main, self.lift_flexion, self.cone_deg, self.circle_phase):
            curve.hold_until(end)

    def sync(self) -> None:
        """Bring every curve up to now, so the next move of any curve starts from here."""
        self.wait(0.0)

    def vertical_hip_acc(self, t: np.ndarray) -> np.ndarray:
        acc = np.zeros_like(t)
        for pulse in self.pulses:
            acc += pulse(t)
        for start, end in self.flights:
            acc -= np.where((t >= start) & (t < end), GRAVITY_MS2, 0.0)
        return acc


# -- the person --------------------------------------------------------------------------------


@dataclass
class _Person:
    """How this synthetic person varies: fixed traits plus rep-to-rep scatter."""

    rng: np.random.Generator
    variability: float
    rom_scale: float
    tempo_scale: float

    def jitter(self, value: float, spread: float | None = None) -> float:
        spread = self.variability if spread is None else spread
        return float(value * self.rng.uniform(1 - spread, 1 + spread))

    def rom(self, spec: ExerciseSpec, rom_deg: float | None) -> float:
        low, high = spec.motion.rom_deg_min, spec.motion.rom_deg_max
        typical = rom_deg if rom_deg is not None else self.rom_scale * (low + high) / 2
        # Never below the counter's threshold unless asked: synthetic reps must be countable.
        return max(self.jitter(typical), spec.thresholds.min_rom_deg * 1.2, 0.5)


# -- choreographies per measure ----------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    reps: int
    sets: int
    move_s: float
    hold_s: float
    rest_s: float
    rest_between_sets_s: float
    rom_deg: float | None


def _excursion_reps(spec: ExerciseSpec, plan: _Plan, person: _Person, s: _Script) -> None:
    """Move out, hold, come back: reps, holds and timed exercises."""
    alternating = spec.dose.sides == "alternating"
    for set_index in range(plan.sets):
        for rep in range(plan.reps):
            sign = -1.0 if spec.motion.bidirectional and rep % 2 else 1.0
            peak = sign * person.rom(spec, plan.rom_deg)
            start = s.now
            s.main.to(start + person.jitter(plan.move_s), peak)
            hold_start = s.now
            hold = person.jitter(plan.hold_s, person.variability / 2) if plan.hold_s else 0.0
            s.main.hold_until(hold_start + hold)
            hold_end = s.now
            s.main.to(hold_end + person.jitter(plan.move_s), 0.0)
            s.reps.append(TrueRep(
                start, s.now, hold_start if hold else None, hold_end if hold else None, peak,
                set_index, direction=("+" if sign > 0 else "-") if spec.motion.bidirectional
                else None))
            s.wait(person.jitter(plan.rest_s))
            if alternating:
                # The other leg's turn: this thigh only sways a little (not a rep of ours).
                sway = 0.1 * peak
                s.main.to(s.now + plan.move_s, -sway)
                s.main.to(s.now + plan.hold_s + plan.move_s, 0.0)
                s.wait(person.jitter(plan.rest_s))
        if set_index < plan.sets - 1:
            s.wait(plan.rest_between_sets_s)


def _circles(spec: ExerciseSpec, plan: _Plan, person: _Person, s: _Script) -> None:
    """Lift the leg, circle it ``reps`` times in each of the spec's directions, lower it."""
    for set_index in range(plan.sets):
        for direction in spec.motion.directions:
            sign = 1.0 if direction == "counterclockwise" else -1.0
            diameter = person.rom(spec, plan.rom_deg)
            s.sync()
            s.lift_flexion.to(s.now + 1.0, person.jitter(25.0))
            s.sync()
            s.cone_deg.to(s.now + 0.5, diameter / 2)
            s.sync()
            # One smooth block of turns; circle i ends when the phase passes i full turns.
            block_start, phase_start = s.now, s.circle_phase.values[-1]
            block_s = person.jitter(plan.move_s * 2) * plan.reps
            s.circle_phase.to(block_start + block_s, phase_start + sign * 2 * np.pi * plan.reps)
            s.sync()
            t = np.linspace(block_start, block_start + block_s, 20_001)
            turns = np.abs(s.circle_phase(t) - phase_start) / (2 * np.pi)
            ends = [float(t[min(np.searchsorted(turns, i - 1e-9), len(t) - 1)])
                    for i in range(1, plan.reps + 1)]
            for begin, end in zip([block_start, *ends[:-1]], ends):
                s.reps.append(TrueRep(begin, end, None, None, diameter, set_index, direction))
            s.cone_deg.to(s.now + 0.5, 0.0)
            s.sync()
            s.lift_flexion.to(s.now + 1.0, 0.0)
            s.wait(person.jitter(plan.rest_s))
        if set_index < plan.sets - 1:
            s.wait(plan.rest_between_sets_s)


def _jump(s: _Script, person: _Person, target_deg: float) -> tuple[float, float]:
    """Push off, fly (free fall), land with a spike; the thigh reaches ``target_deg`` on landing.

    Returns (push start, landing end).
    """
    push_s, landing_s = 0.15, 0.06
    flight_s = person.jitter(0.3)
    take_off_speed = GRAVITY_MS2 * flight_s / 2  # up and down again in flight_s
    start = s.now
    s.pulses.append(_Pulse(start, push_s, take_off_speed))
    s.flights.append((start + push_s, start + push_s + flight_s))
    # A short landing: the same speed lost in a fraction of the time gives the impact spike.
    s.pulses.append(_Pulse(start + push_s + flight_s, landing_s, take_off_speed))
    landed = start + push_s + flight_s + landing_s
    s.main.to(landed, target_deg)
    s.wait(0.0)
    return start, landed


def _impacts(spec: ExerciseSpec, plan: _Plan, person: _Person, s: _Script) -> None:
    """Jumps. Half jacks: out and back in (two landings, one rep). Skaters: every bound.
    Plain jumps: one landing a rep."""
    bound_by_bound = spec.dose.sides == "alternating"
    for set_index in range(plan.sets):
        for rep in range(plan.reps):
            peak = person.rom(spec, plan.rom_deg)
            if bound_by_bound:
                # Own-leg landing: the knee bends (thigh flexes); the other leg's: it swings back.
                target = peak if rep % 2 == 0 else -0.5 * peak
                start, landed = _jump(s, person, target)
                hold = person.jitter(plan.hold_s) if plan.hold_s else 0.2
                s.main.hold_until(landed + hold)
                hold_end = s.now
                s.main.to(s.now + 0.3, 0.0)
                s.reps.append(TrueRep(start, s.now, landed, hold_end, target, set_index))
            elif spec.thresholds.impacts_per_rep == 2:  # half jacks: out, then back in
                start, _ = _jump(s, person, peak)
                s.wait(person.jitter(0.15))
                _, landed = _jump(s, person, 0.0)
                s.reps.append(TrueRep(start, landed, None, None, peak, set_index))
            else:  # one jump, one landing, then straighten up
                start, landed = _jump(s, person, peak)
                s.main.to(s.now + 0.4, 0.0)
                s.reps.append(TrueRep(start, s.now, None, None, peak, set_index))
            s.wait(person.jitter(plan.rest_s))
        if set_index < plan.sets - 1:
            s.wait(plan.rest_between_sets_s)


def _steps(spec: ExerciseSpec, plan: _Plan, person: _Person, s: _Script) -> None:
    """Side steps: this leg lifts and swings out; the other leg follows; each foot lands."""
    for set_index in range(plan.sets):
        for _ in range(plan.reps):
            peak = person.rom(spec, plan.rom_deg)
            step_s = person.jitter(plan.move_s)
            s.sync()
            start = s.now
            s.main.to(start + step_s / 2, peak)
            s.lift_flexion.to(start + step_s / 2, person.jitter(10.0))
            s.main.to(start + step_s, 0.0)
            s.lift_flexion.to(start + step_s, 0.0)
            s.reps.append(TrueRep(start, start + step_s, None, None, peak, set_index))
            s.pulses.append(_Pulse(start + step_s - 0.05, 0.05, 0.3))  # heel strike
            # The other leg's step: this one is the stance leg and tilts back a little.
            s.main.to(s.now + step_s / 2, -0.25 * peak)
            s.main.to(s.now + step_s / 2, 0.0)
            s.lift_flexion.hold_until(s.now)
            s.pulses.append(_Pulse(s.now - 0.05, 0.05, 0.3))
            s.wait(person.jitter(plan.rest_s))
        if set_index < plan.sets - 1:
            s.wait(plan.rest_between_sets_s)


_CHOREOGRAPHERS = {
    "reps": _excursion_reps,
    "holds": _excursion_reps,
    "timed": _excursion_reps,
    "cycles": _circles,
    "impacts": _impacts,
    "steps": _steps,
}


# -- from script to orientations ---------------------------------------------------------------


def _perpendicular_pair(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """e1, e2 with e1 × e2 = axis, so a phase increasing from e1 to e2 turns positively."""
    helper = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    e1 = np.cross(axis, helper)
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(axis, e1)


class _Trajectory:
    """The thigh's orientation relative to its rest pose, and the hip's vertical acceleration."""

    def __init__(self, spec: ExerciseSpec, side: str, script: _Script, tremor: _Tremor) -> None:
        self.main_axis = np.asarray(spec.motion.axis_for(side), dtype=float)
        self.circle_axis = self.main_axis
        self.e1, self.e2 = _perpendicular_pair(self.circle_axis)
        self.script = script
        self.tremor = tremor

    def relative(self, t: np.ndarray) -> Rotation:
        s = self.script
        main = Rotation.from_rotvec(np.radians(s.main(t))[:, None] * self.main_axis)
        lift = Rotation.from_rotvec(np.radians(s.lift_flexion(t))[:, None] * [0.0, 0.0, 1.0])
        phase = s.circle_phase(t)[:, None]
        tilt_axis = np.cos(phase) * self.e1 + np.sin(phase) * self.e2
        cone = Rotation.from_rotvec(np.radians(s.cone_deg(t))[:, None] * tilt_axis)
        # Body-frame composition: the lift happens first, the cone is drawn about the lifted
        # thigh, the main motion about the rest-frame axis. Tremor rides on top.
        return main * lift * cone * self.tremor(t)


class _Tremor:
    """Small physiological tremor: a few sinusoids (4-10 Hz) per axis with random phases."""

    def __init__(self, rng: np.random.Generator, amplitude_deg: float) -> None:
        self.freqs = rng.uniform(4.0, 10.0, size=(3, 3))
        self.phases = rng.uniform(0, 2 * np.pi, size=(3, 3))
        self.amplitude = np.radians(amplitude_deg) / 3

    def __call__(self, t: np.ndarray) -> Rotation:
        waves = np.sin(2 * np.pi * self.freqs[None] * t[:, None, None] + self.phases[None])
        return Rotation.from_rotvec(self.amplitude * waves.sum(axis=2))


# -- setup helpers -------------------------------------------------------------------------------

_DEFAULT_MOVE_S = {"reps": 1.2, "holds": 3.0, "timed": 1.0, "cycles": 1.0, "impacts": 0.3,
                   "steps": 0.7}
_DEFAULT_REST_S = {"reps": 1.5, "holds": 3.0, "timed": 1.0, "cycles": 2.0, "impacts": 0.4,
                   "steps": 0.1}
_STRETCH_HOLD_S = 20.0  # for stretches whose dose gives no hold time


def _default_plan(spec: ExerciseSpec, person: _Person, *, reps: int | None, sets: int,
                  move_s: float | None, hold_s: float | None, rest_s: float | None,
                  rest_between_sets_s: float, rom_deg: float | None) -> _Plan:
    if hold_s is None:
        hold_s = spec.dose.hold_s_min
        if hold_s is None:
            hold_s = _STRETCH_HOLD_S if spec.measure == "holds" else 0.0
    return _Plan(
        reps=reps if reps is not None else (spec.dose.reps_min or 10),
        sets=sets,
        move_s=move_s if move_s is not None
        else _DEFAULT_MOVE_S[spec.measure] * person.tempo_scale,
        hold_s=hold_s,
        rest_s=rest_s if rest_s is not None else _DEFAULT_REST_S[spec.measure],
        rest_between_sets_s=rest_between_sets_s,
        rom_deg=rom_deg,
    )


def _timestamps(rng: np.random.Generator, duration_s: float, rate_hz: float,
                jitter_s: float) -> np.ndarray:
    t = np.arange(int(duration_s * rate_hz) + 1) / rate_hz
    if jitter_s > 0:
        # Clipped below half a period so the timestamps stay in order.
        t = t + np.clip(rng.normal(0.0, jitter_s, size=t.shape), -0.4 / rate_hz, 0.4 / rate_hz)
    return t


def _rest_pose(rest_gravity_thigh: np.ndarray, heading_rad: float) -> Rotation:
    """A thigh -> world rotation that puts ``rest_gravity_thigh`` on world down, facing anywhere."""
    level, _ = Rotation.align_vectors([[0.0, 0.0, -1.0]], [rest_gravity_thigh])
    return Rotation.from_euler("z", heading_rad) * level


def _mounting(rng: np.random.Generator, mounting: Rotation | None | str) -> Rotation:
    if isinstance(mounting, Rotation):
        return mounting
    if mounting is None:
        return Rotation.identity()
    if mounting == "random":
        return Rotation.from_quat(_random_unit_quaternion(rng))
    raise ValueError(f"mounting must be 'random', None or a Rotation (got {mounting!r})")


def _random_unit_quaternion(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)  # a normalised 4-D Gaussian is uniform on the rotation group
    return q / np.linalg.norm(q)


def _thigh_angles_deg(relative: Rotation, side: str) -> np.ndarray:
    """Flexion, abduction, internal rotation (deg) of the thigh relative to its rest pose.

    Intrinsic z-x-y Euler angles (flexion first, as hip joint angles are usually given), with
    signs mirrored for the left thigh so abduction and internal rotation are positive on both.
    """
    angles = relative.as_euler("ZXY", degrees=True)
    mirror = np.array([1.0, -1.0, 1.0]) if side == "right" else np.array([1.0, 1.0, -1.0])
    return angles * mirror


# -- public entry point ------------------------------------------------------------------------


def synthesize(
    spec: ExerciseSpec,
    *,
    rate_hz: float = 100.0,
    reps: int | None = None,
    sets: int = 1,
    side: str = "right",
    seed: int = 0,
    move_s: float | None = None,
    hold_s: float | None = None,
    rest_s: float | None = None,
    rest_between_sets_s: float = 10.0,
    rom_deg: float | None = None,
    variability: float = 0.15,
    tremor_deg: float = 0.02,
    acc_noise_ms2: float = 0.03,
    gyr_noise_rad_s: float = 0.005,
    gyro_bias_rad_s: np.ndarray | tuple[float, float, float] | None = None,
    mounting: Rotation | None | str = "random",
    timestamp_jitter_s: float = 0.0,
    drop_fraction: float = 0.0,
    lead_s: float = 3.0,
) -> SynthImu:
    """Simulate one person doing ``spec`` with a thigh sensor.

    ``reps`` defaults to the dose's ``reps_min`` (per direction for cycles), ``hold_s`` to the
    dose's hold (20 s for stretches without one), ``move_s`` is the time to move out (and again
    to come back), ``rom_deg`` the typical excursion (default: the middle of the spec's range,
    scaled by a per-person factor). ``variability`` scatters ROM and tempo per rep (±fraction).
    ``mounting``: ``"random"`` (uniform random rotation), ``None`` (sensor frame = thigh
    frame) or a ``Rotation`` (sensor -> thigh). The recording starts and ends with ``lead_s``
    of rest. Set the noise arguments to 0 for exact signals.
    """
    if not 25.0 <= rate_hz <= 200.0:
        raise ValueError(f"rate_hz must be within 25-200 Hz (got {rate_hz})")
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right' (got {side!r})")
    if not 0.0 <= drop_fraction < 0.5:
        raise ValueError("drop_fraction must be in [0, 0.5)")
    rng = np.random.default_rng(seed)
    person = _Person(rng, variability, rom_scale=rng.uniform(0.85, 1.15),
                     tempo_scale=rng.uniform(0.85, 1.15))
    plan = _default_plan(spec, person, reps=reps, sets=sets, move_s=move_s, hold_s=hold_s,
                         rest_s=rest_s, rest_between_sets_s=rest_between_sets_s, rom_deg=rom_deg)

    script = _Script()
    script.wait(lead_s)
    _CHOREOGRAPHERS[spec.measure](spec, plan, person, script)
    script.wait(lead_s)
    duration = script.now

    t = _timestamps(rng, duration, rate_hz, timestamp_jitter_s)
    n_planned = len(t)
    kept = np.sort(rng.choice(n_planned, size=n_planned - int(drop_fraction * n_planned),
                              replace=False))
    t = t[kept]

    trajectory = _Trajectory(spec, side, script, _Tremor(rng, tremor_deg))
    rest_gravity = np.asarray(spec.rest_gravity_for(side), dtype=float)
    rest_to_world = _rest_pose(rest_gravity, heading_rad=rng.uniform(0, 2 * np.pi))
    sensor_offset = _SENSOR_OFFSET_M * (1.0 if side == "right" else np.array([1.0, 1.0, -1.0]))

    def thigh_to_world(times: np.ndarray) -> Rotation:
        return rest_to_world * trajectory.relative(times)

    h = _FD_STEP_S
    before, now, after = thigh_to_world(t - h), thigh_to_world(t), thigh_to_world(t + h)
    # Gyro: body-frame rotation between orientations 2h apart, per second.
    gyr_thigh = (before.inv() * after).as_rotvec() / (2 * h)
    # Linear acceleration of the sensor: the hip's plus that of a point swinging on the thigh.
    swing = (after.apply(sensor_offset) - 2 * now.apply(sensor_offset)
             + before.apply(sensor_offset)) / h**2
    hip = np.zeros_like(swing)
    hip[:, 2] = script.vertical_hip_acc(t)
    specific_force_world = swing + hip + np.array([0.0, 0.0, GRAVITY_MS2])
    acc_thigh = now.inv().apply(specific_force_world)

    mount = _mounting(rng, mounting)
    bias = (np.asarray(gyro_bias_rad_s, dtype=float) if gyro_bias_rad_s is not None
            else rng.normal(0.0, 0.01, size=3))
    acc = mount.inv().apply(acc_thigh) + rng.normal(0.0, acc_noise_ms2, size=acc_thigh.shape)
    gyr = (mount.inv().apply(gyr_thigh) + bias
           + rng.normal(0.0, gyr_noise_rad_s, size=gyr_thigh.shape))

    return SynthImu(
        exercise_id=spec.id, side=side, rate_hz=rate_hz, t_s=t, acc_ms2=acc, gyr_rad_s=gyr,
        reps=tuple(script.reps), thigh_angles_deg=_thigh_angles_deg(trajectory.relative(t), side),
        mounting=mount, thigh_to_world=now, gyro_bias_rad_s=bias,
        dropped_samples=n_planned - len(t),
        rest_gravity_thigh=rest_gravity,
    )
