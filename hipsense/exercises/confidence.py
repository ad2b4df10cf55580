"""How much a set's count can be trusted, from the signal the counter saw.

A thigh sensor does not see every exercise in every person: a bottom-leg clam barely moves the
sensor thigh, a pelvic tilt made with the back alone leaves the thighs still, and a counter
fed such a recording will still find *something* in the drift and sway. A count is only worth
showing as a number when the counted reps look like a repeated movement, so the confidence is
the weakest of four properties, each scored 0…1:

* **detectability** — the reps stand above the signal between them. Noise floor σ = the
  robust spread (1.4826 × median absolute deviation, the Gaussian-consistent estimate) of the
  counter's own angle in each gap between consecutive counted reps, median over the gaps: the
  sway, drift and sensor noise of "at rest". Only the gap's *still* samples count (the angle
  changing slower than ``STILL_DPS``): a gap runs from a rep's end, half-way down, to the next
  one's start, so it holds the lower half of every lowering, and where the reps follow each
  other without a pause (knee rolling from side to side) that movement was most of the gap and
  was taken for noise — 4 of 8 clear MEx side-to-side files, counted exactly, read "not sure".
  A set with no still moment between any two of its reps falls back to the whole gaps. Signal = the lower quartile of the counted reps'
  range of motion (most reps, not just the best ones, must be visible). Score 0 at a ratio of
  3 (three σ: noise alone reaches that), 1 at a ratio of 10 (a rep ten times the rest
  fluctuation cannot be noise), linear between.
* **amplitude consistency** — the reps of one set are alike: robust coefficient of variation
  (inter-quartile range / median) of the range of motion; score 1 at 0, 0 at 0.6 (the
  quartiles then differ by more than half the typical rep: a mixture of reps and wobbles).
* **tempo consistency** — a set is done at a steady pace: robust coefficient of variation of
  the intervals between consecutive rep starts, same scale (0 → 1, 0.6 → 0).

* **size** — the reps are bigger than the smallest rep the counter accepts at all (its
  ``min_rom_deg``): a set whose lower-quartile rep is at that bar is made of reps the counter
  can barely tell from a leg settling, however regular they look (a thigh that "shows" a
  bottom-leg clam as half-degree humps). Score 0 at the bar, 1 at twice it. Skipped when the
  caller does not give the bar.

For exercises whose reps alternate sides (side to side), amplitude and tempo are judged on
every other rep, so that a bigger roll to one side than to the other is not "irregular".

Fewer than three reps cannot show a pattern: confidence 0 ("nothing trustworthy counted").
The scales are fixed by the reasoning above, not fitted to a data set; on MEx (subjects
01–10) every file whose reps the thigh does not show scores below :data:`CONFIDENT` and
the clear files mostly above it — docs/accuracy.md has the figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

#: a count at or above this confidence is shown as a number; below it, as "not sure"
CONFIDENT = 0.5
#: the noise-floor multiples at which detectability scores 0 and 1 (see the module docstring)
SNR_NOISE = 3.0
SNR_CLEAR = 10.0
#: robust coefficient of variation at which a consistency score reaches 0
CV_IRREGULAR = 0.6
MIN_REPS = 3
#: a thigh turning slower than this is still (the rep kernel's ``rest_still_dps``), judged over
#: ``STILL_OVER_S`` so that a sample's noise is not a movement
STILL_DPS = 8.0
STILL_OVER_S = 0.2
#: the rest noise of a gap between two reps is judged on at most its last 30 s (plenty to see the
#: sway; a longer rest ends the set anyway), so a streaming tracker keeps a bounded trace and
#: gives what one batch gives
GAP_WINDOW_S = 30.0


class GapSpread(NamedTuple):
    """The angle's spread between two reps (degrees): over its still samples, and over all of
    it (None: fewer than five samples to judge)."""

    still_deg: float | None
    all_deg: float | None


@dataclass(frozen=True)
class CountConfidence:
    confidence: float  # 0…1, the weakest of the scores
    detectability: float
    amplitude_consistency: float
    tempo_consistency: float
    size: float
    snr: float | None  # lower-quartile ROM / rest noise floor
    noise_deg: float | None  # the rest noise floor σ (degrees)

    @property
    def confident(self) -> bool:
        return self.confidence >= CONFIDENT

    def to_dict(self) -> dict[str, float | None]:
        return {
            "confidence": _r(self.confidence),
            "detectability": _r(self.detectability),
            "amplitude_consistency": _r(self.amplitude_consistency),
            "tempo_consistency": _r(self.tempo_consistency),
            "size": _r(self.size),
            "snr": _r(self.snr),
            "noise_deg": _r(self.noise_deg),
        }


NOTHING = CountConfidence(0.0, 0.0, 0.0, 0.0, 0.0, None, None)


def count_confidence(
    starts_s: Sequence[float],
    ends_s: Sequence[float],
    roms_deg: Sequence[float],
    t_s: np.ndarray,
    angle_deg: np.ndarray,
    *,
    alternating: bool = False,
    min_rom_deg: float | None = None,
) -> CountConfidence:
    """Confidence of one set's count.

    ``starts_s``/``ends_s``/``roms_deg`` describe the counted reps in time order;
    ``t_s``/``angle_deg`` are the counter's angle (its elevation from rest) over the set.
    ``alternating``: reps alternate sides, so consistency is judged on every other rep.
    ``min_rom_deg``: the counter's smallest accepted rep, for the size score.
    """
    starts = np.asarray(starts_s, dtype=float)
    ends = np.asarray(ends_s, dtype=float)
    t = np.asarray(t_s, dtype=float)
    angle = np.asarray(angle_deg, dtype=float)
    spreads = [gap_spread(t, angle, end, nxt) for end, nxt in zip(ends[:-1], starts[1:])]
    return confidence_from_parts(starts_s, roms_deg, spreads, alternating=alternating, min_rom_deg=min_rom_deg)


def confidence_from_parts(
    starts_s: Sequence[float],
    roms_deg: Sequence[float],
    gap_spreads_deg: Sequence[GapSpread | float | None],
    *,
    alternating: bool = False,
    min_rom_deg: float | None = None,
) -> CountConfidence:
    """The confidence from the reps and the spread of the angle in each gap between them
    (:func:`gap_spread`): what a streaming tracker keeps of a set, rep by rep. (A plain number
    is a gap's spread over all of it.)"""
    n = len(roms_deg)
    if n < MIN_REPS:
        return NOTHING
    starts = np.asarray(starts_s, dtype=float)
    roms = np.asarray(roms_deg, dtype=float)
    gaps = [g if isinstance(g, GapSpread) else GapSpread(None, g) for g in gap_spreads_deg if g is not None]
    spreads = [g.still_deg for g in gaps if g.still_deg is not None]
    if not spreads:  # no still moment between any two reps: the whole gaps
        spreads = [g.all_deg for g in gaps if g.all_deg is not None]
    noise = float(np.median(spreads)) if spreads else None
    signal = float(np.percentile(roms, 25))
    snr = None if noise is None else signal / max(noise, 1e-6)
    detect = 0.0 if snr is None else _ramp(snr, SNR_NOISE, SNR_CLEAR)

    groups_rom = [roms[0::2], roms[1::2]] if alternating else [roms]
    groups_start = [starts[0::2], starts[1::2]] if alternating else [starts]
    amp = min(_consistency(g) for g in groups_rom)
    tempo = min(_consistency(np.diff(g)) for g in groups_start)
    size = 1.0 if min_rom_deg is None else _ramp(signal, min_rom_deg, 2.0 * min_rom_deg)
    return CountConfidence(min(detect, amp, tempo, size), detect, amp, tempo, size, snr, noise)


def gap_spread(t_s: np.ndarray, angle_deg: np.ndarray, after_s: float, before_s: float) -> GapSpread:
    """1.4826 × MAD of the angle between one rep's end and the next one's start, over at most the
    gap's last ``GAP_WINDOW_S``: over the samples where the angle changed slower than
    ``STILL_DPS`` in the ``STILL_OVER_S`` before them, and over all (each None: fewer than five
    samples, too few to give a spread)."""
    after_s = max(after_s, before_s - GAP_WINDOW_S)
    lo, hi = np.searchsorted(t_s, [after_s, before_s], side="right")
    t, gap = t_s[lo:hi], angle_deg[lo:hi]
    keep = np.isfinite(gap)
    t, gap = t[keep], gap[keep]
    if len(gap) < 5:
        return GapSpread(None, None)
    back = np.searchsorted(t, t - STILL_OVER_S)  # the sample STILL_OVER_S before each (or the gap's first)
    span = t - t[back]
    still = gap[(span >= 0.5 * STILL_OVER_S) & (np.abs(gap - gap[back]) < STILL_DPS * np.maximum(span, 1e-9))]
    return GapSpread(_mad(still) if len(still) >= 5 else None, _mad(gap))


def _mad(x: np.ndarray) -> float:
    return 1.4826 * float(np.median(np.abs(x - np.median(x))))


def _consistency(values: np.ndarray) -> float:
    """1 − (IQR / median) / CV_IRREGULAR, clipped to 0…1; too few values: 1 (no evidence)."""
    if len(values) < 2:
        return 1.0
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    if med <= 0:
        return 0.0
    return 1.0 - _ramp((q3 - q1) / med, 0.0, CV_IRREGULAR)


def _ramp(x: float, lo: float, hi: float) -> float:
    return float(min(1.0, max(0.0, (x - lo) / (hi - lo))))


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)
