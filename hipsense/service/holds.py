"""Timing an exercise the thigh cannot count: how long the thigh stays still in one position.

An exercise whose measure is ``timed`` (press-ups: the thigh barely moves), prescribed as
timed (``reps = null``), is timed, not counted. A thigh sensor sees stillness, not the exercise
itself, so a hold is "still for a while, then moving again"; the exercise's ``cannot_see``
text says as much to the patient. Stretches are not timed here: the tracker counts their holds
as excursions from rest. Thresholds are in sample time.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["HoldResult", "HoldTimer"]


@dataclasses.dataclass(frozen=True, slots=True)
class HoldResult:
    start_t_s: float
    end_t_s: float
    mean_angle_deg: float

    @property
    def hold_s(self) -> float:
        return self.end_t_s - self.start_t_s


class HoldTimer:
    """Streaming hold detector on (t_s, angle_deg, speed_dps) from the thigh pipeline.

    A hold starts once the thigh has been slower than ``still_dps`` for ``settle_s`` (counted
    from the start of the stillness) and ends when it has been faster than ``move_dps`` for
    ``release_s``; holds shorter than ``min_hold_s`` are ignored (fidgeting, not stretching).
    """

    def __init__(self, *, still_dps: float = 8.0, move_dps: float = 20.0, settle_s: float = 1.0,
                 release_s: float = 0.5, min_hold_s: float = 3.0) -> None:
        self.still_dps, self.move_dps = still_dps, move_dps
        self.settle_s, self.release_s, self.min_hold_s = settle_s, release_s, min_hold_s
        self._still_since: float | None = None
        self._moving_since: float | None = None
        self._angle_sum = 0.0
        self._angle_n = 0
        self.holding = False

    def push(self, t_s: np.ndarray, angle_deg: np.ndarray, speed_dps: np.ndarray) -> list[HoldResult]:
        return self.step(t_s, angle_deg, speed_dps)[0]

    def step(self, t_s: np.ndarray, angle_deg: np.ndarray,
             speed_dps: np.ndarray) -> tuple[list[HoldResult], np.ndarray]:
        """The holds that ended in this chunk, and on every sample the start of the hold in
        progress (NaN when not holding): what the countdown kernel counts from."""
        out: list[HoldResult] = []
        starts = np.full(len(t_s), np.nan)
        for i, (t, angle, speed) in enumerate(zip(t_s.tolist(), angle_deg.tolist(), np.abs(speed_dps).tolist())):
            if speed < self.still_dps:
                self._moving_since = None
                if self._still_since is None:
                    self._still_since, self._angle_sum, self._angle_n = t, 0.0, 0
                self._angle_sum += angle
                self._angle_n += 1
                if not self.holding and t - self._still_since >= self.settle_s:
                    self.holding = True
            elif speed > self.move_dps:
                if self._moving_since is None:
                    self._moving_since = t
                if t - self._moving_since >= self.release_s:
                    done = self._finish(self._moving_since)
                    if done is not None:
                        out.append(done)
            if self.holding and self._moving_since is None:
                starts[i] = self._still_since
        return out, starts

    def flush(self, t_end_s: float) -> HoldResult | None:
        return self._finish(t_end_s)

    def _finish(self, end_t_s: float) -> HoldResult | None:
        start, holding = self._still_since, self.holding
        self._still_since, self.holding = None, False
        if not holding or start is None or end_t_s - start < self.min_hold_s:
            return None
        return HoldResult(start, end_t_s, self._angle_sum / max(self._angle_n, 1))
