"""An independent reference for UCI holds and rises, from the raw thigh gyroscope (offline).

docs/evaluation.md ("hold error"): people do not hold what a protocol asks, so a counter's
holds are judged against what the signal shows, computed here with offline tools the live
counter cannot use (zero-phase filtering, the whole recording at once) and sharing none of its
code. For each rep, the hold is the time between the end of the raise and the start of the
lowering, where raise and lowering are the two lobes of the thigh gyroscope's main axis and a
lobe has "ended" when the rate is below :data:`ENDED_DPS` (15 °/s).

Steps (every constant says where it comes from):

1. the gyroscope, zero-phase low-passed (4th-order Butterworth, :data:`LOWPASS_HZ`: limb
   movements of these exercises are below 2 Hz; tremor and strap vibration above), projected
   on its main axis (first right-singular vector of the whole recording: the hinge the reps turn
   about);
2. **lobes**: runs of one sign where the rate exceeds :data:`DETECT_DPS`; runs of the same
   sign less than :data:`CHAIN_GAP_S` apart are one lobe. A lobe begins and ends where its
   rate crosses 15 °/s (evaluation.md's "ended"); a slow lobe that never reaches 15 °/s — a
   ~10° seated raise, a lowering that peaks at 14.9 °/s — crosses half its own peak instead,
   rather than vanish and merge two reps into one. A lobe's angle is the rate integrated over
   it, extended to where the thigh is quiet (:data:`QUIET_DPS`) or the rate turns;
3. lobes under :data:`MIN_FRACTION` of the recording's median lobe cannot start a rep (a
   shuffle at rest is not a raise);
4. **which sign raises**: UCI's thigh unit has its x axis along the thigh, pointing to the
   knee (the cable enters along +x; shared/datasets/uci-pt/sensor_placement.png), and in all
   four UCI exercises the raise lifts the knee: the sign whose movements increase the
   accelerometer's x share of gravity is "raise" (a vote over all movements);
5. **reps**: a raise leaves rest; further raise-direction lobes within :data:`CHAIN_GAP_S`
   continue it (it went up in steps), and so does an opposite lobe within that gap that leaves
   the knee up (a fast raise overshoots and settles back without a pause); the lowering is the
   first opposite lobe that brings the long axis' elevation at least half-way back to where
   the rep started (:data:`LOWER_FRACTION`); smaller opposite lobes later are sags during the
   hold;
6. **blocks** (correct / too fast / low amplitude) by order when exactly 30 reps are found,
   otherwise at the two longest rests between reps (evaluation.md's rule).

A rep's **rise** is its raise's angle in degrees, for the low-amplitude figure. A movement
slower than :data:`DETECT_DPS` is not found: the reference says nothing about it rather than
guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, sosfiltfilt

ENDED_DPS = 15.0  # docs/evaluation.md's definition of a lobe that has ended
LOWPASS_HZ = 2.0
QUIET_DPS = 3.0  # a still thigh: the low-passed gyroscope's noise and drift stay below this
# A lobe is where the rate exceeds this: above a held leg's sag and tremor (a 70° straight-leg
# raise held for seconds drifts at up to ~5 °/s), below the peak of the slowest raise (~10 °/s).
DETECT_DPS = 8.0
CHAIN_GAP_S = 0.5  # a movement that pauses for less than this is one movement; a hold lasts longer
MIN_FRACTION = 0.25  # of the median lobe: smaller lobes are adjustments, not raises
LOWER_FRACTION = 0.5  # a lowering brings the knee at least half-way back down
THIGH_AXIS_TO_KNEE = 0  # UCI u3: sensor x points along the thigh to the knee


@dataclass(frozen=True)
class ReferenceRep:
    raise_start_s: float
    raise_end_s: float
    lower_start_s: float
    lower_end_s: float
    rise_deg: float

    @property
    def hold_s(self) -> float:
        return self.lower_start_s - self.raise_end_s

    @property
    def start_s(self) -> float:
        return self.raise_start_s

    @property
    def end_s(self) -> float:
        return self.lower_end_s


@dataclass(frozen=True)
class _Movement:
    start: int  # first sample at ≥ 15 °/s
    end: int  # last sample at ≥ 15 °/s
    angle_deg: float  # signed, along the main axis
    elev_before_deg: float  # the long axis' elevation where the movement began
    elev_after_deg: float  # ... and where it ended

    @property
    def lift_deg(self) -> float:
        return self.elev_after_deg - self.elev_before_deg


def reference_reps(t_s: np.ndarray, acc_ms2: np.ndarray, gyr_rad_s: np.ndarray,
                   rate_hz: float) -> list[ReferenceRep]:
    """Every rep the gyroscope's lobes show in one UCI recording, in time order."""
    if len(t_s) < 4 * rate_hz:
        return []
    sos = butter(4, LOWPASS_HZ, fs=rate_hz, output="sos")
    gyr = np.degrees(sosfiltfilt(sos, np.asarray(gyr_rad_s, dtype=float), axis=0))
    axis = np.linalg.svd(gyr, full_matrices=False)[2][0]
    rate = gyr @ axis
    acc = sosfiltfilt(sos, np.asarray(acc_ms2, dtype=float), axis=0)
    elevation = np.degrees(np.arcsin(np.clip(acc[:, THIGH_AXIS_TO_KNEE] / np.linalg.norm(acc, axis=1), -1, 1)))

    lobes = _lobes(rate, elevation, rate_hz)
    if not lobes:
        return []
    typical = float(np.median([abs(m.angle_deg) for m in lobes]))
    votes = sum(np.sign(m.angle_deg) * m.lift_deg for m in lobes if abs(m.angle_deg) >= MIN_FRACTION * typical)
    raise_sign = 1.0 if votes >= 0 else -1.0

    reps: list[ReferenceRep] = []
    raise_start = raise_end = None  # the rep in progress: None while at rest
    rise = rest_elev = peak_elev = 0.0
    for m in lobes:
        up = np.sign(m.angle_deg) == raise_sign
        size = abs(m.angle_deg)
        t0, t1 = float(t_s[m.start]), float(t_s[m.end])
        if raise_start is None:
            if up and size >= MIN_FRACTION * typical:  # a raise leaves rest
                raise_start, raise_end, rise = t0, t1, size
                rest_elev, peak_elev = m.elev_before_deg, m.elev_after_deg
            continue  # at rest, anything else is an adjustment (or the recording started up)
        follows = t0 - raise_end <= CHAIN_GAP_S
        if up:
            peak_elev = max(peak_elev, m.elev_after_deg)
            if follows:  # the raise went on in a second step
                raise_end, rise = t1, rise + size
        elif m.elev_after_deg - rest_elev <= LOWER_FRACTION * (peak_elev - rest_elev):
            # the knee came most of the way back down: the lowering
            reps.append(ReferenceRep(raise_start, raise_end, t0, t1, rise))
            raise_start = raise_end = None
        elif follows:  # the overshoot settling back, without a pause: still the raise
            raise_end = t1
        # else a sag during the hold: the hold goes on
    return reps


def _lobes(rate: np.ndarray, elevation: np.ndarray, rate_hz: float) -> list[_Movement]:
    """The lobes of the main-axis rate: runs of one sign at or above :data:`DETECT_DPS` (runs
    of the same sign less than :data:`CHAIN_GAP_S` apart are one lobe: a movement whose speed
    dips briefly). A lobe starts and ends where its rate crosses 15 °/s — or half its peak, for
    a slow lobe that never reaches 15 °/s. Its angle and the elevation change are taken over
    the lobe extended to where the thigh is quiet (or the rate turns the other way)."""
    sign = np.sign(rate) * (np.abs(rate) >= DETECT_DPS)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], sign, [0]))))
    runs = [(int(a), int(b) - 1) for a, b in zip(edges[:-1], edges[1:]) if sign[a] != 0]
    gap = int(round(CHAIN_GAP_S * rate_hz))
    joined: list[list[int]] = []
    for a, b in runs:
        if joined and sign[a] == sign[joined[-1][0]] and a - joined[-1][1] <= gap:
            joined[-1][1] = b
        else:
            joined.append([a, b])
    quiet = np.abs(rate) < QUIET_DPS
    out = []
    for a, b in joined:
        direction = sign[a]
        lo, hi = a, b
        while lo > 0 and not quiet[lo - 1] and np.sign(rate[lo - 1]) == direction:
            lo -= 1
        while hi < len(rate) - 1 and not quiet[hi + 1] and np.sign(rate[hi + 1]) == direction:
            hi += 1
        speed = np.abs(rate[lo : hi + 1])
        above = np.flatnonzero(speed >= min(ENDED_DPS, 0.5 * float(speed.max())))
        angle = float(np.sum(rate[lo : hi + 1]) / rate_hz)
        out.append(_Movement(lo + int(above[0]), lo + int(above[-1]), angle,
                             float(elevation[lo]), float(elevation[hi])))
    return out


def split_reference_blocks(reps: list[ReferenceRep]) -> list[list[ReferenceRep]]:
    """Correct / too fast / low amplitude: by order when 30 reps, else at the two longest rests."""
    if len(reps) == 30:
        return [reps[0:10], reps[10:20], reps[20:30]]
    if len(reps) < 3:
        return [reps, [], []]
    rests = [(reps[i + 1].start_s - reps[i].end_s, i) for i in range(len(reps) - 1)]
    cut = sorted(i for _, i in sorted(rests, reverse=True)[:2])
    return [reps[: cut[0] + 1], reps[cut[0] + 1 : cut[1] + 1], reps[cut[1] + 1 :]]
