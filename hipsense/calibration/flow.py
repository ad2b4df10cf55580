"""``hipsense calibrate``: the guided set-up of one sensor on one thigh.

The steps, each with plain-language prompts, a progress display and retries:

1. pick the sensor (scan; ``--sensor`` picks by address);
2. check the stream: sample rate, drop-outs, noise, saturation;
3. keep still → gyroscope bias and noise floor;
4. stand upright → the thigh's long axis;
5. swing the leg forward and back → the flexion axis;
6. optionally, a few reference reps of a prescribed exercise → personal range of motion;

then it shows what it measured and saves the calibration file (:mod:`.store`).

The maths lives in :mod:`hipsense.signal.calibration`; this module only talks to the person and
the sensor. Steps are content-aware: "keep still" waits for a still spell (and starts over when
the sensor moves), "swing" starts collecting at the first movement, so neither a slow person nor
a slow radio spoils a step. With ``interactive=False`` (``--yes``) nobody presses Enter: each
step begins ``settle_s`` of sensor time after the previous one, for scripted installs and tests.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from hipsense.errors import CalibrationError
from hipsense.signal.calibration import (
    GRAVITY_MS2,
    Calibration,
    CalibrationFit,
    CalibrationSettings,
    PersonalRom,
    Problem,
    check_stream,
    fit_calibration,
    fit_flexion_axis,
    fit_long_axis,
    fit_personal_rom,
    fit_still,
)

__all__ = [
    "CalibrationOutcome",
    "CalibrationPlan",
    "Feed",
    "Segment",
    "Ui",
    "run_calibration",
]

def full_scale(sensor_type: str) -> tuple[float | None, float | None]:
    """(acc m/s², gyro rad/s) full scale of ``sensor_type`` where its decoder fixes them (for
    the saturation check), else (None, None)."""
    from hipsense.device.decoders import DECODERS

    decoder = DECODERS.get(sensor_type)
    return (None, None) if decoder is None or decoder.full_scale is None else decoder.full_scale


@dataclass(frozen=True)
class CalibrationPlan:
    """How long each step lasts (seconds of sensor time) and what to ask for."""

    side: str = "right"
    check_s: float = 2.0
    still_s: float = 3.0
    stand_s: float = 3.0
    swing_s: float = 6.0
    settle_s: float = 2.0  # between steps: time to get into position (after Enter: a bit)
    max_wait_s: float = 30.0  # for a still spell or the first movement, before giving up
    exercise_id: str | None = None
    reference_reps: int = 3
    reference_s: float = 20.0
    attempts: int = 3
    interactive: bool = True

    def __post_init__(self) -> None:
        if self.side not in ("left", "right"):
            raise ValueError(f"side must be 'left' or 'right', got {self.side!r}")
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")


@dataclass(frozen=True)
class Segment:
    """Samples of one step, sensor frame, SI units."""

    t_s: np.ndarray
    acc_ms2: np.ndarray
    gyr_rad_s: np.ndarray | None

    @property
    def duration_s(self) -> float:
        return float(self.t_s[-1] - self.t_s[0]) if len(self.t_s) > 1 else 0.0


# -- where samples come from ----------------------------------------------------------------------


class Feed(abc.ABC):
    """Sample blocks of one sensor, in order, with step-shaped ways of taking them.

    Subclasses supply :meth:`next_block`; times are sensor-time seconds.
    """

    nominal_rate_hz: float = 100.0

    @abc.abstractmethod
    async def next_block(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The next block ``(t_s, acc, gyr)``; raises CalibrationError when data stops."""

    @abc.abstractmethod
    def discard_pending(self) -> None:
        """Forget what arrived while the person read a prompt."""

    async def _blocks_for(
        self, seconds: float, progress: Callable[[float], None] | None
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
        start = None
        while True:
            block = await self.next_block()
            if len(block[0]) == 0:
                continue
            start = float(block[0][0]) if start is None else start
            blocks.append(block)
            done = float(block[0][-1]) - start
            if progress:
                progress(min(1.0, done / seconds))
            if done >= seconds:
                return blocks

    async def skip(self, seconds: float) -> None:
        """Let ``seconds`` of samples go by (the person gets into position)."""
        if seconds > 0:
            await self._blocks_for(seconds, None)

    async def take(self, seconds: float, progress: Callable[[float], None] | None = None) -> Segment:
        """The next ``seconds`` of samples, whatever they hold."""
        return _join(await self._blocks_for(seconds, progress))

    async def take_still(
        self, seconds: float, max_wait_s: float, progress: Callable[[float], None] | None = None,
        *, still_dps: float = 10.0, tilt_deg: float = 4.0,
    ) -> Segment | None:
        """The first spell of ``seconds`` without movement; None when none comes within
        ``max_wait_s``. Generous thresholds: this only finds the spell; the fit judges it."""
        window: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
        ref: np.ndarray | None = None
        start = None
        while True:
            t, acc, gyr = await self.next_block()
            if len(t) == 0:
                continue
            start = float(t[0]) if start is None else start
            block_end = float(t[-1])
            direction = acc / np.linalg.norm(acc, axis=1, keepdims=True)
            moving = np.abs(np.linalg.norm(acc, axis=1) - GRAVITY_MS2) > 0.1 * GRAVITY_MS2
            if gyr is not None:
                moving |= np.degrees(np.linalg.norm(gyr, axis=1)) > still_dps
            if ref is not None:
                moving |= np.degrees(np.arccos(np.clip(direction @ ref, -1, 1))) > tilt_deg
            if moving.any():
                # Start again after the last moving sample of this block.
                cut = int(np.flatnonzero(moving)[-1]) + 1
                window = []
                ref = None
                t, acc = t[cut:], acc[cut:]
                gyr = None if gyr is None else gyr[cut:]
                direction = direction[cut:]
            if len(t):
                if ref is None:
                    ref = direction[0]
                window.append((t, acc, gyr))
                held = float(t[-1] - window[0][0][0])
                if progress:
                    progress(min(1.0, held / seconds))
                if held >= seconds:
                    return _join(window)
            elif progress:
                progress(0.0)
            if block_end - start > max_wait_s + seconds:
                return None

    async def take_after_movement(
        self, seconds: float, max_wait_s: float, progress: Callable[[float], None] | None = None,
        *, moving_dps: float = 30.0, calm_dps: float = 10.0, rest_first_s: float = 0.5,
        tilt_deg: float = 10.0, pre_roll_s: float = 0.3,
    ) -> Segment | None:
        """``seconds`` of samples from the first clear movement after a moment of rest (with a
        little of the rest before it).

        Waiting for rest first means the tail of a previous step (a swing still dying out)
        never counts as this step's movement, and the segment starts in a known pose.
        """
        recent: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
        ref: np.ndarray | None = None  # "up" at rest, for accelerometer-only sensors
        calm_since: float | None = None
        armed = False
        start = None
        while True:
            t, acc, gyr = await self.next_block()
            if len(t) == 0:
                continue
            start = float(t[0]) if start is None else start
            recent.append((t, acc, gyr))
            while len(recent) > 1 and float(t[-1] - recent[1][0][0]) > pre_roll_s:
                recent.pop(0)
            direction = acc / np.linalg.norm(acc, axis=1, keepdims=True)
            if gyr is not None:
                rate_dps = np.degrees(np.linalg.norm(gyr, axis=1))
                calm, moved = rate_dps < calm_dps, rate_dps > moving_dps
            else:
                calm = np.abs(np.linalg.norm(acc, axis=1) - GRAVITY_MS2) < 0.05 * GRAVITY_MS2
                moved = np.zeros(len(t), dtype=bool)  # decided against ref below
            first = None
            for i in range(len(t)):
                if not armed:
                    calm_since = (float(t[i]) if calm_since is None else calm_since) if calm[i] \
                        else None
                    if calm_since is not None and float(t[i]) - calm_since >= rest_first_s:
                        armed, ref = True, direction[i]
                    continue
                if gyr is None and ref is not None:
                    moved[i] = math.degrees(math.acos(min(1.0, float(direction[i] @ ref)))) \
                        > tilt_deg
                if moved[i]:
                    first = float(t[i])
                    break
            if first is not None:
                # Collect from the pre-roll on, until `seconds` past the first movement.
                blocks = list(recent)
                while float(blocks[-1][0][-1]) - first < seconds:
                    block = await self.next_block()
                    if len(block[0]):
                        blocks.append(block)
                        if progress:
                            progress(min(1.0, (float(block[0][-1]) - first) / seconds))
                return _join(blocks)
            if float(t[-1]) - start > max_wait_s:
                return None


def _join(blocks: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray | None]]) -> Segment:
    t = np.concatenate([b[0] for b in blocks])
    acc = np.concatenate([b[1] for b in blocks])
    gyr = None if any(b[2] is None for b in blocks) else np.concatenate([b[2] for b in blocks])
    return Segment(t, acc, gyr)


class LinkFeed(Feed):
    """Blocks from a :class:`~hipsense.device.ble.SensorLink`, consumed in the background so
    the link never backs up while a person reads a prompt.

    ``retime``: replace host times by sample count / nominal rate — only for an emulated sensor
    replaying faster than real time, whose receive times are compressed.
    """

    def __init__(self, link: Any, nominal_rate_hz: float, *, retime: bool = False,
                 no_data_timeout_s: float = 10.0) -> None:
        self.link = link
        self.nominal_rate_hz = nominal_rate_hz
        self.retime = retime
        self.no_data_timeout_s = no_data_timeout_s
        self.battery_percent: int | None = None
        self.events: list[Any] = []
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._count = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._pump(), name="calibration feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _pump(self) -> None:
        from hipsense.device.events import LinkEvent, LinkEventKind

        try:
            async for item in self.link.decoded():
                if isinstance(item, LinkEvent):
                    self.events.append(item)
                    if item.kind is LinkEventKind.BATTERY:
                        self.battery_percent = item.battery_percent
                    continue
                if item.n == 0 or item.acc_ms2 is None:
                    continue  # gyro-only blocks (Polar) need pairing; WitMotion/DOT send both
                t = item.t_s
                if self.retime:
                    t = (self._count + np.arange(item.n)) / self.nominal_rate_hz
                self._count += item.n
                self._queue.put_nowait((np.asarray(t), item.acc_ms2, item.gyr_rad_s))
        except Exception as exc:  # noqa: BLE001 - handed to the flow, which explains it
            self._queue.put_nowait(exc)

    async def next_block(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        try:
            async with asyncio.timeout(self.no_data_timeout_s):
                item = await self._queue.get()
        except TimeoutError:
            raise CalibrationError(
                f"no data from the sensor for {self.no_data_timeout_s:g} s — is it switched on, "
                "charged and close to the Raspberry Pi?") from None
        if isinstance(item, Exception):
            raise CalibrationError(f"the sensor link failed: {item}") from item
        return item

    def discard_pending(self) -> None:
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, Exception):
                self._queue.put_nowait(item)
                return


# -- talking to the person ------------------------------------------------------------------------


class Ui(Protocol):
    def heading(self, text: str) -> None: ...
    def say(self, text: str) -> None: ...
    def problem(self, text: str) -> None: ...
    async def ready(self, prompt: str) -> None: ...
    async def choose(self, prompt: str, count: int) -> int: ...
    def progress(self, label: str) -> Any: ...  # context manager with .update(fraction)


# -- the flow ---------------------------------------------------------------------------------


@dataclass
class CalibrationOutcome:
    """What the flow measured; ``fit.calibration`` is what gets saved."""

    fit: CalibrationFit
    rate_hz: float
    battery_percent: int | None = None
    rom: PersonalRom | None = None
    attempts: dict[str, int] = field(default_factory=dict)

    @property
    def calibration(self) -> Calibration:
        assert self.fit.calibration is not None
        return self.fit.calibration

    def measurements(self) -> dict[str, Any]:
        """For the calibration file and the summary: plain numbers, in units people read."""
        fit = self.fit
        bias = fit.still.gyro_bias_rad_s
        return {
            "rate_hz": round(self.rate_hz, 2),
            "battery_percent": self.battery_percent,
            "gyro_bias_dps": None if bias is None else [round(math.degrees(b), 3) for b in bias],
            "gyro_noise_dps": None if fit.still.gyro_noise_rad_s is None
            else round(math.degrees(fit.still.gyro_noise_rad_s), 3),
            "acc_noise_ms2": round(fit.still.acc_noise_ms2, 4),
            "swing_forward_deg": round(fit.flexion_axis.forward_deg, 1),
            "swing_backward_deg": round(fit.flexion_axis.backward_deg, 1),
            "swing_sign_from": fit.flexion_axis.sign_from,
            "axis_angle_deg": round(fit.calibration.axis_angle_deg, 2) if fit.calibration else None,
            "attempts": dict(self.attempts),
        }


async def _attempts(
    ui: Ui,
    plan: CalibrationPlan,
    name: str,
    attempts: dict[str, int],
    run_once: Callable[[int], Any],
) -> Any:
    """Run one step until its checks pass, telling the person what went wrong each time."""
    problems: Sequence[Problem] = ()
    for attempt in range(1, plan.attempts + 1):
        attempts[name] = attempt
        result, problems = await run_once(attempt)
        if not problems:
            return result
        for p in problems:
            ui.problem(p.message[0].upper() + p.message[1:])
        if attempt < plan.attempts:
            ui.say("Let's try again.")
    raise CalibrationError(
        f"the '{name}' step did not succeed after {plan.attempts} tries: "
        + "; ".join(p.message for p in problems))


async def _prompt(ui: Ui, feed: Feed, plan: CalibrationPlan, text: str) -> None:
    if plan.interactive:
        await ui.ready(text)
        feed.discard_pending()
        await feed.skip(0.5)  # the hand that pressed Enter is still moving
    else:
        ui.say(text)
        await feed.skip(plan.settle_s)


def _too_still(what: str) -> Problem:
    return Problem("moved_while_still",
                   f"the sensor never kept still long enough while {what} — let's try again")


async def run_calibration(
    feed: Feed,
    ui: Ui,
    plan: CalibrationPlan,
    *,
    sensor_type: str = "",
    settings: CalibrationSettings | None = None,
    angles_for_rom: Callable[[Calibration, Segment], np.ndarray] | None = None,
) -> CalibrationOutcome:
    """Steps 2–6 against a live (or fake) feed. Raises CalibrationError when a step keeps
    failing; the message says what to do."""
    s = settings or CalibrationSettings()
    acc_fs, gyr_fs = full_scale(sensor_type)
    scale = {"acc_full_scale_ms2": acc_fs, "gyr_full_scale_rad_s": gyr_fs}
    attempts: dict[str, int] = {}

    # 2. the stream itself
    ui.heading("Checking the sensor")
    rate_box: list[float] = []

    async def check(_: int) -> tuple[None, Sequence[Problem]]:
        with ui.progress("listening") as bar:
            seg = await feed.take(plan.check_s, bar.update)
        rate, problems = check_stream(seg.t_s, feed.nominal_rate_hz, s)
        rate_box[:] = [rate]
        ui.say(f"{rate:.0f} samples a second"
               + ("" if seg.gyr_rad_s is not None else " (no gyroscope: tilt only)"))
        return None, problems

    await _attempts(ui, plan, "check", attempts, check)

    # 3. still
    ui.heading("Step 1 of 3: keep still")

    async def still(_: int) -> tuple[Any, Sequence[Problem]]:
        await _prompt(ui, feed, plan, "Sit down with the sensor strapped on and keep your leg "
                                      "completely still (or lay the sensor on a table).")
        with ui.progress("keep still") as bar:
            seg = await feed.take_still(plan.still_s, plan.max_wait_s, bar.update)
        if seg is None:
            return None, (_too_still("you sat still"),)
        fit = fit_still(seg.t_s, seg.acc_ms2, seg.gyr_rad_s, s, **scale)
        return fit, fit.problems

    still_fit = await _attempts(ui, plan, "still", attempts, still)

    # 4 + 5. stand, then swing; repeated together when they disagree (sensor slipped)
    async def stand(_: int) -> tuple[Any, Sequence[Problem]]:
        await _prompt(ui, feed, plan, "Stand up straight on both feet, the leg with the sensor "
                                      "relaxed, and keep still. Hold on to something if you "
                                      "need to.")
        with ui.progress("stand still") as bar:
            seg = await feed.take_still(plan.stand_s, plan.max_wait_s, bar.update)
        if seg is None:
            return None, (_too_still("you stood"),)
        fit = fit_long_axis(seg.t_s, seg.acc_ms2, seg.gyr_rad_s, s, **scale)
        return fit, fit.problems

    def swing_with(long_axis: Any) -> Callable[[int], Any]:
        async def swing(_: int) -> tuple[Any, Sequence[Problem]]:
            await _prompt(ui, feed, plan, "Still standing, swing the leg with the sensor forward "
                                          "and back like a pendulum, forward first, knee "
                                          "straight, a few times.")
            with ui.progress("swing forward and back") as bar:
                seg = await feed.take_after_movement(plan.swing_s, plan.max_wait_s, bar.update)
            if seg is None:
                return None, (Problem("swing_too_small", "no swing was seen — swing the leg "
                                                         "forward and back, and let's try again"),)
            fit = fit_flexion_axis(seg.t_s, seg.acc_ms2, seg.gyr_rad_s, s,
                                   gyro_bias_rad_s=still_fit.gyro_bias_rad_s,
                                   standing_up_sensor=long_axis.axis_sensor, **scale)
            return fit, fit.problems
        return swing

    async def stand_and_swing(_: int) -> tuple[Any, Sequence[Problem]]:
        ui.heading("Step 2 of 3: stand upright")
        long_axis = await _attempts(ui, plan, "stand", attempts, stand)
        ui.heading("Step 3 of 3: swing the leg")
        flexion = await _attempts(ui, plan, "swing", attempts, swing_with(long_axis))
        fit = fit_calibration(still_fit, long_axis, flexion, side=plan.side, settings=s)
        return fit, fit.problems

    fit = await _attempts(ui, plan, "stand and swing", attempts, stand_and_swing)

    # 6. personal range of motion (optional; a failure here does not lose the calibration)
    rom = None
    if plan.exercise_id and angles_for_rom is not None:
        ui.heading(f"Reference repetitions: {plan.exercise_id}")

        async def reference(_: int) -> tuple[Any, Sequence[Problem]]:
            await _prompt(ui, feed, plan, f"Get into the starting position and do "
                                          f"{plan.reference_reps} repetitions, as your "
                                          "therapist showed you.")
            with ui.progress("repetitions") as bar:
                seg = await feed.take_after_movement(plan.reference_s, plan.max_wait_s,
                                                     bar.update, moving_dps=15.0)
            if seg is None:
                return None, (Problem("no_reps", "no movement was seen — let's try again"),)
            angle = angles_for_rom(fit.calibration, seg)
            result = fit_personal_rom(plan.exercise_id, seg.t_s, angle,
                                      expected_reps=plan.reference_reps)
            return result, result.problems

        try:
            rom = await _attempts(ui, plan, "reference reps", attempts, reference)
        except CalibrationError as exc:
            ui.problem(f"Skipping the personal range of motion: {exc}")
        if rom is not None:
            calibration = fit.calibration
            others = tuple(r for r in calibration.rom if r.exercise_id != rom.exercise_id)
            fit = CalibrationFit(
                dataclasses.replace(calibration, rom=(*others, rom)),
                fit.still, fit.long_axis, fit.flexion_axis, fit.problems)

    battery = getattr(feed, "battery_percent", None)
    return CalibrationOutcome(fit, rate_box[0] if rate_box else math.nan, battery, rom, attempts)


# -- reference reps: the angle along the exercise's motion -------------------------------------


def rom_angles(exercise_id: str, side: str) -> Callable[[Calibration, Segment], np.ndarray]:
    """The signed angle (deg, 0 at the starting position) along ``exercise_id``'s motion.

    Calibrated angles are positive for flexion, abduction and internal rotation on both legs;
    the catalogue's right-thigh axis says which of them the exercise moves, and which way.
    """
    from hipsense.exercises.catalogue import get_exercise
    from hipsense.signal.angles import ThighAngleSettings, thigh_angles

    spec = get_exercise(exercise_id)
    axis = np.asarray(spec.motion.axis_thigh, dtype=float)
    component = int(np.argmax(np.abs(axis)))
    if spec.motion.kind in ("circle", "none"):
        raise CalibrationError(f"{exercise_id} has no single range of motion to measure; "
                               "choose a rep exercise")
    # thigh x → abduction (sign flipped: -x is abduction), y → rotation, z → flexion
    sign = float(np.sign(axis[component])) * (-1.0 if component == 0 else 1.0)

    def angles(calibration: Calibration, segment: Segment) -> np.ndarray:
        settings = ThighAngleSettings(calibration, rest_gravity_thigh=spec.rest_gravity_for(side))
        out = thigh_angles(settings, segment.t_s, segment.acc_ms2, segment.gyr_rad_s)
        column = (out.abduction_deg, out.rotation_deg, out.flexion_deg)[component]
        return sign * column

    return angles


# -- the whole session: pick, connect, run, show, save ----------------------------------------


def describe_mounting(calibration: Calibration) -> list[str]:
    """Where each thigh direction points on the sensor, e.g. "forward: sensor -Y (3° off)"."""
    lines = []
    for row, what in zip(calibration.mounting, ("forward", "up the thigh", "to the right")):
        row_v = np.asarray(row)
        k = int(np.argmax(np.abs(row_v)))
        sign = "+" if row_v[k] > 0 else "-"
        off = math.degrees(math.acos(min(1.0, abs(float(row_v[k])))))
        lines.append(f"{what:13s} = sensor {sign}{'XYZ'[k]} ({off:.0f}° off)")
    return lines


def show_outcome(ui: Ui, outcome: CalibrationOutcome) -> None:
    m = outcome.measurements()
    ui.heading("What was measured")
    ui.say(f"sample rate      {m['rate_hz']:.1f} Hz")
    if m["battery_percent"] is not None:
        ui.say(f"battery          {m['battery_percent']} %")
    if m["gyro_bias_dps"] is not None:
        ui.say("gyro bias        " + ", ".join(f"{b:+.2f}" for b in m["gyro_bias_dps"]) + " °/s"
               f"  (noise {m['gyro_noise_dps']:.2f} °/s)")
    ui.say(f"accel noise      {m['acc_noise_ms2']:.3f} m/s²")
    ui.say(f"swing            {m['swing_forward_deg']:.0f}° forward, "
           f"{m['swing_backward_deg']:.0f}° back")
    ui.say(f"axes agree       {m['axis_angle_deg']:.1f}° apart (90° is perfect)")
    for line in describe_mounting(outcome.calibration):
        ui.say(line)
    if outcome.rom is not None:
        ui.say(f"range of motion  {outcome.rom.rom_deg:.0f}° in {outcome.rom.exercise_id} "
               f"({len(outcome.rom.peaks_deg)} reps)")


async def pick_sensor(ui: Ui, plan: CalibrationPlan, *, address: str | None,
                      scan_timeout_s: float, backends: Any) -> Any:
    """Scan and choose: by address, the only one, or (interactive) the person's choice."""
    from hipsense.device.ble import scan_sensors
    from hipsense.device.ble_errors import ADVICE_SENSOR_MISSING

    ui.heading("Looking for sensors")
    with ui.progress("scanning") as bar:
        bar.update(0.0)
        found = await scan_sensors(scan_timeout_s, backend=backends.scanner)
        bar.update(1.0)
    if address is not None:
        match = [f for f in found if f.address.upper() == address.upper()]
        if not match:
            raise CalibrationError(f"sensor {address} was not found. {ADVICE_SENSOR_MISSING}")
        return match[0]
    if not found:
        raise CalibrationError(f"no supported sensor was found. {ADVICE_SENSOR_MISSING}")
    for i, f in enumerate(found, 1):
        ui.say(f"  {i}. {f.name or '(no name)'}  {f.address}  {f.sensor_type}  {f.rssi} dBm")
    if len(found) == 1 or not plan.interactive:
        ui.say(f"Using {found[0].name or found[0].address} (strongest signal).")
        return found[0]
    choice = await ui.choose("Which sensor is on the thigh?", len(found))
    return found[choice - 1]


async def calibrate_sensor(
    ui: Ui,
    plan: CalibrationPlan,
    *,
    address: str | None = None,
    scan_timeout_s: float = 5.0,
    backends: Any = None,
    directory: Any = None,
) -> tuple[Any, Any]:
    """The whole guided session. Returns (StoredCalibration, path of the saved file)."""
    from hipsense.device.backends import BleBackends
    from hipsense.calibration.store import StoredCalibration, save_calibration
    from hipsense.device.ble import SensorLink
    from hipsense.device.decoders import make_decoder

    backends = backends or BleBackends()
    found = await pick_sensor(ui, plan, address=address, scan_timeout_s=scan_timeout_s,
                              backends=backends)
    decoder = make_decoder(found.sensor_type)
    link = SensorLink(
        decoder, address=found.address, max_failed_attempts=3,
        scanner_backend=backends.scanner, client_backend=backends.client,
        pause_scale=0.01 if backends.emulated else 1.0,
    )
    ui.say(f"Connecting to {found.name or found.address} ...")
    async with link:
        feed = LinkFeed(link, decoder.nominal_rate_hz, retime=backends.speed != 1.0)
        feed.start()
        try:
            outcome = await run_calibration(
                feed, ui, plan, sensor_type=found.sensor_type,
                angles_for_rom=rom_angles(plan.exercise_id, plan.side) if plan.exercise_id
                else None)
        finally:
            await feed.stop()
    show_outcome(ui, outcome)
    stored = StoredCalibration(outcome.calibration, found.address, found.sensor_type, found.name,
                               measurements=outcome.measurements())
    path = save_calibration(stored, directory)
    ui.say(f"Saved to {path}")
    return stored, path
