"""Turn the signal kernels' events into reps, holds and sets against a prescription.

``ExerciseTracker`` owns one ``ThighPipeline`` (the streaming kernels) and adds what only the
exercise knows: the prescribed hold, which reps are too fast or too small, where one set ends
and the next begins, and which side is being worked.

Form flags on each rep:
* ``too_fast``   — the rep took less than the exercise's ``too_fast_s``, or the prescription
  asks for a hold and the rep's hold was under 1 s (the patient skipped the hold);
* ``short_hold`` — a hold is prescribed and the rep held for less than ``short_hold_fraction``
  of it (:func:`is_short_hold`: the one rule, for counted reps and for timed stretches alike);
* ``low_rom``    — range of motion below ``low_rom_fraction`` of the reference: the calibrated
  baseline when there is one, else the median of the session's first reps (the patient's own
  usual range today);
* ``incomplete`` — below half the reference.

Sets are decided here and nowhere else, from the times of what happened, never from where a
chunk of samples ended: a set ends when the thigh has *rested* for longer than ``set_rest_s``
after its last rep, or at a posture change (the rep kernel's ``RestEvent``), or at ``flush``.
Resting is judged on every sample of the pipeline's output: for excursion counters (reps,
holds) the thigh is back below ``rest_band_fraction`` of the last rep's range — the rep
kernel's own "returned to rest" — so a 30 s stretch is never a rest, however long; for the
other counters (circles, landings, steps), which have no rest pose, it is slower than
``rest_still_dps``. Events and samples are taken in time order within each push (an event on
the sample it ends on), so any chunking gives the same sets as one batch.

Hold countdown: when a hold is prescribed (``hold_target_s`` > 0) and the exercise is counted
as excursions, the live-hold and countdown kernels (``hipsense.signal.countdown``) run on the
pipeline's angle: ``TrackerOutput.hold_remaining_s`` is the time left on the last sample, and
``TrackerOutput.countdown`` the "5 … 1, relax" cues due in this chunk.

What counts as a rep comes from the exercise's ``measure``: ``reps`` and ``holds`` are
excursions from rest (a hold is an excursion whose held time is the point); ``cycles`` are
circles, tallied by direction — "counterclockwise" is a positive turn about the "up" axis as
seen from the sensor, which becomes anatomical only with a calibration; ``impacts`` are
landings, ``impacts_per_rep`` of them per rep; ``steps`` are swings of the sensor leg;
``timed`` exercises are not counted at all — a thigh sensor cannot see them (the catalogue's
``cannot_see`` says why), so the service times them instead.
"""

from __future__ import annotations

import collections
import math
import statistics
from dataclasses import dataclass, field, replace

import numpy as np

from hipsense.signal.countdown import (
    CountdownCue,
    CountdownSettings,
    LiveHoldSettings,
    countdown_init,
    countdown_lists,
    live_hold_init,
    live_hold_lists,
)
from hipsense.signal.cycles import CycleEvent
from hipsense.signal.impacts import ImpactEvent, ImpactSettings
from hipsense.signal.pipeline import PipelineOutput, PipelineSettings, ThighPipeline
from hipsense.signal.reps import RepEvent, RepSettings
from hipsense.signal.steps import StepEvent
from hipsense.signal.vocabulary import RestReason

from .confidence import GAP_WINDOW_S, GapSpread, confidence_from_parts, gap_spread
from .spec import ExerciseSpec
from .vocabulary import FormFlag, Measure, RepKind, Thigh


# The count's confidence judges the angle's sway between reps over at most the last
# ``GAP_WINDOW_S`` of each gap; the trace is kept for 300 s at most: longer than a rep
# (``max_rep_s`` 120 s) and the one after it, which a small rep may wait for.
_TRACE_KEEP_S = 300.0

@dataclass(frozen=True)
class TrackerSettings:
    hold_target_s: float | None = None  # from the prescription; None: the exercise's default
    reps_target: int | None = None
    side: Thigh = Thigh.EITHER  # which thigh wears this sensor
    baseline_rom_deg: float | None = None  # from calibration reference reps
    set_rest_s: float = 20.0
    # Resting, for excursion counters: below this fraction of the last rep's range — the rep
    # kernel's exit rule (RepSettings.exit_fraction): a rep has returned once it is below half.
    rest_band_fraction: float = 0.5
    # Resting, for counters without a rest pose: the thigh turns slower than this (the stretch
    # hold timer's "moving" threshold, service/holds.py): walking, circling, jumping are faster.
    rest_still_dps: float = 20.0
    # A hold under 70 % of the prescribed one is short: the catalogue's hold_min_s values are
    # 67-75 % of the dose's holds (20 of 30 s, 7 of 10 s, 1.5 of 2 s, 3.5 of 5 s). One value for
    # counted reps and timed stretches (it was 60 % here and 80 % in the service).
    short_hold_fraction: float = 0.7
    skipped_hold_s: float = 1.0
    low_rom_fraction: float = 0.75
    reference_reps: int = 5
    impact_require_flight: bool = True  # a landing counts only after a flight phase


@dataclass(frozen=True)
class RepResult:
    exercise: str
    side: str
    set_index: int  # 1-based
    rep_index: int  # 1-based, within the set
    start_t_s: float
    end_t_s: float
    rom_deg: float
    hold_s: float
    peak_speed_dps: float
    flags: tuple[str, ...]  # FormFlag values
    kind: RepKind = RepKind.REP  # from the measure
    direction: str | None = None  # cycles: "counterclockwise" | "clockwise" (see below)
    # when the counter let it out (its end, or later for a rep that waited for the next one):
    # where the voice's count of it falls among the countdown cues
    decided_t_s: float = math.nan

    @property
    def duration_s(self) -> float:
        return self.end_t_s - self.start_t_s


@dataclass(frozen=True)
class SetResult:
    exercise: str
    side: str
    set_index: int
    reps: int
    start_t_s: float
    end_t_s: float
    median_rom_deg: float
    median_hold_s: float
    flagged_reps: int
    # the sample on which the tracker decided the set was over (rested long enough, posture
    # change, or the last sample at flush): where the close falls among reps and cues
    decided_t_s: float = math.nan
    # how far the count can be trusted, 0..1 (``confidence.py``: reps standing above the
    # angle's sway between them, alike, at a steady pace); None for counters without a rest
    # pose (circles, landings, steps). Below ``CONFIDENT`` the count is shown as "not sure".
    count_confidence: float | None = None


@dataclass
class TrackerOutput:
    reps: list[RepResult] = field(default_factory=list)
    sets: list[SetResult] = field(default_factory=list)
    countdown: list[CountdownCue] = field(default_factory=list)  # hold cues due in this chunk
    hold_remaining_s: float | None = None  # on the chunk's last sample; None: not holding


def is_short_hold(hold_s: float, target_s: float | None, settings: TrackerSettings | None = None) -> bool:
    """The one ``short_hold`` rule: a hold was prescribed and less than ``short_hold_fraction`` of it was held."""
    fraction = (settings or TrackerSettings()).short_hold_fraction
    return bool(target_s) and hold_s < fraction * float(target_s)


# Events reach the tracker at most this long after their end: a landing is found on the raw
# samples when the acceleration falls back, tens of milliseconds after its peak, while the
# resampled samples that are watched for rest may already be past it. Reps, circles and steps
# come on the very sample they end on.
_LATE_EVENT_S = 2.0

MEASURE_COUNTERS = {
    Measure.REPS: frozenset({"reps"}),
    Measure.HOLDS: frozenset({"reps"}),
    Measure.CYCLES: frozenset({"cycles"}),
    Measure.IMPACTS: frozenset({"impacts"}),
    Measure.STEPS: frozenset({"steps"}),
    Measure.TIMED: frozenset(),
}


def pipeline_settings_for(
    spec: ExerciseSpec, hold_target_s: float | None, *, require_flight: bool = True,
    personal_rom_deg: float | None = None,
) -> PipelineSettings:
    return PipelineSettings(
        reps=rep_settings_for(spec, hold_target_s, personal_rom_deg),
        impacts=ImpactSettings(require_flight=require_flight),
        counters=MEASURE_COUNTERS[spec.measure],
    )


def rep_settings_for(
    spec: ExerciseSpec, hold_target_s: float | None, personal_rom_deg: float | None = None
) -> RepSettings:
    """Kernel settings for an exercise: a posture change must outlast any prescribed hold.
    With the patient's own reference range (calibration), the first rep is judged against a
    third of it and the set's amplitude starts from it, instead of the catalogue's range."""
    base = RepSettings()
    usual_min = spec.motion.rom_deg_min if not personal_rom_deg else personal_rom_deg
    hold = hold_target_s if hold_target_s is not None else (spec.dose.hold_s_max or 0.0)
    return replace(
        base,
        # a stretch held for long is the exercise, not a new posture
        reanchor_s=max(60.0 if spec.measure == Measure.HOLDS else base.reanchor_s, 2.0 * hold + 5.0),
        posture_change_deg=max(base.posture_change_deg, 1.2 * spec.motion.rom_deg_max),
        # shuffling into position is far smaller than the exercise's movement
        first_rep_min_deg=usual_min / 3.0,
        # ... and one below the usual range waits for the second to show it went the same way
        first_rep_sure_deg=usual_min,
        reference_rise_deg=personal_rom_deg or 0.0,
        # a still spell this long is a rest, not a hold (a stream that starts just before the
        # first raise is read two ways until one shows where the rest is)
        rest_confirm_s=2.0 * hold + 3.0,
        # reps that go both ways from rest (side to side) have no single "up" to project on
        signed=base.signed and not spec.motion.bidirectional,
    )


@dataclass(frozen=True)
class _Samples:
    """Samples watched again for rest (the part of ``PipelineOutput`` rest watching reads)."""

    t_s: np.ndarray
    angle_deg: np.ndarray


class ExerciseTracker:
    """Streaming tracker for one exercise on one thigh sensor."""

    def __init__(
        self,
        spec: ExerciseSpec,
        settings: TrackerSettings | None = None,
        *,
        has_gyro: bool = True,
    ) -> None:
        self.spec = spec
        self.settings = settings or TrackerSettings()
        hold = self.settings.hold_target_s
        if hold is None:
            hold = spec.dose.hold_s_max or spec.dose.hold_s_min
        self.hold_target_s = hold or 0.0
        self.pipeline = ThighPipeline(
            pipeline_settings_for(spec, hold, require_flight=self.settings.impact_require_flight,
                                  personal_rom_deg=self.settings.baseline_rom_deg),
            has_gyro=has_gyro,
        )
        self._pending_impacts: list[ImpactEvent] = []
        self._set_index = 0
        self._set_reps: list[RepResult] = []
        self._first_roms: list[float] = []
        # seconds seen resting since the last rep (None: not resting now), and the last sample
        self._rested_s: float | None = None
        self._prev_t: float | None = None
        # the current rest spell's samples of the last _LATE_EVENT_S: (t, counted from, its first)
        self._recent: collections.deque[tuple[float, float | None, bool]] = collections.deque()
        self._last_t: float | None = None
        # excursion counters have a rest pose to come back to; the others are judged on speed
        self._rest_by_angle = "reps" in MEASURE_COUNTERS[spec.measure]
        # for the count's confidence: the angle of the last _TRACE_KEEP_S (the pipeline's own
        # output arrays, kept by reference: (last t, t, angle) per push) and the spread of the
        # angle in each gap between the set's reps, worked out as each rep arrives
        self._trace: collections.deque[tuple[float, np.ndarray, np.ndarray]] = collections.deque()
        self._gap_spreads: list[GapSpread | None] = []
        self._live_hold = self._countdown = None
        if self.hold_target_s > 0 and self._rest_by_angle:
            self._live_hold_settings = LiveHoldSettings(min_level_deg=max(spec.thresholds.min_rom_deg, 1.0))
            self._countdown_settings = CountdownSettings(target_s=self.hold_target_s)
            self._live_hold = live_hold_init(self._live_hold_settings)
            self._countdown = countdown_init(self._countdown_settings)

    # -- streaming ------------------------------------------------------------------------
    def push(
        self, t_s: np.ndarray, acc_ms2: np.ndarray, gyr_rad_s: np.ndarray | None = None
    ) -> TrackerOutput:
        p = self.pipeline.push(t_s, acc_ms2, gyr_rad_s)
        out = self._consume(p)
        self._count_down(p, out)
        return out

    def flush(self) -> TrackerOutput:
        out = self._consume(self.pipeline.flush())
        self._close_set(out, self._last_t if self._last_t is not None else math.nan)
        return out

    def _consume(self, p: PipelineOutput) -> TrackerOutput:
        out = TrackerOutput()
        rest_view: PipelineOutput | _Samples = p
        if self._rest_by_angle and len(p.t_s):
            last = float(p.t_s[-1])
            self._trace.append((last, p.t_s, p.angle_deg))
            while self._trace[0][0] < last - _TRACE_KEEP_S:
                self._trace.popleft()
        if self._rest_by_angle and len(p.revised_t_s) and self._trace:
            # (at the stream's end too: a start settled by the flush re-reads what was kept)
            latest = self._revise_trace(p.revised_t_s, p.revised_angle_deg)
            if len(p.t_s):
                rest_view = _Samples(p.t_s, latest)
        results = [self._rep_result(ev) for ev in p.reps]
        results += [self._cycle_result(ev) for ev in p.cycles]
        results += [self._step_result(ev) for ev in p.steps]
        for ev in p.impacts:
            self._pending_impacts.append(ev)
            if len(self._pending_impacts) >= self.spec.thresholds.impacts_per_rep:
                results.append(self._impact_result(self._pending_impacts))
                self._pending_impacts = []
        # Everything in time order: a rep on the sample it ends on, a posture change on its
        # own; the samples between them are watched for a rest that closes the set.
        events: list[tuple[float, int, RepResult | None]] = [(r.end_t_s, 0, r) for r in results]
        events += [(r.t_s, 1, None) for r in p.rests if r.reason == RestReason.POSTURE_CHANGE]
        events.sort(key=lambda e: (e[0], e[1]))
        t = p.t_s
        done = 0
        for when, _, rep in events:
            upto = max(done, int(np.searchsorted(t, when, side="left")))
            self._watch_rest(rest_view, done, upto, out)
            done = upto
            if rep is None:
                self._close_set(out, when)
            else:
                self._add(rep, out)
        self._watch_rest(rest_view, done, len(t), out)
        if len(t):
            self._last_t = float(t[-1])
        return out

    def _revise_trace(self, t_rev: np.ndarray, angle_rev: np.ndarray) -> np.ndarray:
        """The rep kernel read a stream's start again (``PipelineOutput.revised_*``): the kept
        angle trace takes the new angles, so the rest after reps let out late, and the gaps
        the count's confidence reads, are judged on them, as one batch would. Returns the
        latest chunk's angles as revised (its rest is watched on them; the hold countdown
        already went by what was read at the time)."""
        for k, (last, t, a) in enumerate(self._trace):
            if t[-1] < t_rev[0] or t[0] > t_rev[-1]:
                continue
            idx = np.minimum(np.searchsorted(t_rev, t), len(t_rev) - 1)
            hit = t_rev[idx] == t
            a = a.copy()
            a[hit] = angle_rev[idx[hit]]
            self._trace[k] = (last, t, a)
        return self._trace[-1][2]

    def _watch_rest(self, p: PipelineOutput | _Samples, i: int, j: int, out: TrackerOutput) -> None:
        """Samples ``i:j`` of ``p``: add up the time seen resting since the last rep; close the
        set once it is over ``set_rest_s``. A per-sample recurrence (so the same whatever the
        chunking), in plain Python: chunks are a few samples long, live."""
        if j <= i:
            return
        ts = p.t_s[i:j].tolist()
        if self._rest_by_angle:
            if not self._set_reps:  # nothing to close, and no range to judge rest by yet
                self._rested_s, self._prev_t = None, float(ts[-1])
                self._recent.clear()
                return
            band = self.settings.rest_band_fraction * self._set_reps[-1].rom_deg
            # NaN (no rest pose yet) compares False: not resting
            rest = [a < band for a in p.angle_deg[i:j].tolist()]
        else:
            still = self.settings.rest_still_dps
            rest = [abs(w) < still for w in p.speed_dps[i:j].tolist()]
        rested, prev = self._rested_s, self._prev_t
        limit = self.settings.set_rest_s
        recent = self._recent
        last_end = self._set_reps[-1].end_t_s if self._set_reps else -math.inf
        for t, resting in zip(ts, rest):
            if not resting:
                rested = None
                recent.clear()
            else:
                # resting since the previous sample: a gap in the data between two resting
                # samples counts (BLE drops are common; the thigh rested on both sides)
                step_from = prev
                first = rested is None
                if first:
                    rested = 0.0
                elif step_from is not None:
                    since = step_from if step_from > last_end else last_end
                    if t > since:
                        rested += t - since
                recent.append((t, step_from, first))
                while recent[0][0] < t - _LATE_EVENT_S:
                    recent.popleft()
            prev = t
            if rested is not None and rested > limit and self._set_reps:
                self._close_set(out, t)
        self._rested_s, self._prev_t = rested, prev

    def _rested_after(self, end_t_s: float) -> float | None:
        """The rest seen after ``end_t_s`` in the current rest spell (None: not resting): for a
        rep that reaches the tracker after samples past its end were already watched, so that
        the set's rest counts the same as if it had come on time (see ``_LATE_EVENT_S``)."""
        if self._rested_s is None:
            return None
        rested = 0.0
        for t, step_from, first in self._recent:
            if first or step_from is None or t <= end_t_s:
                continue
            rested += t - (step_from if step_from > end_t_s else end_t_s)
        return rested

    def _count_down(self, p: PipelineOutput, out: TrackerOutput) -> None:
        if self._live_hold is None or self._countdown is None or not len(p.t_s):
            return
        ts = p.t_s.tolist()  # the two kernels chained on plain lists: no numpy between them
        self._live_hold, starts = live_hold_lists(self._live_hold_settings, self._live_hold, ts, p.angle_deg.tolist())
        self._countdown, remaining, out.countdown = countdown_lists(self._countdown_settings, self._countdown, ts,
                                                                    starts)
        last = remaining[-1]
        out.hold_remaining_s = None if math.isnan(last) else last

    # -- internals ------------------------------------------------------------------------
    def _reference_rom(self) -> float | None:
        if self.settings.baseline_rom_deg is not None:
            return self.settings.baseline_rom_deg
        if len(self._first_roms) >= 3:
            return statistics.median(self._first_roms)
        return None

    def _rep_result(self, ev: RepEvent) -> RepResult:
        s = self.settings
        flags: list[str] = []
        too_fast_s = self.spec.thresholds.too_fast_s
        if too_fast_s is not None and ev.duration_s < too_fast_s:
            flags.append(FormFlag.TOO_FAST)
        if self.hold_target_s > 0:
            if ev.hold_s < s.skipped_hold_s and FormFlag.TOO_FAST not in flags:
                flags.append(FormFlag.TOO_FAST)
            if is_short_hold(ev.hold_s, self.hold_target_s, s):
                flags.append(FormFlag.SHORT_HOLD)
        ref = self._reference_rom()
        if ref is not None:
            if ev.rom_deg < s.low_rom_fraction * ref:
                flags.append(FormFlag.LOW_ROM)
            if ev.rom_deg < 0.5 * ref:
                flags.append(FormFlag.INCOMPLETE)
        if len(self._first_roms) < s.reference_reps:
            self._first_roms.append(ev.rom_deg)
        kind = RepKind.HOLD if self.spec.measure == Measure.HOLDS else RepKind.REP
        return replace(self._result(ev.start_t_s, ev.end_t_s, ev.rom_deg, ev.hold_s, ev.peak_speed_dps, flags, kind),
                       decided_t_s=ev.decided_t_s)

    def _cycle_result(self, ev: CycleEvent) -> RepResult:
        flags = []
        too_fast_s = self.spec.thresholds.too_fast_s
        if too_fast_s is not None and ev.duration_s < too_fast_s:
            flags.append(FormFlag.TOO_FAST)
        direction = "counterclockwise" if ev.direction > 0 else "clockwise"
        # a cone of angular radius r spans 2r degrees across: report that as the ROM
        return self._result(ev.start_t_s, ev.end_t_s, 2 * ev.radius_deg, 0.0, 0.0, flags, RepKind.CYCLE, direction)

    def _impact_result(self, evs: list[ImpactEvent]) -> RepResult:
        start, end = evs[0].t_s, evs[-1].t_s
        return self._result(start, end, 0.0, 0.0, 0.0, [], RepKind.IMPACT)

    def _step_result(self, ev: StepEvent) -> RepResult:
        return self._result(ev.start_t_s, ev.end_t_s, 0.0, 0.0, ev.peak_speed_dps, [], RepKind.STEP)

    def _result(self, start, end, rom, hold, peak, flags, kind, direction=None) -> RepResult:  # noqa: ANN001
        return RepResult(
            exercise=self.spec.id,
            side=self.settings.side,
            set_index=0,  # set by _add
            rep_index=0,
            start_t_s=start,
            end_t_s=end,
            rom_deg=rom,
            hold_s=hold,
            peak_speed_dps=peak,
            flags=tuple(flags),
            kind=kind,
            direction=direction,
        )

    def _add(self, rep: RepResult, out: TrackerOutput) -> None:
        if not self._set_reps:
            self._set_index += 1
            self._gap_spreads = []
        elif self._rest_by_angle:
            self._gap_spreads.append(self._gap_spread(self._set_reps[-1].end_t_s, rep.start_t_s))
        late = self._rest_by_angle and self._prev_t is not None and rep.end_t_s <= self._prev_t
        replay = self._rest_before(rep.end_t_s) if late else None
        # the next gap starts at this rep's end: nothing before it is needed again
        while self._trace and self._trace[0][0] < rep.end_t_s:
            self._trace.popleft()
        if replay is None:
            self._rested_s = self._rested_after(rep.end_t_s)  # a set's rest counts from its last rep
        rep = replace(rep, set_index=self._set_index, rep_index=len(self._set_reps) + 1)
        self._set_reps.append(rep)
        out.reps.append(rep)
        if replay is not None:
            # a rep that reached the tracker after samples past its end were watched (a first
            # rep that waited for the second, a small one for one of its size): watch them again
            # as if it had come on time, so the set's rest, and where the set ends, are what one
            # batch gives
            self._rested_s, self._prev_t, t_after, angle_after = replay
            self._recent.clear()
            self._watch_rest(_Samples(t_after, angle_after), 0, len(t_after), out)

    def _rest_before(self, end_t_s: float) -> tuple[float | None, float | None, np.ndarray, np.ndarray]:
        """For a rep arriving late: the rest state a batch had on reaching ``end_t_s`` (resting at
        the sample before it, by the set's last rep so far; that sample's time), and the samples
        watched since, from the angle trace."""
        t = np.concatenate([c for _, c, _ in self._trace]) if self._trace else np.empty(0)
        angle = np.concatenate([a for _, _, a in self._trace]) if self._trace else np.empty(0)
        k = int(np.searchsorted(t, end_t_s, side="left"))
        j = int(np.searchsorted(t, self._prev_t, side="right"))
        rested = None
        if k > 0 and self._set_reps:
            band = self.settings.rest_band_fraction * self._set_reps[-1].rom_deg
            rested = 0.0 if angle[k - 1] < band else None
        prev = float(t[k - 1]) if k > 0 else None
        return rested, prev, t[k:j], angle[k:j]

    def _close_set(self, out: TrackerOutput, when: float) -> None:
        reps = self._set_reps
        if not reps:
            return
        out.sets.append(
            SetResult(
                exercise=self.spec.id,
                side=self.settings.side,
                set_index=self._set_index,
                reps=len(reps),
                start_t_s=reps[0].start_t_s,
                end_t_s=reps[-1].end_t_s,
                median_rom_deg=statistics.median(r.rom_deg for r in reps),
                median_hold_s=statistics.median(r.hold_s for r in reps),
                flagged_reps=sum(1 for r in reps if r.flags),
                decided_t_s=when,
                count_confidence=self._count_confidence(reps),
            )
        )
        self._set_reps = []

    def _gap_spread(self, after_s: float, before_s: float) -> GapSpread | None:
        """The angle's spread between two reps (``gap_spread``: over at most the gap's last
        ``GAP_WINDOW_S``, so a stream keeps a bounded trace and gives what one batch gives)."""
        after_s = max(after_s, before_s - GAP_WINDOW_S)
        pieces = [(t, a) for last, t, a in self._trace if last >= after_s and t[0] <= before_s]
        if not pieces:
            return None
        t = np.concatenate([t for t, _ in pieces])
        angle = np.concatenate([a for _, a in pieces])
        return gap_spread(t, angle, after_s, before_s)

    def _count_confidence(self, reps: list[RepResult]) -> float | None:
        if not self._rest_by_angle:
            return None
        conf = confidence_from_parts(
            [r.start_t_s for r in reps], [r.rom_deg for r in reps], self._gap_spreads,
            alternating=self.spec.motion.bidirectional, min_rom_deg=self.pipeline.settings.reps.min_rom_deg,
        )
        return conf.confidence


def track(
    spec: ExerciseSpec,
    t_s: np.ndarray,
    acc_ms2: np.ndarray,
    gyr_rad_s: np.ndarray | None = None,
    settings: TrackerSettings | None = None,
) -> TrackerOutput:
    """Batch form: one push over everything, then flush — the same code as live."""
    tr = ExerciseTracker(spec, settings, has_gyro=gyr_rad_s is not None)
    out = tr.push(t_s, acc_ms2, gyr_rad_s)
    tail = tr.flush()
    out.reps += tail.reps
    out.sets += tail.sets
    out.countdown += tail.countdown
    return out
