"""Repetitions as excursions of the thigh from its rest pose, with hysteresis and holds.

The input is the gravity direction in the sensor frame and the angular speed (see
``orientation``). The kernel learns the rest pose itself, so it needs no calibration and no
knowledge of how the sensor was strapped on. Each mechanism says what the thigh physically
does; each constant in ``RepSettings`` says where its value comes from.

* **dwell**: the gravity direction staying within ``dwell_deg`` of the dwell's own mean.
  Judged on the direction, not on an angular-speed bar: an accelerometer-only sensor's tilt
  rate is noisy and never looks still for long, while its direction stays put. An excursion
  starting or ending ends a dwell (small reps inside the cone are movement).
* **rest**: people start an exercise from rest, so the first dwell of ``rest_init_s`` (half a
  second, shorter than any raise-and-hold) is the rest anchor. While still near it, the
  anchor follows slowly (``rest_follow_tau_s``) so a leg that settles a little differently
  each time is still "at rest". Reps that go both ways from the middle (``signed=False``:
  side to side) have no still rest: their anchor is the mean pose over ``center_tau_s``.
* **working direction**: where the thigh goes when it leaves rest — the principal axis of
  its displacements from the anchor, learned online (decaying second moments, one
  power-iteration step every ``dir_every_s``) and pointed the way the displacements go on
  average. A moving thigh votes; a still one only inside an excursion (a hold) or farther
  from the anchor than a rest shift goes — a leg resting a few degrees off the anchor would
  teach it its offset. Forgotten at a posture change, kept across a rest shift.
* **elevation**: the signed angle of gravity from the anchor in the plane of the anchor and
  the working direction — positive toward where reps go. Until a direction is known, the
  unsigned angle from the anchor. A thigh that swings *past* rest the other way reads
  negative instead of as a second rep; a wobble across the working plane barely registers.
* **excursion**: the elevation rising from its valley. It starts when the elevation rises
  ``max(enter_deg, enter_amp_fraction × amplitude)`` above the valley; it ends when it falls
  back below ``valley + max(exit_deg, exit_fraction × rise)`` — a rep counts on its *return to
  rest*, and only if it rose ``min_rom_deg``.
* **which excursions are reps**: one that rises ``count_amp_fraction`` of the set's typical
  rise (the amplitude, which follows the counted reps). A smaller one waits, and counts with
  the next when that one is within ``similar_ratio`` of its size — its rise from its own start,
  or the height it reaches from rest (a low-range block after full reps; it is emitted then,
  with its own times). One still waiting when the rest moves is dropped. The first rep of a posture has nothing to be
  compared with: it must rise ``first_rep_min_deg`` (the tracker sets a third of the
  exercise's smallest usual ROM), so shuffling into position is not a rep — unless three
  excursions of a size in a row show a patient whose reps are all that small. A bounce (right
  after a rep, less than half as high) and a twitch (quicker than ``twitch_s`` and less than
  half the amplitude) are not reps; a fast full rep is.
* **rest shift / posture change**: a dwell away from the anchor for ``reanchor_s`` (longer
  than any prescribed hold) moves the anchor there and drops the open excursion. If it moved
  less than ``rest_shift_fraction`` of the set's typical rise, the leg came to rest a little
  elsewhere (``rest_shift``): amplitude and direction are kept, so drift and shuffles after it
  are not counted. Farther, it is a new posture (``posture_change``: got into position,
  rolled over, re-strapped the sensor) and both are learned again.
* **a stream that starts just before the first raise**: if it does not begin in its first
  long dwell (still for less than ``rest_init_s``, or moving), that dwell may be the first hold (the set read upside
  down: a rep lost, rests taken for holds) or the rest after a hold the stream began in. Both
  readings go on; what they count is held back until a still spell longer than any hold
  (``rest_confirm_s``) at one of the two poses shows the rest, then let out from that reading
  (read again over the samples kept since). Never shown: the first long dwell, as before.
* **hold**: from the first to the last moment within ``max(hold_band_deg,
  hold_band_fraction × rise)`` of the rep's own peak with the thigh turning slower than
  ``hold_rate_dps``, read off the excursion's trace at the rep's end — no filter lag, and an
  accelerometer tilt that overshoots after a fast raise does not break it into pieces.

Events carry absolute times (the input's timestamps), range of motion (the peak elevation
from the rest pose, degrees), the rise from the rep's own start, duration, hold
start/end/duration, peak angular speed, and the excursion direction (unit vector in the
sensor frame, from rest toward the peak) so a caller can tell sides or planes.
Latency: a rep's event is emitted on the sample where the angle crosses the exit threshold (a
small rep waiting for one of its size: at the end of that one).
Work: O(1) per sample, plus one pass over an excursion's trace at its end (amortised O(1));
memory bounded by ``max_rep_s``.
"""

from __future__ import annotations

import array
import math
from dataclasses import dataclass, field, replace

import numpy as np

from .stream import shallow_copy
from .vocabulary import RestReason


@dataclass(frozen=True)
class RepSettings:
    enter_deg: float = 1.5
    exit_deg: float = 0.75
    exit_fraction: float = 0.5
    min_rom_deg: float = 1.8
    # People start an exercise from rest: the first dwell this long is the rest pose. Half a
    # second is shorter than any raise-and-hold (waiting a full second read a recording that
    # starts just before the first raise upside down: its first hold became "rest").
    rest_init_s: float = 0.5
    # A thigh at rest stays within this cone: accelerometer tilt noise plus tremor is 1-2 deg.
    dwell_deg: float = 3.0
    # Reps both ways from the middle (``signed=False``): the middle is the mean pose over a
    # few reps (side-to-side rolls take 2-4 s each).
    center_tau_s: float = 6.0
    rest_still_dps: float = 8.0
    rest_follow_tau_s: float = 4.0
    reanchor_s: float = 15.0
    # Far beyond any rep of the exercise and still for a moment: the patient lay down, sat
    # up or rolled over — re-anchor quickly instead of waiting ``reanchor_s``.
    posture_change_deg: float = 70.0
    posture_still_s: float = 2.0
    # A hold is where the smoothed elevation stops changing: its rate, not the gyroscope's
    # speed, so tremor across the working plane and accelerometer noise do not break holds.
    # Hold band around the rep's own peak: a leg held up trembles and sags by a few degrees.
    hold_band_deg: float = 2.0
    hold_band_fraction: float = 0.15
    # ... and inside the band, the hold starts when the raise has slowed below this and ends
    # when the lowering passes it: a fast rep turns over at its peak without stopping. The
    # value of the independent reference (evaluation.md: gyroscope lobes "ended" below 15 deg/s).
    hold_rate_dps: float = 15.0
    speed_smooth_s: float = 0.2
    max_rep_s: float = 120.0
    # Faster than any voluntary movement of the hip there and back.
    min_rep_s: float = 0.4
    # A bounce: starts within this of the previous rep's end and rises less than this
    # fraction of it (a reflex rebound off the mat takes 0.2-0.4 s and loses half its height).
    bounce_gap_s: float = 0.5
    bounce_fraction: float = 0.5
    # A twitch: over in less than this (a deliberate rep, even a fast one, takes a second)
    # and less than ``bounce_fraction`` of the set's typical rise.
    twitch_s: float = 0.8
    # Adaptive part: the set's typical rise ("amplitude", an average of recent reps) raises
    # the bar, so a rebound after lowering the leg or a wobble during a hold is not a rep.
    # Entering an excursion takes only a tenth of it (was a quarter: a low-range rep after
    # full ones never even started, so it could not wait for confirmation; 0, 0.1 and 0.15
    # give UCI MAE 0.19, 0.13, 0.19 and the same MEx figures); counting takes 0.3 or a second
    # excursion of the same size (``similar_ratio``).
    enter_amp_fraction: float = 0.1
    count_amp_fraction: float = 0.3
    amp_smoothing: float = 0.3
    # A small excursion (below the amplitude bar or the first-rep bar) waits; it counts, with
    # the next one, when the next is within this factor of its size (rise or height). Tremor
    # and linear acceleration make a rep's measured rise vary by a third around its mean on
    # the recordings, so reps of one size read within 1.6x of each other.
    similar_ratio: float = 1.6
    # Inside an excursion, down by this fraction of the rise and half-way up again without
    # reaching the exit: the rest moved (see the step).
    rebase_fraction: float = 0.4
    # A re-anchoring that moves the rest by less than this fraction of the set's typical rise
    # is the leg coming to rest a little elsewhere, not a new posture.
    rest_shift_fraction: float = 0.5
    # The first rep of a posture has no set to be compared with: it must rise at least this
    # much (the tracker sets a third of the exercise's smallest usual range of motion), so
    # shuffling into position before the first raise is not a rep.
    first_rep_min_deg: float = 0.0
    # A first rep that rises less than ``first_rep_sure_deg`` (the tracker sets the exercise's
    # smallest usual range of motion, or the patient's calibrated one) may be a patient
    # settling into position, or a recording that starts just before the set: it waits for
    # the second rep of the posture and counts if the two leave rest more along one
    # direction than across it (within 45 deg, cos 45 = 0.707). Settling moves the thigh
    # some other way (on MEx the first excursions that were not reps went 50-145 deg off the
    # next rep; first reps 0-32 deg). A first rep with no second after ``reanchor_s``
    # (longer than any hold), or at the end of the stream, counts on its own; one followed
    # by a posture change before that does not (it was part of getting into or out of
    # position). A first rep of the usual range counts at once.
    first_rep_sure_deg: float = 0.0
    same_way_cos: float = 0.7071
    # A stream that does not begin in its first long dwell (still for less than
    # ``rest_init_s``, or moving, and then moving on) began either at rest just before the first
    # raise (a recording started late: read from the first long dwell, the set is upside down —
    # a rep lost, the rests taken for holds, every rise measured from a hold) or in a hold, or
    # a lowering, before the first rest (read from its first pose, the same happens the other
    # way). Both readings go on; what they count is held back until a still spell of
    # ``rest_confirm_s`` (longer than any hold: the tracker sets twice the prescribed hold plus
    # 3 s) near one of the two poses shows which is the rest, and then let out from that
    # reading. Never shown (``start_wait_s``, or the stream ends): read from the first long
    # dwell, as before. (UCI recordings cut to start 0.1-0.5 s before the first raise lost 1-5
    # reps each this way; MEx files start inside a bridge as often.)
    rest_confirm_s: float = 8.0
    # Never still for ``rest_init_s`` this long after the stream's start (a patient who moves
    # on without pausing at rest: MEx 02/04_act_2's clams played 30 % faster counted 2 of 10):
    # the rest is the longest still moment so far, and the stream is read from its start.
    # Three seconds hold at least one full rep at any tempo the catalogue allows.
    rest_wait_s: float = 3.0
    # A stream read two ways to its end without a still spell longer than any hold: the rest
    # is the pose the leg stayed still at longest, if clearly longest — half as long again
    # (on the UCI templates cut to start late the rest's longest spell was 1.7-3x the hold's;
    # MEx clams 09/04_act_1, no clear rest, 1.2x) — at the first pose, or at neither of the
    # two (the first long dwell was a pause while getting into position); else the first
    # long dwell, as before.
    still_longer: float = 1.5
    start_wait_s: float = 600.0
    # The patient's own typical rise, when a calibration recorded reference reps (0: none):
    # the set's amplitude starts there instead of being learned from the first reps.
    reference_rise_deg: float = 0.0
    # Signed elevation along the set's working direction (see the module doc): the principal
    # direction of the thigh's displacements from rest, forgetting with ``dir_tau_s``;
    # displacements under ``dir_min_deg`` (noise at rest) do not vote, nor does a still thigh
    # outside an excursion nearer the anchor than a rest shift (``rest_shift_fraction``).
    signed: bool = True
    dir_tau_s: float = 10.0
    dir_min_deg: float = 2.0
    dir_every_s: float = 0.1
    # The peak that sets the exit bar and the ROM is the elevation smoothed this much: a
    # heel knocking the mat spikes the accelerometer's tilt for a sample or two, and half of a
    # spiked peak is above the real plateau — the rep would "end" while the leg is still up.
    peak_smooth_s: float = 0.2

    def __post_init__(self) -> None:
        if not 0 < self.exit_deg <= self.enter_deg:
            raise ValueError("need 0 < exit_deg <= enter_deg")
        if self.min_rom_deg < self.enter_deg:
            raise ValueError("min_rom_deg must be >= enter_deg")
        if not 0 <= self.exit_fraction < 1 or not 0 <= self.hold_band_fraction < 1:
            raise ValueError("fractions must be within [0, 1)")
        for name in ("rest_init_s", "rest_follow_tau_s", "reanchor_s", "speed_smooth_s", "peak_smooth_s", "dir_tau_s",
                     "rest_confirm_s", "rest_wait_s", "start_wait_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if self.still_longer < 1.0:
            raise ValueError("still_longer must be >= 1")


@dataclass(frozen=True)
class RepEvent:
    start_t_s: float
    end_t_s: float
    peak_t_s: float
    rom_deg: float
    hold_s: float
    hold_start_t_s: float | None
    hold_end_t_s: float | None
    peak_speed_dps: float
    direction_sf: tuple[float, float, float]  # rest→peak, unit vector, sensor frame
    rise_deg: float = 0.0  # peak elevation above the rep's own start (its valley)
    # the sample on which the kernel let the rep out: its end, or later for one that waited (a
    # small first rep for the second, a small rep for one of its size); NaN: not said
    decided_t_s: float = math.nan

    @property
    def duration_s(self) -> float:
        return self.end_t_s - self.start_t_s


@dataclass(frozen=True)
class RestEvent:
    """The rest anchor was set (first dwell), moved a little (rest shift) or moved to a new posture."""

    t_s: float
    g_sf: tuple[float, float, float]
    reason: RestReason


@dataclass
class RepState:
    t_s: float | None = None
    speed_smooth_dps: float = 0.0  # angular speed smoothed over speed_smooth_s
    anchor: tuple[float, float, float] | None = None  # rest pose: gravity unit vector, sensor frame
    # the current dwell (for the initial anchor and re-anchoring): since when, and the sum of
    # its gravity unit vectors (its mean direction, unnormalised)
    still_since_s: float | None = None
    still_sum: tuple[float, float, float] = (0.0, 0.0, 0.0)
    # excursion in progress
    in_rep: bool = False
    rest_t_s: float | None = None  # last time the angle was near the valley (rep start)
    valley_deg: float = 0.0  # lowest angle since the last rep ended (its "rest" level)
    amp_deg: float = 0.0  # the set's typical rise, degrees (0: none yet)
    rep_start_t_s: float = 0.0
    peak_deg: float = 0.0  # the smoothed elevation's highest point in this excursion
    level_deg: float | None = None  # the elevation smoothed over ``peak_smooth_s``
    peak_t_s: float = 0.0
    peak_g: tuple[float, float, float] = (0.0, 0.0, 0.0)
    peak_speed_dps: float = 0.0
    trace_t_s: list[float] = field(default_factory=list)  # this excursion: times ...
    trace_deg: list[float] = field(default_factory=list)  # ... smoothed elevations ...
    trace_speed_dps: list[float] = field(default_factory=list)  # ... and angular speeds
    trace_n: int = 0  # how many trace entries are this state's (see segment_reps_step)
    work_dir: tuple[float, float, float] | None = None  # where reps go from rest (unit, sensor frame)
    mom: tuple[float, float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)  # xx xy xz yy yz zz
    vsum: tuple[float, float, float] = (0.0, 0.0, 0.0)  # decaying mean displacement: the sign
    dir_dt_s: float = 0.0  # time since the working direction was last updated
    counted: bool = False  # a rep was counted in this posture
    trough_deg: float = 0.0  # lowest smoothed elevation since this excursion's peak ...
    trough_t_s: float = 0.0  # ... and when
    center_s: float = 0.0  # how long the middle pose has been averaged (signed=False)
    pending: RepEvent | None = None  # a small excursion waiting for one of its size
    pending_before: RepEvent | None = None  # ... and one of its size before it, both below the first-rep bar
    first: RepEvent | None = None  # the posture's first rep, waiting for the second to go its way
    last_rep_end_t_s: float | None = None  # the last counted rep: when it ended ...
    last_rep_rise_deg: float = 0.0  # ... and how high it rose
    first_t_s: float | None = None  # the stream's first sample
    entry_deg: float = 0.0  # the elevation where the open excursion was first seen
    anchor_since_s: float = 0.0  # when the dwell that became the rest anchor began
    # the stream did not begin in its first long dwell (``rest_confirm_s``): the other reading,
    # anchored at its first pose, waiting to be run on the samples since (``start_buf``) if it proves
    # right; until then what this reading finds is held back (``start_held``)
    start_alt: RepState | None = None
    # (t, g x y z, speed, peak speed) per sample, flat: 48 bytes a sample, 2.9 MB for 10 min at 100 Hz
    start_buf: array.array | None = None
    start_buf_n: int = 0  # how many ``start_buf`` values are this state's (as ``trace_n``)
    start_held: RepOutput | None = None
    best_still: tuple[float, tuple[float, float, float]] = (0.0, (0.0, 0.0, 0.0))  # before any rest: longest, sum
    # while read two ways: the longest still spell at the first pose (and its sum), at the other
    start_longest: tuple[float, tuple[float, float, float], float] = (0.0, (0.0, 0.0, 0.0), 0.0)
    # ... and at neither pose (within ``posture_change_deg`` of the first): its length and sum
    start_elsewhere: tuple[float, tuple[float, float, float]] = (0.0, (0.0, 0.0, 0.0))
    # ... and how far (degrees, along the line from the first pose to the other) a still spell of
    # ``rest_init_s`` went beyond the other pose, and beyond the first: the rest is at an end
    start_beyond: tuple[float, float] = (0.0, 0.0)


@dataclass
class RepOutput:
    reps: list[RepEvent] = field(default_factory=list)
    rests: list[RestEvent] = field(default_factory=list)
    angle_deg: np.ndarray = field(default_factory=lambda: np.empty(0))  # (m,) NaN before rest
    # angles already given out, read again (a stream's start read two ways, see the module
    # doc): the samples' times and their angles from the reading that proved right. For whoever
    # judges rest after the fact; ``angle_deg`` stays what was read at the time
    revised_t_s: np.ndarray = field(default_factory=lambda: np.empty(0))
    revised_angle_deg: np.ndarray = field(default_factory=lambda: np.empty(0))


def segment_reps_init(settings: RepSettings) -> RepState:
    return RepState(amp_deg=settings.reference_rise_deg)


def segment_reps_step(
    settings: RepSettings,
    state: RepState,
    t_s: np.ndarray,
    g: np.ndarray,
    speed_dps: np.ndarray,
    peak_speed_dps: np.ndarray | None = None,
) -> tuple[RepState, RepOutput]:
    """One chunk.

    ``t_s`` (m,) seconds; ``g`` (m, 3) gravity unit vectors (arrays, or plain lists: ``g`` as
    (x, y, z) per sample); ``speed_dps`` (m,) the angular
    speed that decides stillness (rest, posture changes); ``peak_speed_dps`` (m,) the speed reported as a rep's
    peak (defaults to ``speed_dps``).
    """
    st = shallow_copy(state)
    # The trace lists are appended to in place (copying them on every call cost O(excursion)
    # per chunk: 3 × 3,000 entries in a 30 s hold at 100 Hz). The caller's state still reads as
    # it did: it owns the first ``trace_n`` entries; if another step already went on from it
    # (the lists are longer than that), this one forks its own copy of them.
    if len(st.trace_t_s) != st.trace_n:
        n = st.trace_n
        st.trace_t_s, st.trace_deg, st.trace_speed_dps = st.trace_t_s[:n], st.trace_deg[:n], st.trace_speed_dps[:n]
    if st.start_held is not None:  # (only in a stream's first minutes, see RepSettings.rest_confirm_s)
        if len(st.start_buf) != st.start_buf_n:  # appended to in place, as the trace is
            st.start_buf = st.start_buf[:st.start_buf_n]
        st.start_held = RepOutput(list(st.start_held.reps), list(st.start_held.rests))
    s = settings
    m = len(t_s)
    out = RepOutput()
    angles = [math.nan] * m  # an array at the end: numpy item assignment is slow per sample
    # plain lists as they are (the pipeline chains its kernels on lists: no numpy round trip)
    ts = t_s if type(t_s) is list else np.asarray(t_s, dtype=float).tolist()
    gs = g if type(g) is list else np.asarray(g, dtype=float).reshape(m, 3).tolist()
    ws = speed_dps if type(speed_dps) is list else np.asarray(speed_dps, dtype=float).tolist()
    if peak_speed_dps is None:
        ps = ws
    else:
        ps = peak_speed_dps if type(peak_speed_dps) is list else np.asarray(peak_speed_dps, dtype=float).tolist()
    deg = 180.0 / math.pi
    # settings as locals: attribute lookups cost, per sample, on a Pi
    inv_speed_tau, inv_peak_tau, inv_follow_tau = 1.0 / s.speed_smooth_s, 1.0 / s.peak_smooth_s, 1.0 / s.rest_follow_tau_s
    inv_center_tau = 1.0 / s.center_tau_s
    rest_still, exit_deg, signed, dir_every = s.rest_still_dps, s.exit_deg, s.signed, s.dir_every_s
    max_trace = int(s.max_rep_s * 100) + 1  # bounded memory: up to 100 Hz for max_rep_s
    cos_dwell = math.cos(math.radians(s.dwell_deg))
    for i in range(m):
        t = ts[i]
        gx, gy, gz = gs[i]
        if st.first_t_s is None and signed:
            # the stream's first sample: until its first long dwell shows that the stream began
            # in it, the reading from the stream's first pose is kept ready (see RepSettings.rest_confirm_s)
            st.start_alt = replace(st, anchor=(gx, gy, gz), rest_t_s=t, valley_deg=0.0, first_t_s=t,
                                   trace_t_s=[], trace_deg=[], trace_speed_dps=[], trace_n=0)
            st.start_buf, st.start_held = array.array("d"), RepOutput()
        if st.start_alt is not None:
            st.start_buf.extend((t, gx, gy, gz, ws[i], ps[i]))
            if t - st.start_alt.rest_t_s > s.start_wait_s:  # never shown: as read
                st, _ = _settle_start(s, st, out, t, rest_is_start=False)
        sink = out if st.start_held is None else st.start_held
        dt = 0.0 if st.t_s is None else t - st.t_s
        if dt < 0 or dt > 1.0:
            if dt > 1.0:
                # a gap in the samples (the sensor dropped out): what the leg did meanwhile is
                # unknown, so a dwell ends here — its missing time is not stillness (a gap in a
                # hold would otherwise confirm the hold as the rest, or re-anchor there)
                st.still_since_s = None
            dt = 0.0
        st.t_s = t
        a = dt * inv_speed_tau
        if a > 1.0:
            a = 1.0
        st.speed_smooth_dps += a * (ws[i] - st.speed_smooth_dps)
        still = st.speed_smooth_dps < rest_still

        # dwell: the gravity direction stays within dwell_deg of the dwell's own mean. Judged
        # on the direction, not on an angular-speed bar: an accelerometer-only sensor's tilt
        # rate is noisy (tremor, linear acceleration) and never looks still for long, while its
        # direction does stay put. An excursion starting or ending also ends a dwell (below):
        # small reps inside the cone are movement.
        if st.still_since_s is not None:
            sx, sy, sz = st.still_sum
            n = math.sqrt(sx * sx + sy * sy + sz * sz)
            if n > 0 and (gx * sx + gy * sy + gz * sz) / n >= cos_dwell:
                st.still_sum = (sx + gx, sy + gy, sz + gz)
            else:
                if st.anchor is None and st.start_alt is not None:
                    if st.still_since_s == st.first_t_s:
                        # the stream began still, briefly, and moves: that pose is the other
                        # reading's rest (more exactly than the first sample alone)
                        st.start_alt = replace(st.start_alt, anchor=_unit(st.still_sum))
                    if t - st.still_since_s > st.best_still[0]:  # (see RepSettings.rest_wait_s)
                        st.best_still = (t - st.still_since_s, st.still_sum)
                st.still_since_s = None
        if st.first_t_s is None:
            st.first_t_s = t
        if st.still_since_s is None:
            st.still_since_s, st.still_sum = t, (gx, gy, gz)
        still_for = t - st.still_since_s
        if st.start_alt is not None and st.anchor is not None:
            verdict = _rest_shown(s, st)  # which of the two poses this still spell is at
            if verdict is not None and still_for >= s.rest_confirm_s:
                st, angle = _settle_start(s, st, out, t, verdict)
                if verdict:  # the other reading has taken this sample in already
                    angles[i] = angle
                    continue
                sink = out
            elif verdict is not None:  # the longest still spell at each, for the stream's end
                a_s, a_sum, b_s = st.start_longest
                if verdict and still_for > a_s:
                    st.start_longest = (still_for, st.still_sum, b_s)
                elif not verdict and still_for > b_s:
                    st.start_longest = (a_s, a_sum, still_for)
            elif still_for > st.start_elsewhere[0] and _apart_deg(
                _unit(st.still_sum), st.start_alt.anchor
            ) < s.posture_change_deg:
                st.start_elsewhere = (still_for, st.still_sum)
            if still_for >= s.rest_init_s and st.start_alt is not None:
                _note_beyond(st)
        if st.first is not None and t - st.first.end_t_s > s.reanchor_s:
            sink.reps.append(replace(st.first, decided_t_s=t))  # no second rep came: a set of one
            st.first = None

        if st.anchor is None:
            if st.start_alt is not None and t - st.first_t_s >= s.rest_wait_s and st.best_still[0] > 0:
                # never still for rest_init_s: the rest is the longest still moment so far,
                # and the stream is read from there, from its start
                st, angles[i] = _settle_start(s, st, out, t, True, anchor=_unit(st.best_still[1]))
                continue
            if not signed or still_for >= s.rest_init_s:
                st.anchor, st.anchor_since_s = _unit(st.still_sum), st.still_since_s
                if st.start_alt is not None and (
                    st.still_since_s == st.first_t_s or _apart_deg(st.start_alt.anchor, st.anchor) >= s.posture_change_deg
                ):
                    # the stream began in its first long dwell (at rest), or its first pose is
                    # farther from it than any rep goes (getting into position): one reading
                    out.rests.extend(st.start_held.rests)
                    st.start_alt = st.start_buf = st.start_held = None
                    sink = out
                sink.rests.append(RestEvent(t, st.anchor, RestReason.INITIAL))
                st.rest_t_s, st.valley_deg = t, 0.0
            continue
        if not signed and dt > 0:
            # reps both ways from the middle (side to side): nobody stops in the middle, so
            # the middle is the mean pose of the last few rolls
            # (the mean of all seen so far for the first center_tau_s: a recording that starts
            # on one side finds the middle after the first roll, not after several)
            st.center_s += dt
            k = dt / st.center_s if st.center_s < s.center_tau_s else dt * inv_center_tau
            ax, ay, az = st.anchor
            st.anchor = _unit((ax + k * (gx - ax), ay + k * (gy - ay), az + k * (gz - az)))

        far = st.in_rep and st.peak_deg > s.posture_change_deg and still_for >= s.posture_still_s
        if far or (
            still_for >= s.reanchor_s and (st.in_rep or abs(st.valley_deg) > s.exit_deg)
        ):
            # still away from rest for longer than any hold: a new rest, not a rep
            st.in_rep = False
            st.trace_t_s, st.trace_deg, st.trace_speed_dps = [], [], []
            new = _unit(st.still_sum)
            shift = _apart_deg(new, st.anchor)
            st.anchor = new
            st.rest_t_s, st.valley_deg = t, 0.0
            reason = RestReason.REST_SHIFT
            # a small excursion still waiting for one of its size: none came before the leg
            # rested elsewhere for longer than any hold, so the set it belonged to is over
            # (kept, it was confirmed by the next set's first small rep: UCI s2 e3)
            st.pending = st.pending_before = None
            if st.amp_deg == 0.0 or shift >= s.rest_shift_fraction * st.amp_deg:
                # farther than the set's reps go: a new posture (got into position, rolled
                # over, re-strapped the sensor). How big reps are and which way they go is
                # learned again. A smaller shift is the leg coming to rest a little elsewhere:
                # wiping the memory there let drift and shuffles count as reps.
                reason = RestReason.POSTURE_CHANGE
                # (a small first rep still waiting goes too: it was getting into position)
                st.amp_deg, st.counted, st.pending, st.first = s.reference_rise_deg, False, None, None
                st.pending_before = None
                st.work_dir = None
                st.mom, st.vsum = (0.0,) * 6, (0.0, 0.0, 0.0)
            # a new still spell starts here: the next re-anchoring needs its own stillness
            # (else one long spell re-anchors on every sample once the elevation dips below 0)
            st.still_since_s, st.still_sum = t, (gx, gy, gz)
            sink.rests.append(RestEvent(t, st.anchor, reason))

        ax, ay, az = st.anchor
        dot = gx * ax + gy * ay + gz * az
        if signed and dt > 0:
            st.dir_dt_s += dt
            if st.dir_dt_s >= dir_every:  # the direction drifts over seconds: 10 Hz is plenty
                # a still thigh votes only inside an excursion (a hold) or farther from the rest
                # than a rest shift goes: a leg that settles a few degrees off the rest and stays
                # there (a pause between blocks) taught the direction its offset and turned it
                # over before the next block (issue 10, failure mode 2). Before the set's first
                # rep this does not hold back anything: no amplitude yet (the bar is 0), and
                # before a direction is known any offset beyond enter_deg is an "excursion" —
                # a leg settling 3-4 deg off a brief first anchor still votes (tried: a bar from
                # the exercise's usual range and no vote from still excursions under the
                # first-rep bar changed no eval count and made the tilt-scaling checks worse)
                vx, vy, vz = gx - ax, gy - ay, gz - az
                off = math.radians(s.rest_shift_fraction * st.amp_deg)
                if (st.in_rep or not still or vx * vx + vy * vy + vz * vz >= off * off) and _learn_direction(
                    s, st, vx, vy, vz, st.dir_dt_s
                ):
                    # valley and peak were measured the wrong way round: start afresh here
                    st.in_rep, st.trace_t_s, st.trace_deg, st.trace_speed_dps = False, [], [], []
                    st.valley_deg, st.rest_t_s = 0.0, t
                st.dir_dt_s = 0.0
        if st.work_dir is None:
            ang = math.acos(1.0 if dot > 1.0 else (-1.0 if dot < -1.0 else dot)) * deg
        else:
            # signed angle in the plane of the anchor and the working direction w: the part of
            # w across the anchor, w - (w.a) a, has length sqrt(1 - (w.a)^2)
            wx, wy, wz = st.work_dir
            wa = wx * ax + wy * ay + wz * az
            across = 1.0 - wa * wa
            if across > 1e-12:
                ang = math.atan2((gx * wx + gy * wy + gz * wz - wa * dot) / math.sqrt(across), dot) * deg
            else:
                ang = 0.0
        angles[i] = ang
        if st.level_deg is None:
            st.level_deg = ang
        elif dt > 0:
            k = dt * inv_peak_tau
            st.level_deg += (1.0 if k > 1.0 else k) * (ang - st.level_deg)
        lvl = st.level_deg

        if not st.in_rep:
            if ang < st.valley_deg:
                st.valley_deg = ang
            # a rep rises from rest or above: the way back from a swing past rest is not a rise
            base = st.valley_deg if st.valley_deg > -exit_deg else -exit_deg
            if ang <= base + exit_deg:
                st.rest_t_s = t
            if still and -exit_deg < ang < exit_deg:  # follow a leg that settles slightly differently
                k = dt * inv_follow_tau
                ax, ay, az = ax + k * (gx - ax), ay + k * (gy - ay), az + k * (gz - az)
                n = math.sqrt(ax * ax + ay * ay + az * az)
                st.anchor = (ax / n, ay / n, az / n)
            if ang > base + max(s.enter_deg, s.enter_amp_fraction * st.amp_deg):
                st.in_rep = True
                st.rep_start_t_s = st.rest_t_s if st.rest_t_s is not None else t
                st.entry_deg = lvl
                st.peak_deg, st.peak_t_s, st.peak_g = lvl, t, (gx, gy, gz)
                st.trough_deg, st.trough_t_s = lvl, t
                st.peak_speed_dps = 0.0
                st.trace_t_s, st.trace_deg, st.trace_speed_dps = [], [], []
                st.still_since_s = None
            else:
                continue

        # --- inside an excursion ---
        if ps[i] > st.peak_speed_dps:
            st.peak_speed_dps = ps[i]
        if lvl > st.peak_deg:
            st.peak_deg, st.peak_t_s, st.peak_g = lvl, t, (gx, gy, gz)
            st.trough_deg = lvl
        elif lvl < st.trough_deg:
            st.trough_deg, st.trough_t_s = lvl, t
        elif (
            st.peak_deg - st.trough_deg >= max(s.min_rom_deg, s.rebase_fraction * (st.peak_deg - st.valley_deg))
            and lvl - st.trough_deg >= 0.5 * (st.peak_deg - st.trough_deg)
        ):
            # down a good part of the way and up again without getting back to where it
            # started: the rest moved (a patient settling into the start position); reps are
            # measured from the trough from now on. The swing that just ended is re-read from
            # the low point it rose from, and is a rep if it came back there.
            _reinterpret_swing(s, st, sink)
            st.valley_deg, st.rest_t_s, st.rep_start_t_s = st.trough_deg, st.trough_t_s, st.trough_t_s
            st.peak_deg, st.peak_t_s, st.peak_g, st.trough_deg = lvl, t, (gx, gy, gz), lvl
            st.peak_speed_dps = ps[i]
            st.trace_t_s, st.trace_deg, st.trace_speed_dps = [], [], []
            st.still_since_s = None
        if len(st.trace_t_s) < max_trace:
            st.trace_t_s.append(t)
            st.trace_deg.append(lvl)
            st.trace_speed_dps.append(ps[i])
        rise = st.peak_deg - st.valley_deg

        exit_level = st.valley_deg + max(s.exit_deg, s.exit_fraction * rise)
        if ang < exit_level:
            st.in_rep = False
            st.still_since_s = None
            _decide(s, st, t, rise, sink)
            st.rest_t_s, st.valley_deg = t, ang
            st.trace_t_s, st.trace_deg, st.trace_speed_dps = [], [], []
            if st.start_alt is not None and _went_elsewhere(s, st):
                # read two ways, and this excursion from the first long dwell did not go to
                # the stream's first pose: that pose is neither the rest nor the reps' top (a
                # patient who started the session while getting into position): as read
                st, _ = _settle_start(s, st, out, t, rest_is_start=False)
                sink = out
    out.angle_deg = np.array(angles, dtype=float)
    st.trace_n = len(st.trace_t_s)
    st.start_buf_n = 0 if st.start_buf is None else len(st.start_buf)
    return st, out



def _apart_deg(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    return math.degrees(math.acos(max(-1.0, min(1.0, a[0] * b[0] + a[1] * b[1] + a[2] * b[2]))))


def _went_elsewhere(s: RepSettings, st: RepState) -> bool:
    """The excursion that just ended (read from the first long dwell) went at least as far from
    it as the stream's first pose is, and peaked far from that pose (more than the two poses
    are apart): somewhere else."""
    first, dwell = st.start_alt.anchor, st.anchor
    apart = _apart_deg(first, dwell)
    if _rest_at_end(s, st):
        return False  # the leg held beyond the first long dwell: it is a hold, not the rest
    # (the poses more than two dwell cones apart: nearer, the first long dwell may be a pause
    # early in the first raise, not where the reps start — UCI s1 e5 template cut 0.5 s early)
    return apart > 2.0 * s.dwell_deg and _apart_deg(st.peak_g, dwell) >= apart and _apart_deg(st.peak_g, first) > apart


def _rest_at_end(s: RepSettings, st: RepState) -> bool:
    """While read two ways: the first long dwell lies between poses the leg stayed still at, so
    it is a hold, not the rest — the leg came back to the stream's first pose and stayed still
    there, and stayed still beyond the first long dwell (away from the first pose) by more
    than a rest shift (``rest_shift_fraction`` of the two poses' distance) and by more than
    it ever did beyond the first pose: the first pose is the nearer to an end (see
    :func:`_note_beyond`). (Never back at the first pose: it was a moment of getting into
    position, and the holds lie beyond the rest — MEx clams opening 40 deg past the first long
    dwell. As far beyond both: the rest moved about, nothing is shown — MEx 06/02 bridges with
    every tilt halved. The first pose is where the stream began, up to a moment into the
    raise — UCI s1 e3 template cut 0.1 s before it: the rest 6 deg beyond it, holds 13.)"""
    if st.anchor is None:  # (a stream that ended before its first long dwell)
        return False
    apart = _apart_deg(st.start_alt.anchor, st.anchor)
    bar = s.rest_shift_fraction * apart
    past_b, past_a = st.start_beyond
    # (the poses more than two dwell cones apart, as for _went_elsewhere: nearer, "beyond" is
    # within the tilt noise and the sway of a rest — MEx pelvic tilts, 3 deg)
    return apart > 2.0 * s.dwell_deg and past_b > max(bar, past_a) and st.start_longest[0] >= s.rest_init_s


def _note_beyond(st: RepState) -> None:
    """While the stream's start is read two ways: how far this still spell lies beyond either
    pose along the line between them (first pose A at 0, the other, B, at 1), the farthest so
    far each way. A leg rests at one place and holds at heights that vary from rep to rep, so
    the rest is at an end of the poses it stays still at, never in their middle."""
    u = _along(st, st.still_sum)
    if u is None:
        return
    apart = _apart_deg(st.start_alt.anchor, st.anchor)
    past_b, past_a = st.start_beyond
    st.start_beyond = (max(past_b, (u - 1.0) * apart), max(past_a, -u * apart))


def _along(st: RepState, g_sum: tuple[float, float, float]) -> float | None:
    """Where the pose ``g_sum`` (a sum of gravity directions) lies on the line from the stream's
    first pose (0) to the first long dwell (1); None if the two are one pose."""
    ax, ay, az = st.start_alt.anchor
    bx, by, bz = st.anchor
    px, py, pz = _unit(g_sum)
    lx, ly, lz = bx - ax, by - ay, bz - az
    d2 = lx * lx + ly * ly + lz * lz
    if d2 < 1e-12:
        return None
    return ((px - ax) * lx + (py - ay) * ly + (pz - az) * lz) / d2


def _rest_shown(s: RepSettings, st: RepState) -> bool | None:
    """A still spell longer than any hold, while the stream's start is read two ways: True if
    it is at the stream's brief first pose (the rest), False if at the first long dwell, None
    if elsewhere (nothing shown)."""
    mx, my, mz = _unit(st.still_sum)
    ax, ay, az = st.start_alt.anchor  # the stream's first pose
    bx, by, bz = st.anchor  # the first long dwell (or wherever this reading's rest moved)
    to_a, to_b = mx * ax + my * ay + mz * az, mx * bx + my * by + mz * bz
    # nearer it than half the way between them (or than the dwell cone, if they are that close:
    # near both, the two poses are one, and the reading from the stream's start sees more)
    near = math.cos(math.radians(max(s.dwell_deg, 0.5 * _apart_deg(st.start_alt.anchor, st.anchor))))
    if to_a >= near and (to_a > to_b or to_b >= near):
        return True
    if to_b >= near:
        return False
    return None


def _settle_start(
    s: RepSettings, st: RepState, out: RepOutput, t: float, rest_is_start: bool,
    anchor: tuple[float, float, float] | None = None,
) -> tuple[RepState, float]:
    """Ends the wait between the two readings of a stream's start: lets out what the right one
    found (decided now), and goes on from its state. With the first pose as the rest, that
    reading runs over the samples kept since (the last one is this one): its angle there.
    ``anchor``: that reading's rest (default: the still spell that just showed it)."""
    held, buf, alt = st.start_held, st.start_buf, st.start_alt
    angle = math.nan
    if rest_is_start:
        # the rest is where the leg has just stayed still longest, not the brief first pose
        # (a moment of the raise may be in that one)
        alt = replace(alt, anchor=_unit(st.still_sum) if anchor is None else anchor)
        b = np.array(buf, dtype=float).reshape(-1, 6)
        st, redo = segment_reps_step(s, alt, b[:, 0], b[:, 1:4], b[:, 4], b[:, 5])
        out.rests.append(RestEvent(buf[0], alt.anchor, RestReason.INITIAL))
        held, angle = redo, float(redo.angle_deg[-1])
        out.revised_t_s, out.revised_angle_deg = b[:, 0], redo.angle_deg
    else:
        st.start_alt = st.start_buf = st.start_held = None
        st.start_buf_n = 0
    out.rests.extend(held.rests)
    out.reps.extend(replace(r, decided_t_s=t) for r in held.reps)
    return st, angle


def _decide(s: RepSettings, st: RepState, t: float, rise: float, out: RepOutput) -> None:
    """An excursion that rose ``rise`` from ``st.valley_deg`` since ``st.rep_start_t_s`` is back at
    ``t``: is it a rep? (it may also wait for one of its size, see the module doc)"""
    # a leg landing on the mat rebounds at once and less high: a bounce is told by
    # its shape (right after a rep, smaller than it), not by its duration alone
    # ... and a twitch by being both quick and small next to the set's reps
    bounce = (
        st.last_rep_end_t_s is not None
        and st.rep_start_t_s - st.last_rep_end_t_s < s.bounce_gap_s
        and rise < s.bounce_fraction * st.last_rep_rise_deg
    ) or (t - st.rep_start_t_s < s.twitch_s and rise < s.bounce_fraction * st.amp_deg)
    # an excursion already more than half-way up on the stream's first sample: its raise was
    # not seen (a recording that starts inside a rep), as one that ends less than half-way
    # down is not back
    partial = st.rep_start_t_s == st.first_t_s and st.entry_deg - st.valley_deg >= 0.5 * rise
    if rise >= s.min_rom_deg and not bounce and not partial and s.min_rep_s <= t - st.rep_start_t_s <= s.max_rep_s:
        ev = _rep_event(s, st, t, rise)
        pending, st.pending = st.pending, None
        earlier, st.pending_before = st.pending_before, None
        big_enough = st.counted or rise >= s.first_rep_min_deg
        alike = pending is not None and (
            _alike(rise, pending.rise_deg, s.similar_ratio) or _alike(ev.rom_deg, pending.rom_deg, s.similar_ratio))
        if alike and not big_enough:
            # below the first-rep bar: a patient whose reps are all small (reduced range: with
            # every tilt halved, MEx bridges of 2.6-3.7 deg never reached the catalogue's 5 deg
            # bar and whole sets counted 0), or shuffling into position? Repetition tells: a
            # third excursion of the same size. Two alike are not enough (MEx superman: two
            # small moves getting onto all fours, 3 files)
            if earlier is not None and (_alike(rise, earlier.rise_deg, s.similar_ratio)
                                        or _alike(ev.rom_deg, earlier.rom_deg, s.similar_ratio)):
                counted = [earlier, pending, ev]
            else:
                counted = []
                st.pending_before, st.pending = pending, ev
        elif alike and big_enough:
            # two small excursions of a size: a set of small reps (a first low-range
            # rep after full ones, or a patient whose reps are small), not a shuffle. Of a
            # size: rising alike from their own starts, or reaching alike heights from rest —
            # small reps made without lowering the leg all the way between them start from
            # wherever it stopped (2-9 deg up on UCI s2 e5), so their rises vary while the
            # height they reach does not
            counted = [pending, ev]
        elif rise >= s.count_amp_fraction * st.amp_deg and big_enough:
            counted = [ev]
        else:
            counted = []
            st.pending = ev  # small next to the set's reps: waits for one of its size
        for rep in counted:
            _count(s, st, rep, out)


def _alike(a: float, b: float, ratio: float) -> bool:
    return max(a, b) <= ratio * min(a, b)


def _count(s: RepSettings, st: RepState, rep: RepEvent, out: RepOutput) -> None:
    """A rep. The posture's first waits (``st.first``) for the second: both count if they go
    the same way; if not, the first was getting into position and the second is the first.
    While it waits, the reps after it are judged against it as against any counted rep."""
    first = st.first
    if first is not None:
        st.first = None
        fx, fy, fz = first.direction_sf
        rx, ry, rz = rep.direction_sf
        if fx * rx + fy * ry + fz * rz >= s.same_way_cos:
            out.reps.append(replace(first, decided_t_s=st.t_s))
        else:
            st.counted, st.amp_deg = False, s.reference_rise_deg
    if not st.counted and s.signed and rep.rise_deg < s.first_rep_sure_deg:
        st.first = rep
    else:
        out.reps.append(replace(rep, decided_t_s=st.t_s))
    st.counted = True
    st.last_rep_end_t_s, st.last_rep_rise_deg = rep.end_t_s, rep.rise_deg
    # the amplitude follows the reps, so a bar set too high by one big rep
    # comes down as smaller reps are confirmed; wobbles and shuffles that do
    # not count do not drag it down
    r = rep.rise_deg
    st.amp_deg = r if st.amp_deg == 0.0 else st.amp_deg + s.amp_smoothing * (r - st.amp_deg)


def _reinterpret_swing(s: RepSettings, st: RepState, out: RepOutput) -> None:
    """The swing up to the peak and down to the trough, measured from where its rise began
    (walking back from the peak while the trace keeps falling: 0.1 degree per 0.2 s)."""
    ts, ls = st.trace_t_s, st.trace_deg
    # from where the swing reached the top (the start of any hold there), back down its rise
    top = st.peak_deg - max(s.hold_band_deg, s.hold_band_fraction * (st.peak_deg - st.trough_deg))
    k = next((j for j in range(len(ls)) if ls[j] >= top and ts[j] <= st.peak_t_s), None)
    if k is None:
        return
    while True:  # back in 0.2 s steps while the elevation was still clearly lower
        j = k
        while j > 0 and ts[k] - ts[j] < 0.2:
            j -= 1
        if j == k or ls[j] > ls[k] - 0.1:
            k = min(range(j, k + 1), key=ls.__getitem__)  # the lowest sample of that last step
            break
        k = j
    low = ls[k]
    rise = st.peak_deg - low
    if k == 0 or rise < s.min_rom_deg or st.trough_deg > low + s.exit_fraction * rise:
        return  # no low point inside the excursion, or it did not come back to it
    q = max(j for j in range(len(ts)) if ts[j] <= st.trough_t_s)
    st.valley_deg, st.rep_start_t_s = low, ts[k]
    st.trace_t_s, st.trace_deg, st.trace_speed_dps = ts[k:q + 1], ls[k:q + 1], st.trace_speed_dps[k:q + 1]
    _decide(s, st, st.trough_t_s, rise, out)


def _learn_direction(s: RepSettings, st: RepState, vx: float, vy: float, vz: float, dt: float) -> bool:
    """One step of the working direction: the principal axis of the displacements from rest
    (a decaying second-moment matrix and one power-iteration step), pointing the way the
    displacements go on average — reps leave rest one way, so "up" is where the thigh goes."""
    if vx * vx + vy * vy + vz * vz <= math.radians(s.dir_min_deg) ** 2:
        return False
    k = min(1.0, dt / s.dir_tau_s)
    c = 1.0 - k
    mxx, mxy, mxz, myy, myz, mzz = st.mom
    mxx, mxy, mxz = c * mxx + k * vx * vx, c * mxy + k * vx * vy, c * mxz + k * vx * vz
    myy, myz, mzz = c * myy + k * vy * vy, c * myz + k * vy * vz, c * mzz + k * vz * vz
    st.mom = (mxx, mxy, mxz, myy, myz, mzz)
    sx, sy, sz = st.vsum
    sx, sy, sz = c * sx + k * vx, c * sy + k * vy, c * sz + k * vz
    st.vsum = (sx, sy, sz)
    w = st.work_dir if st.work_dir is not None else _unit(st.vsum)
    nw = _unit((mxx * w[0] + mxy * w[1] + mxz * w[2], mxy * w[0] + myy * w[1] + myz * w[2],
                mxz * w[0] + myz * w[1] + mzz * w[2]))
    if nw[0] * sx + nw[1] * sy + nw[2] * sz < 0:
        nw = (-nw[0], -nw[1], -nw[2])
    if nw == (0.0, 0.0, 0.0):
        return False
    old = st.work_dir
    st.work_dir = nw
    # turned over (the first moves were the other way): elevations so far have the wrong sign
    return old is not None and old[0] * nw[0] + old[1] * nw[1] + old[2] * nw[2] < 0.0


def _hold(s: RepSettings, st: RepState, rise: float) -> tuple[float, float] | None:
    """The hold: from when the elevation first came within the band below the rep's own peak
    to when it last was, read off the excursion's trace at its end. Decided after the fact,
    so neither filter lag nor an accelerometer that settles slowly after a fast raise (its tilt
    overshoots with the lever arm's acceleration) breaks it into pieces."""
    bar = st.peak_deg - max(s.hold_band_deg, s.hold_band_fraction * rise)
    ts, ls = st.trace_t_s, st.trace_deg
    n = len(ls)
    rate = s.hold_rate_dps

    def slow(k: int) -> bool:  # the thigh barely turning (the gyroscope, if there is one)
        return ws[k] < rate

    ws = st.trace_speed_dps

    first = next((k for k in range(n) if ls[k] >= bar and slow(k)), None)
    if first is None:
        return None
    last = next(k for k in range(n - 1, -1, -1) if ls[k] >= bar and slow(k))
    return (ts[first], ts[last]) if last > first else None


def _rep_event(s: RepSettings, st: RepState, t_end: float, rise: float) -> RepEvent:
    ax, ay, az = st.anchor
    px, py, pz = st.peak_g
    hold = _hold(s, st, rise)
    return RepEvent(
        start_t_s=st.rep_start_t_s,
        end_t_s=t_end,
        peak_t_s=st.peak_t_s,
        rom_deg=st.peak_deg,
        hold_s=0.0 if hold is None else hold[1] - hold[0],
        hold_start_t_s=None if hold is None else hold[0],
        hold_end_t_s=None if hold is None else hold[1],
        peak_speed_dps=st.peak_speed_dps,
        direction_sf=_unit((px - ax, py - ay, pz - az)),
        rise_deg=rise,
    )


def _unit(v: tuple[float, float, float]) -> tuple[float, float, float]:
    x, y, z = v
    n = math.sqrt(x * x + y * y + z * z)
    if n < 1e-12:
        return (0.0, 0.0, 0.0)
    return (x / n, y / n, z / n)


def segment_reps_flush(settings: RepSettings, state: RepState) -> RepOutput:
    """End of stream: an excursion still open never returned to rest, so it is not a rep; a
    first rep still waiting for a second is a set of one."""
    out = RepOutput()
    if state.start_held is not None:
        # never shown by a still spell longer than any hold: the rest is the pose the leg
        # stayed still at longest (the rests between a template's groups of reps outlast its
        # holds; a file that starts inside a bridge rests longer than it bridges)
        a_s, a_sum, b_s = state.start_longest
        e_s, e_sum = state.start_elsewhere
        # (neither pose: the first long dwell was a pause while getting into position, and
        # the leg went on between two other poses — MEx bridges played 40 % slower, 9 -> 14)
        # (a rest elsewhere must be still as long as any rest anchor is: rest_init_s)
        at_end = _rest_at_end(settings, state)
        elsewhere = e_s >= settings.rest_init_s and e_s > settings.still_longer * max(a_s, b_s)
        if elsewhere and at_end:
            # ... unless that is a hold beyond the first long dwell, which the rest at an end
            # says it is (7 s holds past a first hold, 4 s rests); beyond the first pose it is
            # the rest's end itself (UCI s1 e3 template cut at its first raise's onset: the
            # first pose a moment up the raise, the rest 7 deg below it)
            u = _along(state, e_sum)
            elsewhere = u is not None and u < 0.0
        # the rest is at an end of the poses the leg stayed still at: back at the first pose,
        # and held beyond the first long dwell (reps of another height), the first long dwell
        # was a hold (UCI templates: blocks of 10-27 deg cut to start 0.25 s early); else the
        # longer stay decides
        first_is_rest = at_end or a_s > settings.still_longer * b_s
        if elsewhere or first_is_rest:
            anchor = _unit(e_sum) if elsewhere else _unit(a_sum)
            st, _ = _settle_start(settings, state, out, state.t_s, True, anchor=anchor)
            tail = segment_reps_flush(settings, st)
            out.reps.extend(tail.reps)
            out.rests.extend(tail.rests)
            return out
        out.rests.extend(state.start_held.rests)
        out.reps.extend(replace(r, decided_t_s=state.t_s) for r in state.start_held.reps)
    if state.first is not None:
        out.reps.append(replace(state.first, decided_t_s=state.t_s))
    return out


def segment_reps(
    settings: RepSettings,
    t_s: np.ndarray,
    g: np.ndarray,
    speed_dps: np.ndarray,
    peak_speed_dps: np.ndarray | None = None,
) -> RepOutput:
    """Batch form: init, one step over everything, flush."""
    st, out = segment_reps_step(settings, segment_reps_init(settings), t_s, g, speed_dps, peak_speed_dps)
    tail = segment_reps_flush(settings, st)
    out.reps += tail.reps
    out.rests += tail.rests
    return out
