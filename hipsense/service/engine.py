"""The session engine: samples in, guided counting out.

One engine per patient. It owns, for each sensor, a batch buffer, an
:class:`~hipsense.exercises.tracker.ExerciseTracker` for the exercise being done, a hold timer
for stretches and (on the first sensor) the exercise recogniser; and one :class:`Plan`. It
decides which exercise and side is active, numbers sets and reps, starts and ends sessions, and
hands every result to the :class:`~hipsense.service.results.ResultPublisher` and every cue to the
:class:`~hipsense.service.voice.Voice`.

Angular rate: a sensor configured with a gyroscope (``gyroscopes``) is counted with it from its
first block. Blocks without it — a GYRO stream that starts late, frames late or lost — are
bridged with no rotation (the tracker's tilt then follows the accelerometer); only a sustained
absence (``GYRO_ABSENT_S``) makes the sensor accelerometer-only, and a later block with angular
rate makes it a gyroscope sensor again. The tracker is rebuilt for the change only where that
splits no set (see ``_match_gyro``).

Single-threaded by design: the service calls it from one processing thread only (never from
the BLE event loop, since storing a result waits for an fsync). No clocks inside: time is the
sample time carried by the data, so a replay at 20x behaves like real time.

Sets are the tracker's: a set ends when the tracker closes it (a rest longer than
``set_rest_s``, a change of posture; see ``exercises/tracker.py``), when the patient switches
exercise (the tracker is flushed), or when the session ends. The engine hands each tracker
event to the plan in the tracker's order (a set's close before the first rep of the next), so
the plan only numbers on what the tracker decided. Stretches (measure ``holds``) are counted
by the tracker too, prescribed with reps or timed; only exercises a thigh cannot see (measure
``timed``) are timed by the hold timer, one hold a set. When a set of the plan's line ends and
the line has all its sets, the plan moves on: "switch sides", or the next exercise.

Every prescribed hold counts down — on the live view (``hold_remaining_s``) and in the voice
("5, 4, 3, 2, 1, relax") — from the countdown kernel (``signal/countdown.py``): the tracker
runs it for counted exercises, the engine on the hold timer's holds for timed ones. Its cues
fall on sample times, so what is said does not depend on how the samples were batched.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from hipsense.device.events import LinkEvent, LinkEventKind
from hipsense.device.samples import ImuSamples
from hipsense.exercises.catalogue import get_exercise
from hipsense.exercises.confidence import CONFIDENT
from hipsense.exercises.tracker import (
    MEASURE_COUNTERS,
    ExerciseTracker,
    RepResult,
    SetResult,
    TrackerOutput,
    TrackerSettings,
    is_short_hold,
)
from hipsense.exercises.vocabulary import ONE_THIGH, Measure, RepKind, Thigh
from hipsense.protocol import Flag, Prescription, new_session_id
from hipsense.publish import OutboxError
from hipsense.service.config import SessionConfig
from hipsense.service.holds import HoldResult, HoldTimer
from hipsense.service.journal import SampleJournal
from hipsense.service.live_angle import AngleReading, CalibratedAngle, excursion_reading, load_sensor_calibration
from hipsense.service.logs import fields
from hipsense.service.memory import release_free_memory
from hipsense.service.plan import UNCERTAIN_COUNT, ClosedSet, Plan, PlanLine
from hipsense.service.results import ResultPublisher
from hipsense.service.state import SessionStateStore
from hipsense.service.switching import ExerciseSwitcher
from hipsense.service.timebase import Timebase
from hipsense.service.voice import Voice
from hipsense.signal.countdown import CountdownCue, CountdownSettings, CountdownState, countdown_init, countdown_step

__all__ = ["COUNTED_STATE", "SessionEngine"]

log = logging.getLogger(__name__)

GYRO_ABSENT_S = 10.0
"""A sensor that sends angular rate and then sends blocks without it for this long has stopped
sending it (see :meth:`SessionEngine._match_gyro`); a shorter absence is bridged
(:meth:`SessionEngine._angular_rate`)."""
COUNTED_STATE = "counted"
"""The outbox state document that says how far the counting was stored (``_counted_doc``)."""
REPLAY_S = 30.0
"""A counter that has counted nothing yet keeps its input for this long, so that one rebuilt for
a gyroscope that starts late takes over from where it started (a rep in progress included)."""


class _AngleTap:
    """Wraps a tracker's pipeline to keep the angle and angular speed it computed last.

    The tracker returns reps and sets only; the stretch hold timer needs the pipeline's angle
    stream (the excursion from the exercise's rest posture), which is already computed: no
    second filter for it. (The live view uses :mod:`.live_angle`, the thigh angle proper.)
    """

    def __init__(self, pipeline: Any) -> None:
        self._inner = pipeline
        # read twice a batch (_match_gyro, _tracker_gyr): an attribute of its own, not a
        # __getattr__ fallback (an AttributeError raised and caught on every read); a
        # pipeline's has_gyro is fixed when it is built
        self.has_gyro: bool = pipeline.has_gyro
        self.t_s = np.empty(0)
        self.angle_deg = np.empty(0)
        self.speed_dps = np.empty(0)

    def push(self, *args: Any, **kwargs: Any) -> Any:
        out = self._inner.push(*args, **kwargs)
        self.t_s, self.angle_deg, self.speed_dps = out.t_s, out.angle_deg, out.speed_dps
        return out

    def flush(self) -> Any:
        return self._inner.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@dataclasses.dataclass
class _Channel:
    """One sensor: where it is, its buffered samples and its counting state."""

    index: int
    side: Thigh
    batch_s: float
    pending: list[ImuSamples] = dataclasses.field(default_factory=list)
    pending_t0: float = 0.0  # the first pending sample's time (read only while pending is not empty)
    # the sensor sends angular rate (None: no block yet); a block with it makes this True, and
    # GYRO_ABSENT_S of blocks without it make it False
    has_gyro: bool | None = None
    gyro_absent_since: float | None = None  # sample time of the first block without angular rate
    tracker: ExerciseTracker | None = None
    tap: _AngleTap | None = None
    counted: bool = False  # the tracker has counted a rep (or closed a set) since it was built
    set_just_closed: bool = False  # its last push closed a set: a rebuild splits nothing now
    # its input while it has counted nothing (the last REPLAY_S): (t, acc, angular rate or None)
    replay: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = dataclasses.field(default_factory=list)
    key: tuple[str, str] | None = None  # (exercise, side) the tracker counts for
    holds: HoldTimer | None = None  # timed exercises only (a thigh cannot see them)
    countdown: CountdownState | None = None  # the hold timer's countdown
    hold_remaining_s: float | None = None  # on the last sample processed; None: not holding
    gaps: list[tuple[float, float]] = dataclasses.field(default_factory=list)
    # the last sample replayed from the journal: the first live one after it ends a gap (the
    # restart's), so a rep across the restart is flagged sensor_gap as one across a BLE drop is
    resume_gap_from: float | None = None
    angle: CalibratedAngle | None = None  # None: uncalibrated, the live view shows the excursion
    address: str | None = None
    connected: bool = False
    battery_pct: int | None = None
    last_t_s: float | None = None
    # While the recogniser has not yet confirmed the active exercise: the tracker's results,
    # held back, and the samples they came from (to count them again as the right exercise)
    held: list[TrackerOutput] = dataclasses.field(default_factory=list)
    held_raw: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = dataclasses.field(default_factory=list)

    def buffered_s(self) -> float:
        if not self.pending:
            return 0.0
        return float(self.pending[-1].t_s[-1]) - self.pending_t0


class SessionEngine:
    """Turns sensor data into a guided, counted, published session (see the module docstring)."""

    def __init__(
        self,
        *,
        sensor_sides: Sequence[str],
        publisher: ResultPublisher,
        voice: Voice,
        timebase: Timebase,
        settings: SessionConfig,
        state: SessionStateStore | None = None,
        prescription: Prescription | None = None,
        batch_s: float = 0.1,
        gyroscopes: Sequence[bool] | None = None,
        journal: SampleJournal | None = None,
    ) -> None:
        self.publisher = publisher
        self.voice = voice
        self.timebase = timebase
        self.settings = settings
        self.state = state
        self.channels = [_Channel(i, side, batch_s) for i, side in enumerate(sensor_sides)]
        # A sensor configured with a gyroscope is counted with it from its first block, even if
        # its angular rate starts after its acceleration (a Polar's GYRO stream can start
        # seconds after its ACC): no rebuild of the counter mid-rep. Unknown: the first block says.
        for channel, gyroscope in zip(self.channels, gyroscopes or (), strict=False):
            channel.has_gyro = True if gyroscope else None
        self.plan = Plan(prescription)
        self.switcher = ExerciseSwitcher(min_confidence=settings.recognition_min_confidence) if settings.recognition else None
        self.session_id: str | None = None
        self.session_t_start: float | None = None  # UTC epoch
        self.last_result_t_s: float | None = None  # sample time
        self.active: tuple[str, str] | None = None  # (exercise, side) being done
        self.override = False  # the active exercise came from recognition, not the plan
        self._state_waits_for_held = False  # a state write apart put off until held results are stored
        self._told_not_saved = False  # the patient was told results wait in memory (a full disk)
        # Results of an exercise the recogniser knows are held until it has seen the patient
        # do it (its first window, 15 s): a patient who does clams when bridges are planned
        # gets every rep counted as a clam, not the first ones as bridges.
        self._confirmed = True
        self._unconfirmed_since: float | None = None
        self.sessions_done = 0
        self.last_summary: dict[str, Any] | None = None
        self.on_status_change: Any = None  # called with no argument when sensor state changes
        self._last_side: str = "right"
        # sets left open by the process before a restart (see _close_resumed_set)
        self._resumed_open: set[tuple[str, str]] = set()
        # The raw-sample journal (journal.py), replayed at start-up; with it, each result's state
        # carries where the counting had got to (``_counted_doc``), and a replayed result that
        # ends no later than that was stored by the process before (``_counted_already``).
        self.journal = journal if journal is not None and state is not None and state.atomic else None
        self._last_counted_t_s: float | None = None  # the end of the last rep or hold this process stored
        self._counted_before: float | None = None  # sample time: replayed results up to it were stored
        self._replaying = False
        self.resume_kept = self.resume_skipped = 0
        self._resume()
        self._warm_recogniser()
        self._choose_active(announce=False)
        if self.journal is not None:
            self._replay_journal()

    # -- inputs ----------------------------------------------------------------------------------

    def on_samples(self, index: int, block: ImuSamples) -> None:
        """A decoded block from sensor ``index``; processed in batches of ``batch_s``."""
        channel = self.channels[index]
        for gap in block.gaps:
            channel.gaps = [*channel.gaps[-9:], (gap.start_s, gap.end_s)]
        if block.n == 0 or block.acc_ms2 is None:
            return
        if channel.resume_gap_from is not None and not self._replaying:
            gap_start, channel.resume_gap_from = channel.resume_gap_from, None
            if float(block.t_s[0]) > gap_start:
                channel.gaps = [*channel.gaps[-9:], (gap_start, float(block.t_s[0]))]
        self._note_gyro(channel, block)
        t_s = block.t_s
        if not channel.pending:
            channel.pending_t0 = float(t_s[0])
        channel.pending.append(block)
        if float(t_s[-1]) - channel.pending_t0 >= channel.batch_s:  # channel.buffered_s(), inlined
            self._process(channel)

    def on_link_event(self, index: int, event: LinkEvent, address: str | None = None) -> None:
        """A link event of sensor ``index``; ``address`` is the sensor's, once known."""
        channel = self.channels[index]
        if event.kind is LinkEventKind.CONNECTED:
            channel.connected = True
            log.info("sensor connected", extra=fields(sensor=index, detail=event.detail))
            if address and address != channel.address:  # first connection: its calibration, if any
                channel.address = address
                calibration = load_sensor_calibration(address)
                channel.angle = CalibratedAngle(calibration) if calibration is not None else None
                log.info("live angle", extra=fields(sensor=index, calibrated=channel.angle is not None))
            self.voice.sensor_connected()
        elif event.kind is LinkEventKind.DISCONNECTED:
            channel.connected = False
            log.warning("sensor disconnected", extra=fields(sensor=index, detail=event.detail))
            self.voice.sensor_disconnected()
        elif event.kind is LinkEventKind.BATTERY:
            channel.battery_pct = event.battery_percent
            log.info("sensor battery", extra=fields(sensor=index, battery_pct=event.battery_percent))
        elif event.kind is LinkEventKind.ATTEMPT_FAILED:
            log.warning("sensor connection attempt failed", extra=fields(sensor=index, error=event.detail,
                                                                          retry_in_s=event.retry_in_s))
            return
        else:
            return
        if self.on_status_change is not None:
            self.on_status_change()

    def on_prescription(self, prescription: Prescription) -> None:
        """A new prescription: follow it from now on; work already done keeps counting."""
        log.info("following prescription", extra=fields(version=prescription.version,
                                                        exercises=[e.exercise for e in prescription.exercises]))
        self.plan.set_prescription(prescription)
        self._warm_recogniser()
        self.override = False
        self._choose_active(announce=True)
        self._save_state_after_held()

    def _warm_recogniser(self) -> None:
        """Import the recogniser now if the plan will need it, not in the middle of a set.

        Importing it (scipy.signal) takes most of a second; done lazily on the first window, it
        would hold up the counting for that long. A plan of exercises the recogniser does not
        know never needs it (see switching.py), and the memory stays free.
        """
        if self.switcher is None:
            return
        # Without any plan (no prescription yet, no default exercise) nothing is warmed: a fresh
        # Pi gets its prescription seconds after start, and it usually needs no recogniser. If
        # none comes, the first recognition window imports it (one pause of under a second).
        planned = self.plan.prescribed_exercises() or [e for e in (self.settings.default_exercise,) if e]
        needed = any(exercise in self.switcher.known for exercise in planned)
        if needed and "hipsense.exercises.recognition" not in sys.modules:
            import hipsense.exercises.recognition  # noqa: F401
            release_free_memory()  # the import's temporaries: ~10 MB (memory.py)

    def tick(self) -> None:
        """Call now and then (about once a second): stores results held while the outbox could
        not be written (telling the patient once when results start to wait in memory, and once
        when they are saved again), and ends a session after ``idle_end_s`` without results."""
        if self.publisher.held:
            self.publisher.retry_held()
        if bool(self.publisher.held) != self._told_not_saved:  # once when it starts, once when it ends
            self._told_not_saved = bool(self.publisher.held)
            if self._told_not_saved:
                self.voice.results_not_saved()
            else:
                self.voice.results_saved_again()
        if self._state_waits_for_held and not self.publisher.held:
            self._state_waits_for_held = False
            self._save_state()
        if self.session_id is None or self.last_result_t_s is None:
            return
        # The sample clock, not just the last sample: a sensor switched off mid-session must
        # still let the session end.
        now = max([self.timebase.now(), *(c.last_t_s for c in self.channels if c.last_t_s is not None)])
        if now - self.last_result_t_s > self.settings.idle_end_s:
            log.info("session idle; ending it", extra=fields(session_id=self.session_id, idle_s=now - self.last_result_t_s))
            # the end of the session is the end of its trackers' streams: a rep still waiting
            # (a first rep for the second, a small one for one of its size) counts now, and
            # each open set is closed with its count's confidence
            for channel in self.channels:
                self._flush_tracker(channel)
            if self.session_id is not None:
                self.end_session(reason="idle")

    def shutdown(self) -> None:
        """Flush everything buffered and end the session (SIGTERM)."""
        for channel in self.channels:
            if channel.pending:
                self._process(channel)
            self._flush_tracker(channel)
        if self.session_id is not None:
            self.end_session(reason="shutdown", flags=(Flag.INTERRUPTED,) if not self.plan.complete else ())
        if self.publisher.held:
            self.publisher.retry_held()
        if self.publisher.held:
            log.error("%d result(s) could not be stored (the outbox cannot be written) and are lost with this "
                      "process", self.publisher.held)
        elif self.journal is not None:
            self.journal.clear()  # everything counted and stored: nothing for a restart to replay

    def sensors_status(self) -> list[dict[str, Any]]:
        """``sensors`` for the status message (a moved sensor reports the side it is on now)."""
        out = []
        for channel in self.channels:
            side = channel.side if channel.side in ONE_THIGH else self._last_side
            entry: dict[str, Any] = {"side": side, "connected": channel.connected}
            if channel.battery_pct is not None:
                entry["battery_pct"] = channel.battery_pct
            out.append(entry)
        return out

    # -- the active exercise ---------------------------------------------------------------------

    def _choose_active(self, *, announce: bool) -> None:
        line = self.plan.current()
        if line is not None:
            target: tuple[str, str] | None = (line.exercise, line.side)
        elif not self.plan.lines and self.settings.default_exercise:
            target = (self.settings.default_exercise, self._last_side)
        else:
            target = None
        self._activate(target, announce=announce)

    def _activate(self, target: tuple[str, str] | None, *, announce: bool, recognised: bool = False) -> None:
        previous = self.active
        if target == previous:
            return
        if not recognised:
            self._release_held()  # what was counted so far belongs to the previous exercise
        self.active = target
        for channel in self.channels:
            if channel.key is not None and channel.key != self._key_for(channel):
                self._flush_tracker(channel)
            if recognised:
                channel.held = []  # counted as the wrong exercise: counted again below
        self._confirmed = recognised or not (
            self.switcher is not None and target is not None and target[0] in self.switcher.known
        )
        self._unconfirmed_since = None
        if target is None:
            return
        exercise, side = target
        if side in ONE_THIGH:
            self._last_side = side
        log.info("active exercise", extra=fields(exercise=exercise, side=side, override=self.override))
        if not announce:
            return
        line = self.plan.line_for(exercise, side)
        if previous is not None and previous[0] == exercise:
            self.voice.switch_sides(side)
        else:
            self.voice.start_exercise(exercise, side, line.sets if line else None, line.reps if line else None)

    def _key_for(self, channel: _Channel) -> tuple[str, str] | None:
        """(exercise, side) this channel counts for now, or None if it sits this one out."""
        if self.active is None:
            return None
        exercise, side = self.active
        if side == "both":  # bilateral: one sensor counts, or every rep would count twice
            return (exercise, "both") if channel.index == 0 else None
        if channel.side == Thigh.EITHER:
            return (exercise, side)
        return (exercise, channel.side)

    # -- processing ------------------------------------------------------------------------------

    def _note_gyro(self, channel: _Channel, block: ImuSamples) -> None:
        """Whether the sensor sends angular rate: from its first block; then a block with it
        makes it so (a gyroscope that starts late, or comes back), and only a sustained absence
        (``GYRO_ABSENT_S``) makes it not so. What is buffered goes first, as it came."""
        if block.gyr_rad_s is not None:
            channel.gyro_absent_since = None
            if channel.has_gyro is False:
                if channel.pending:
                    self._process(channel)
                log.info("sensor sends angular rate", extra=fields(sensor=channel.index))
            channel.has_gyro = True
            return
        if channel.has_gyro is None:
            channel.has_gyro = False
            return
        if channel.gyro_absent_since is None:
            channel.gyro_absent_since = float(block.t_s[0])
        if channel.has_gyro and float(block.t_s[-1]) - channel.gyro_absent_since > GYRO_ABSENT_S:
            if channel.pending:
                self._process(channel)
            log.warning("sensor stopped sending angular rate; counting on tilt",
                        extra=fields(sensor=channel.index, absent_s=round(float(block.t_s[-1])
                                                                         - channel.gyro_absent_since, 1)))
            channel.has_gyro = False

    @staticmethod
    def _angular_rate(channel: _Channel, blocks: Sequence[ImuSamples]) -> np.ndarray | None:
        """The batch's angular rate, or None if the sensor does not send it (now).

        A block without it, on a sensor that does (a gyroscope frame late or lost, a GYRO
        stream that starts seconds after the ACC one), is given no rotation: the counter's
        gravity filter then follows the accelerometer alone, with the same time constant as an
        accelerometer-only counter, so a hiccup neither rebuilds the counter (which closes the
        open set: a set split in two) nor leaves it on tilt for the rest of the exercise.
        Zero rather than the last rate held: a held rate keeps turning the gravity estimate
        away from the accelerometer's (on the 8 UCI thigh recordings with a 2 s hiccup at five
        places, zero kept the reference's sets in 40 of 40, the last rate held in 38).
        """
        if not channel.has_gyro:
            return None
        return np.concatenate([b.gyr_rad_s if b.gyr_rad_s is not None else np.zeros((b.n, 3)) for b in blocks])

    def _process(self, channel: _Channel) -> None:
        blocks, channel.pending = channel.pending, []
        t = np.concatenate([b.t_s for b in blocks])
        acc = np.concatenate([b.acc_ms2 for b in blocks])
        gyr = self._angular_rate(channel, blocks)
        channel.last_t_s = float(t[-1])
        if self.journal is not None:  # one write; never raises (a failing journal switches itself off)
            self.journal.append(channel.index, t, acc, gyr)
        if channel.angle is not None:
            channel.angle.push(t, acc, gyr)
        if channel.index == 0:
            self._recognise(t, acc)
        if not self._confirmed:
            if self._unconfirmed_since is None:
                self._unconfirmed_since = float(t[0])
            elif self.switcher is not None and float(t[-1]) - self._unconfirmed_since > (
                self.switcher.window_s + self.switcher.agree * self.switcher.hop_s
            ):
                self._release_held()  # the recogniser never became sure: count as planned
        if not self._confirmed:
            channel.held_raw.append((t, acc, gyr))
        key = self._key_for(channel)
        if key is None:
            return
        if channel.tracker is None or channel.key != key:
            self._flush_tracker(channel)
            self._build_tracker(channel, key, has_gyro=gyr is not None)
        assert channel.tracker is not None and channel.tap is not None
        self._match_gyro(channel, key, has_gyro=gyr is not None)
        out = self._push(channel, t, acc, gyr)
        line = self.plan.line_for(*key)
        channel.hold_remaining_s = out.hold_remaining_s
        if self._timed(key, line) and channel.holds is not None and len(channel.tap.t_s):
            assert line is not None
            holds, starts = channel.holds.step(channel.tap.t_s, channel.tap.angle_deg, channel.tap.speed_dps)
            for hold in holds:
                if not self._counted_already(hold.start_t_s, hold.end_t_s):
                    self._on_hold(channel, hold, line)
            out.countdown, channel.hold_remaining_s = self._timed_countdown(channel, line, starts)
        # The live angle first: handling the batch's results commits each to the outbox (an
        # fsync: milliseconds, on an SD card sometimes hundreds), and the angle must not wait
        # for that (bench_service's stage trace: the slowest live messages were those). Its
        # rep count then shows a rep of this batch with the next message, a batch (~0.1 s) later.
        self._live(channel, key, line)
        self._handle(channel, out)

    def _timed_countdown(self, channel: _Channel, line: PlanLine,
                         starts: np.ndarray) -> tuple[list[CountdownCue], float | None]:
        if not line.hold_s or channel.countdown is None or channel.tap is None:
            return [], None
        channel.countdown, out = countdown_step(CountdownSettings(line.hold_s), channel.countdown,
                                                channel.tap.t_s, starts)
        last = float(out.remaining_s[-1])
        return out.cues, None if np.isnan(last) else last

    @staticmethod
    def _timed(key: tuple[str, str], line: PlanLine | None) -> bool:
        """Timed by the hold timer: a timed line of an exercise the thigh cannot count."""
        return line is not None and line.timed and get_exercise(key[0]).measure == Measure.TIMED

    def _recognise(self, t: np.ndarray, acc: np.ndarray) -> None:
        if self.switcher is None:
            return
        expected = self.active[0] if self.active else None
        # Every exercise the model knows, not just the prescribed ones: restricted to the
        # prescription, a superman is confidently "a bridge". Something confidently not
        # prescribed is counted as such (flag not_prescribed), not as the planned exercise.
        evaluations = self.switcher.evaluations
        proposal = self.switcher.push(t, acc, expected=expected, candidates=self.switcher.known_sorted)
        if proposal is None:
            if self.switcher.evaluations > evaluations and self.switcher.last_answer == expected:
                self._release_held()  # the recogniser sees the planned exercise
            return
        line = self.plan.next_line_of(proposal)
        side = line.side if line else self._last_side
        log.info("patient switched exercise", extra=fields(expected=expected, recognised=proposal,
                                                            prescribed=line is not None))
        self.override = True
        raw = {c.index: c.held_raw for c in self.channels}
        for c in self.channels:
            c.held_raw = []
        self._activate((proposal, side), announce=True, recognised=True)
        for c in self.channels:  # the samples held back, counted again as what they were
            key = self._key_for(c)
            if key is None or not raw[c.index]:
                continue
            if c.tracker is None or c.key != key:
                self._flush_tracker(c)
                self._build_tracker(c, key, has_gyro=raw[c.index][0][2] is not None)
            for rt, racc, rgyr in raw[c.index]:
                self._match_gyro(c, key, has_gyro=rgyr is not None)
                self._handle(c, self._push(c, rt, racc, rgyr))

    def _push(self, channel: _Channel, t: np.ndarray, acc: np.ndarray, gyr: np.ndarray | None) -> TrackerOutput:
        """Samples into the tracker; what it counted is noted (see :meth:`_match_gyro`)."""
        assert channel.tracker is not None
        out = channel.tracker.push(t, acc, self._tracker_gyr(channel, gyr, len(t)))
        channel.set_just_closed = bool(out.sets)
        if out.reps or out.sets:
            channel.counted, channel.replay = True, []
        elif not channel.counted:
            channel.replay.append((t, acc, gyr))
            while float(t[-1]) - float(channel.replay[0][0][0]) > REPLAY_S:
                channel.replay.pop(0)
        return out

    def _match_gyro(self, channel: _Channel, key: tuple[str, str], *, has_gyro: bool) -> None:
        """Rebuild the tracker when the sensor starts, resumes or stops sending angular rate,
        without splitting a set or losing what the tracker has learnt.

        * Stopped, on an exercise counted by its angle (reps, holds): never rebuilt. The
          tracker goes on with no rotation (:meth:`_tracker_gyr`): its tilt then comes from the
          accelerometer alone, as an accelerometer-only tracker's does, and it keeps the ranges
          it has learnt (a fresh one misses UCI's low-amplitude reps), so the angular rate
          coming back later simply takes over again. Exercises judged on the angular speed
          (cycles, steps, impacts) need a tracker built for tilt.
        * Otherwise rebuilt only where that splits nothing: a tracker that has counted nothing
          yet is replaced by one that takes over its input from the start (a gyroscope that
          starts seconds after the accelerometer, with a rep already under way); one that has
          counted waits for the end of its set.
        """
        tracker = channel.tracker
        assert tracker is not None
        if tracker.pipeline.has_gyro == has_gyro:
            return
        if not has_gyro and "reps" in MEASURE_COUNTERS[tracker.spec.measure]:
            return
        if channel.counted and not channel.set_just_closed:
            return
        log.info("tracker rebuilt", extra=fields(sensor=channel.index, gyroscope=has_gyro))
        if channel.counted:
            self._flush_tracker(channel)
            self._build_tracker(channel, key, has_gyro=has_gyro)
            return
        replay, holds, countdown = channel.replay, channel.holds, channel.countdown
        self._build_tracker(channel, key, has_gyro=has_gyro)  # the old one counted nothing: dropped
        channel.holds, channel.countdown = holds, countdown  # the hold timer's hold goes on
        for rt, racc, rgyr in replay:
            out = self._push(channel, rt, racc, rgyr)
            out.countdown = []  # said already
            self._handle(channel, out)

    @staticmethod
    def _tracker_gyr(channel: _Channel, gyr: np.ndarray | None, n: int) -> np.ndarray | None:
        """The angular rate for the tracker: one built for it gets no rotation while the
        sensor sends none (see :meth:`_match_gyro`); one built without it ignores it."""
        assert channel.tracker is not None
        if not channel.tracker.pipeline.has_gyro:
            return None
        return gyr if gyr is not None else np.zeros((n, 3))

    def _release_held(self) -> None:
        """The active exercise is what the patient does: pass on what was held back."""
        self._confirmed, self._unconfirmed_since = True, None
        for channel in self.channels:
            held, channel.held, channel.held_raw = channel.held, [], []
            for out in held:
                self._handle(channel, out)

    def _build_tracker(self, channel: _Channel, key: tuple[str, str], *, has_gyro: bool) -> None:
        exercise, side = key
        line = self.plan.line_for(exercise, side)
        spec = get_exercise(exercise)
        settings = TrackerSettings(
            # the prescription's hold, 0 included (then nothing counts down); the exercise's
            # usual hold only when nothing is prescribed
            hold_target_s=(line.hold_s if line else None),
            reps_target=(line.reps if line else None),
            side=side if side in ONE_THIGH else Thigh.EITHER,
            set_rest_s=self.settings.set_rest_s,
            baseline_rom_deg=self._baseline_rom(channel, exercise),
        )
        channel.tracker = ExerciseTracker(spec, settings, has_gyro=has_gyro)
        channel.tap = _AngleTap(channel.tracker.pipeline)
        channel.tracker.pipeline = channel.tap  # type: ignore[assignment]
        channel.holds = HoldTimer(min_hold_s=min(3.0, 0.3 * line.hold_s) if line and line.hold_s else 3.0)
        channel.countdown = countdown_init(CountdownSettings(line.hold_s)) if line and line.hold_s else None
        channel.key = key
        channel.counted = channel.set_just_closed = False
        channel.replay = []

    @staticmethod
    def _baseline_rom(channel: _Channel, exercise: str) -> float | None:
        """The patient's reference range from calibration (``low_rom`` is judged against it)."""
        calibration = channel.angle.calibration if channel.angle is not None else None
        if calibration is None:
            return None
        return next((r.rom_deg for r in calibration.rom if r.exercise_id == exercise and r.ok), None)

    def _flush_tracker(self, channel: _Channel) -> None:
        if channel.tracker is not None and channel.key is not None:
            self._handle(channel, channel.tracker.flush())
            line = self.plan.line_for(*channel.key)
            if channel.holds is not None and channel.last_t_s is not None and self._timed(channel.key, line):
                assert line is not None
                hold = channel.holds.flush(channel.last_t_s)
                if hold is not None and not self._counted_already(hold.start_t_s, hold.end_t_s):
                    self._on_hold(channel, hold, line)
        channel.tracker = channel.tap = channel.holds = channel.countdown = None
        channel.hold_remaining_s = None
        channel.key = None

    def _handle(self, channel: _Channel, out: TrackerOutput) -> None:
        """The tracker's reps, set closes and countdown cues, in the order they happened in
        sample time (so what the plan records and the voice says does not depend on how the
        samples were batched). At equal times: a cue, then a rep, then a set's close."""
        assert channel.key is not None
        if not self._confirmed:
            channel.held.append(out)
            return
        if not (out.reps or out.sets or out.countdown):
            return  # nothing happened (most chunks): nothing to order or hand on
        key = channel.key
        line = self.plan.line_for(*key)
        timed = self._timed(key, line)  # timed by the hold timer: nothing counted here
        results: list[tuple[float, int, Any]] = []
        if not timed:
            results += [(rep.end_t_s, 1, rep) for rep in out.reps]
            results += [(s.decided_t_s, 2, s) for s in out.sets]
        results.sort(key=lambda e: (e[0], e[1]))  # the tracker's order: what the plan records
        # Among the countdown cues, a result falls when the tracker let it out — a rep that
        # waited for the next one (a small first rep) is counted aloud with that one, after the
        # cues said meanwhile — and never before a result ahead of it: a running maximum, the
        # same however the samples were batched.
        events: list[tuple[float, int, int, Any]] = [(cue.t_s, 0, 0, cue) for cue in out.countdown]
        said = -math.inf
        for n, (t, kind, item) in enumerate(results):
            decided = item.decided_t_s
            said = max(said, t, decided if decided == decided else t)  # NaN: when it happened
            events.append((said, kind, n, item))
        events.sort(key=lambda e: (e[0], e[1], e[2]))
        for _, kind, _, item in events:
            if kind == 0:
                if not self._replaying:  # said already, by the process before the restart
                    self.voice.countdown(item.seconds_left)
            elif kind == 2:
                if self._counted_before is not None:
                    # replayed, before any new rep: a set whose reps the process before the
                    # restart stored; its close is the resume logic's (_close_resumed_set)
                    continue
                self._on_set_end(key, item)
            elif self._counted_already(item.start_t_s, item.end_t_s):
                continue
            elif line is not None and line.timed and item.kind == RepKind.HOLD:
                self._on_tracked_hold(channel, key, item, line)
            else:
                self._on_rep(channel, key, item, line)

    # -- results ---------------------------------------------------------------------------------

    def _ensure_session(self, t_start_utc: float) -> str:
        if self.session_id is None:
            self.session_id = new_session_id()
            self.session_t_start = t_start_utc
            log.info("session started", extra=fields(session_id=self.session_id))
        return self.session_id

    def _flags(self, channel: _Channel, key: tuple[str, str], start: float, end: float,
               base: Sequence[str]) -> list[str]:
        flags = list(base)
        exercise, side = key
        if self.plan.lines and self.plan.line_for(exercise, side) is None:
            flags.append(Flag.WRONG_SIDE if exercise in self.plan.prescribed_exercises() else Flag.NOT_PRESCRIBED)
        if any(g_start < end and g_end > start for g_start, g_end in channel.gaps):
            flags.append(Flag.SENSOR_GAP)
        return list(dict.fromkeys(flags))

    def _on_rep(self, channel: _Channel, key: tuple[str, str], rep: RepResult, line: PlanLine | None) -> None:
        exercise, side = key
        to_utc = self.timebase.to_utc
        self._close_resumed_set(key, to_utc(rep.start_t_s))
        session_id = self._ensure_session(to_utc(rep.start_t_s))
        flags = self._flags(channel, key, rep.start_t_s, rep.end_t_s, rep.flags)
        set_index, rep_index = self.plan.record_rep(
            exercise, side, rom_deg=rep.rom_deg, hold_s=rep.hold_s, t_start=to_utc(rep.start_t_s),
            t_end=to_utc(rep.end_t_s), flags=tuple(f for f in flags if f == Flag.SENSOR_GAP))
        self.last_result_t_s = self._last_counted_t_s = rep.end_t_s
        self.resume_kept += self._replaying
        log.info("rep", extra=fields(exercise=exercise, side=side, set=set_index, rep=rep_index,
                                     rom_deg=round(rep.rom_deg, 1), hold_s=round(rep.hold_s, 1), flags=flags))
        self.publisher.rep(
            session_id=session_id, exercise=exercise, side=side, set_index=set_index, rep_index=rep_index,
            t_start=to_utc(rep.start_t_s), t_end=to_utc(rep.end_t_s), rom_deg=rep.rom_deg, hold_s=rep.hold_s,
            peak_speed_dps=rep.peak_speed_dps, duration_s=rep.duration_s, flags=flags, state=self._state_changes())
        self.voice.count(rep_index)
        self._save_state_if_apart()

    def _on_hold(self, channel: _Channel, hold: HoldResult, line: PlanLine) -> None:
        """A hold of a timed exercise, from the hold timer: one hold a set."""
        exercise, side = line.exercise, channel.key[1] if channel.key else line.side
        flags = [Flag.SHORT_HOLD] if is_short_hold(hold.hold_s, line.hold_s) else []
        self._publish_hold(channel, (exercise, side), line, start=hold.start_t_s, end=hold.end_t_s,
                           hold_s=hold.hold_s, angle_deg=hold.mean_angle_deg, base_flags=flags)
        # nothing else tells where a set of a timed exercise ends: one hold is one set
        self._close_set(exercise, side)

    def _on_tracked_hold(self, channel: _Channel, key: tuple[str, str], rep: RepResult, line: PlanLine) -> None:
        """A stretch's hold, counted by the tracker (its set ends when the tracker says so)."""
        self._publish_hold(channel, key, line, start=rep.start_t_s, end=rep.end_t_s, hold_s=rep.hold_s,
                           angle_deg=rep.rom_deg, base_flags=rep.flags)

    def _publish_hold(self, channel: _Channel, key: tuple[str, str], line: PlanLine, *, start: float, end: float,
                      hold_s: float, angle_deg: float, base_flags: Sequence[str]) -> None:
        exercise, side = key
        to_utc = self.timebase.to_utc
        self._close_resumed_set(key, to_utc(start))
        session_id = self._ensure_session(to_utc(start))
        flags = self._flags(channel, key, start, end, base_flags)
        set_index, hold_index = self.plan.record_hold(
            exercise, side, hold_s=hold_s, t_start=to_utc(start), t_end=to_utc(end))
        self.last_result_t_s = self._last_counted_t_s = end
        self.resume_kept += self._replaying
        log.info("hold", extra=fields(exercise=exercise, side=side, set=set_index, hold_s=round(hold_s, 1)))
        self.publisher.hold(
            session_id=session_id, exercise=exercise, side=side, set_index=set_index, hold_index=hold_index,
            t_start=to_utc(start), t_end=to_utc(end), hold_s=hold_s,
            target_hold_s=line.hold_s or None, mean_angle_deg=angle_deg, flags=flags, state=self._state_changes())
        self._save_state_if_apart()

    def _on_set_end(self, key: tuple[str, str], tracked: SetResult) -> None:
        if tracked.count_confidence is not None and tracked.count_confidence < CONFIDENT:
            self.plan.flag_open_set(*key, UNCERTAIN_COUNT)  # the therapist sees "not sure"
        self._close_set(*key)

    def _close_set(self, exercise: str, side: str) -> None:
        closed = self.plan.close_set(exercise, side)
        if closed is None:
            return
        self._publish_set(closed)  # with the state: the set closed
        line = closed.line
        self.voice.set_done(closed.set_index, line.sets if line else None)
        if self.plan.complete:
            log.info("prescription done", extra=fields(session_id=self.session_id))
            self.end_session(reason="complete")
            self.voice.session_done()
            return
        if line is not None and self.plan.line_done(line):
            self.override = False
            self._choose_active(announce=True)

    def _publish_set(self, closed: ClosedSet) -> None:
        """Publish a set the plan just closed, with the session state that has it closed."""
        line = closed.line
        assert self.session_id is not None
        log.info("set", extra=fields(exercise=closed.exercise, side=closed.side, set=closed.set_index, reps=closed.reps))
        self.publisher.set(
            session_id=self.session_id, exercise=closed.exercise, side=closed.side, set_index=closed.set_index,
            t_start=closed.t_start, t_end=closed.t_end, reps=closed.reps,
            reps_target=line.reps if line else None, holds=closed.holds, hold_s_total=closed.hold_s_total,
            target_hold_s=(line.hold_s or None) if line else None, prescribed=line is not None, flags=closed.flags,
            state=self._state_changes())
        self._save_state_if_apart()

    def end_session(self, *, reason: Literal["idle", "shutdown", "complete", "stale"], flags: Sequence[str] = (),
                    t_end_utc: float | None = None) -> None:
        """Close open sets and publish the summary; the next activity starts a new session.
        ``stale``: a session from before a restart, too old to resume, ended at ``t_end_utc``."""
        if self.session_id is None:
            return
        for key in list(self.plan.tallies):  # one at a time: each set is stored with the state after it
            closed = self.plan.close_set(*key)
            if closed is not None:
                self._publish_set(closed)
        if t_end_utc is not None:
            t_end = t_end_utc
        else:
            t_end = (self.timebase.to_utc(self.last_result_t_s) if self.last_result_t_s is not None
                     else self.timebase.utc_now())
        assert self.session_t_start is not None
        adherence = self.plan.adherence()
        log.info("session ended", extra=fields(session_id=self.session_id, reason=reason, adherence=adherence))
        # The summary and the end of the saved session in one transaction: a restart between the
        # two would resume the session and summarise it a second time.
        self.publisher.session(
            session_id=self.session_id, t_start=self.session_t_start, t_end=max(t_end, self.session_t_start),
            exercises=self.plan.summaries(), prescription_version=self.plan.prescription_version,
            adherence=adherence, flags=(*flags, UNCERTAIN_COUNT) if self.plan.uncertain_counts else flags,
            state={**self.state.changes(None), **self._counted_doc()}
            if self.state is not None and self.state.atomic else None)
        self.last_summary = {"reps": sum(s.reps for s in self.plan.summaries()), "adherence": adherence}
        self.sessions_done += 1
        self.session_id = self.session_t_start = self.last_result_t_s = None
        self.plan.tallies = {}
        if self.state is not None and not self.state.atomic:
            self._guarded(self.state.clear)
        if reason not in ("shutdown", "stale"):
            self.override = False
            self._choose_active(announce=False)

    def record_pain(self, score: int, moment: str, exercise: str | None = None) -> None:
        """A pain check-in from the patient (0-10), about the session or one exercise."""
        self.publisher.pain(score=score, moment=moment, t=self.timebase.utc_now(), session_id=self.session_id,
                            exercise=exercise)

    # -- live ------------------------------------------------------------------------------------

    def _live(self, channel: _Channel, key: tuple[str, str], line: PlanLine | None) -> None:
        reading: AngleReading | None
        if channel.angle is not None:
            reading = channel.angle.latest
        else:
            reading = excursion_reading(channel.tap.t_s, channel.tap.angle_deg) if channel.tap is not None else None
        if reading is None or self._replaying or not self.publisher.wants_live():
            return  # no angle yet (the excursion is NaN until the pipeline has a rest posture)
        side = key[1] if key[1] in ONE_THIGH else self._last_side
        self.publisher.live(
            t=self.timebase.to_utc(reading.t_s), side=side, thigh_angle_deg=reading.thigh_angle_deg,
            abduction_deg=reading.abduction_deg, exercise=key[0], session_id=self.session_id,
            rep_count=self.plan.open_reps(*key), hold_remaining_s=channel.hold_remaining_s)

    # -- persistence -----------------------------------------------------------------------------

    # The session state goes into the outbox in the same transaction as the result that changed
    # it (state.py): the result's set and rep numbers and the numbering a restart continues
    # from are on disk together or not at all.

    def _state_doc(self) -> dict[str, Any] | None:
        if self.session_id is None:
            return None
        return {
            "session_id": self.session_id,
            "t_start": self.session_t_start,
            "saved_at": self.timebase.utc_now(),
            "last_side": self._last_side,
            "tallies": self.plan.tallies_to_json(),
        }

    def _state_changes(self) -> Mapping[str, bytes | None] | None:
        """The state to commit with the result being stored (None: kept apart, see state.py)."""
        if self.state is None or not self.state.atomic or self.session_id is None:
            return None
        return {**self.state.changes(self._state_doc()), **self._counted_doc()}

    def _counted_doc(self) -> dict[str, bytes]:
        """With a journal: how far this process's counting has been stored (the end of its last
        rep or hold, as a monotonic instant of this boot), committed with each result. A restart
        replays the journal and keeps only what comes after it (see ``_counted_already``)."""
        if self.journal is None or self._last_counted_t_s is None:
            return {}
        return {COUNTED_STATE: json.dumps({"boot": self.journal.boot, "mono": self.timebase.to_monotonic(
            self._last_counted_t_s)}, separators=(",", ":")).encode()}

    def _save_state_if_apart(self) -> None:
        """After a result: save the state on its own unless it goes in with the result (the
        publisher writes it with the result, later if the result is held, or alone if the
        result is refused)."""
        if self.state is not None and not self.state.atomic:
            self._save_state()

    def _save_state_after_held(self) -> None:
        """Save the state on its own, but never before results held in memory (a full disk):
        each is stored with the state of its moment, so a write apart committed first would be
        ahead of the results stored (a crash then numbers on after reps never stored) and then
        overwritten by their older states. So store them first; if some still cannot be, the
        write waits for them (the tick saves it once they are stored)."""
        if self.publisher.held:
            self.publisher.retry_held()
        if self.publisher.held:
            self._state_waits_for_held = True
            return
        self._save_state()

    def _save_state(self) -> None:
        doc = self._state_doc()
        if self.state is None or doc is None:
            return
        self._guarded(lambda: self.state.save(doc))

    @staticmethod
    def _guarded(write: Callable[[], None]) -> None:
        """A state write that fails (disk full or failing) is logged loudly; the counting goes
        on, as it does when a result cannot be stored (results.py)."""
        try:
            write()
        except (OSError, OutboxError) as exc:
            log.error("session state not saved: %s", exc)

    def _resume(self) -> None:
        if self.state is None:
            return
        try:
            doc = self.state.load()
        except (OSError, OutboxError) as exc:  # counting must start all the same; a new session it is
            log.error("cannot read the session in progress: %s", exc)
            return
        if doc is None:
            return
        age = self.timebase.utc_now() - float(doc.get("saved_at", 0))
        stale = age > self.settings.resume_within_s
        try:
            self.plan.load_tallies(doc["tallies"])
            self.session_id = str(doc["session_id"])
            self.session_t_start = float(doc["t_start"])
            self._last_side = str(doc.get("last_side", "right"))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("cannot resume the previous session: %s", exc)
            self.plan.tallies = {}
            self.session_id = self.session_t_start = None
            if stale:
                self._guarded(self.state.clear)
            return
        if stale:
            # Not left unfinished: its open sets and its summary (the therapist's adherence for that
            # day) would never be sent. Ended now with what it saved, dated when it last saved.
            log.info("previous session too old to resume; ending it with what it saved", extra=fields(
                session_id=self.session_id, age_s=round(age)))
            ends = [float(doc.get("saved_at", 0))] + [
                t.open.t_end for t in self.plan.tallies.values() if t.open is not None and t.open.t_end is not None]
            self.end_session(reason="stale", flags=(Flag.INTERRUPTED,), t_end_utc=max(ends))
            return
        self.last_result_t_s = self.timebase.now()
        self._resumed_open = {key for key, tally in self.plan.tallies.items() if tally.open is not None}
        log.info("resumed session", extra=fields(session_id=self.session_id, age_s=round(age, 1)))

    def _replay_journal(self) -> None:
        """Feed the fresh trackers what the process before a restart saw in its last minute or
        two (journal.py), before the first live sample: the rep it was in the middle of (its
        raise is in the journal, the rest of it comes live) and a rep it had seen end but not yet
        let out are counted; the results it had stored are not counted again (``_counted_already``),
        and the set numbering goes on from the resumed session's (``_resume``, ``_close_resumed_set``).
        Nothing said (the countdown was said before), nothing sent live (old angles)."""
        assert self.journal is not None and self.state is not None
        batches = self.journal.load()
        if not batches:
            return
        try:
            self._counted_before = self._load_counted()
        except (OSError, OutboxError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # unknown: what it replayed could be counted twice
            log.warning("sample journal not replayed: cannot read how far the counting was stored: %s", exc)
            return
        self._replaying = True
        replayed = 0
        try:
            for batch in batches:
                if batch.index < len(self.channels):
                    self.on_samples(batch.index, ImuSamples(t_s=batch.t_s, acc_ms2=batch.acc_ms2,
                                                            gyr_rad_s=batch.gyr_rad_s))
                    self.channels[batch.index].resume_gap_from = float(batch.t_s[-1])
                    replayed += 1
        except Exception:  # noqa: BLE001 - a journal must never keep the service from counting
            log.exception("replaying the sample journal failed; counting starts afresh")
            for channel in self.channels:
                channel.tracker = channel.tap = channel.holds = channel.countdown = None
                channel.key, channel.pending = None, []
        finally:
            self._replaying = False
        first, last = float(batches[0].t_s[0]), max(float(b.t_s[-1]) for b in batches)
        log.info("replayed the sample journal", extra=fields(
            batches=replayed, span_s=round(last - first, 1), gap_s=round(self.timebase.now() - last, 1),
            counted_again=self.resume_kept, stored_before=self.resume_skipped))

    def _load_counted(self) -> float | None:
        """The sample time (this process's clock) up to which results were stored before the
        restart; None if nothing was counted in this boot (everything replayed is new)."""
        assert self.state is not None and self.journal is not None
        raw = self.state.read(COUNTED_STATE)
        if raw is None:
            return None
        doc = json.loads(raw)
        if doc["boot"] != self.journal.boot:
            return None
        return self.timebase.from_monotonic(float(doc["mono"]))

    def _counted_already(self, start_t_s: float, end_t_s: float) -> bool:
        """A rep or hold replayed from the journal that the process before the restart had
        stored: it lies mostly before the end of the last one stored. (By their middle: the
        fresh tracker may put a rep's start or end a sample or two off the first one's.) The
        first that does not ends the check: the ones after it are new."""
        before = self._counted_before
        if before is None:
            return False
        if (start_t_s + end_t_s) / 2 <= before:
            self.resume_skipped += 1
            return True
        self._counted_before = None
        return False

    def _close_resumed_set(self, key: tuple[str, str], start_utc: float) -> None:
        """A set left open by the process before a restart: the tracker counting now saw neither
        its reps nor the rest that began after them, so a restart during the rest between two
        sets merged them (10 + 10 reps counted as one set of 20), as far as the new tracker's
        first rep. The time from that set's last rep to this one is the rest the tracker would
        have watched: as long as a set rest, it closed the set."""
        if key not in self._resumed_open:
            return
        self._resumed_open.discard(key)
        open_set = self.plan.tally(*key).open
        if open_set is not None and open_set.t_end is not None and start_utc - open_set.t_end >= self.settings.set_rest_s:
            self._close_set(*key)
