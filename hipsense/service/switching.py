"""Noticing that the patient does another exercise than the one the plan expects.

Every ``hop_s`` of sample time the last ``window_s`` of accelerometer data go through
:func:`hipsense.exercises.recognition.recognise`. Only a run of ``agree`` consecutive,
confident answers naming the same other exercise proposes a switch: one odd window (a
patient adjusting the strap) must not throw away a tracker mid-set.

The recogniser knows a handful of exercises (its model's classes). When the expected exercise
is not one of them, its answers cannot be compared with the plan, so nothing is proposed and
the plan is followed as written, and the recogniser is never loaded. (It is numpy only since
issue 14, a few hundred kB; it used to import scipy.signal, about 80 MB resident.)
"""

from __future__ import annotations

import collections

import numpy as np

from hipsense.exercises.recognition_window import HOP_S, WINDOW_S, model_classes

__all__ = ["ExerciseSwitcher", "model_classes"]


class ExerciseSwitcher:
    """Sliding-window recognition over one sensor's stream."""

    def __init__(self, *, min_confidence: float = 0.8, agree: int = 2,
                 window_s: float = WINDOW_S, hop_s: float = HOP_S) -> None:
        self.min_confidence = min_confidence
        self.agree = agree
        self.window_s, self.hop_s = window_s, hop_s
        self.known = model_classes()
        self.known_sorted = sorted(self.known)  # the usual candidates: all of them
        self._chunks: collections.deque[tuple[np.ndarray, np.ndarray]] = collections.deque()
        self._next_at: float | None = None
        self._run: list[str] = []
        self.last_answer: str | None = None
        self.evaluations = 0  # windows recognised so far (last_answer is the newest)

    def reset(self) -> None:
        self._chunks.clear()
        self._next_at = None
        self._run = []

    def push(self, t_s: np.ndarray, acc_ms2: np.ndarray, *, expected: str | None,
             candidates: list[str]) -> str | None:
        """Add samples; return an exercise id to switch to, or None to stay."""
        if len(t_s) == 0:
            return None
        self._chunks.append((t_s, acc_ms2))
        newest = float(t_s[-1])
        while self._chunks and float(self._chunks[0][0][-1]) < newest - self.window_s:
            self._chunks.popleft()
        if self._next_at is None:
            self._next_at = float(self._chunks[0][0][0]) + self.window_s
        if newest < self._next_at:
            return None
        self._next_at = newest + self.hop_s
        if expected is not None and expected not in self.known:
            return None  # nothing to compare the plan with (see the module docstring)
        usable = [c for c in candidates if c in self.known]
        if not usable:
            return None
        t = np.concatenate([c[0] for c in self._chunks])
        acc = np.concatenate([c[1] for c in self._chunks])
        keep = t >= newest - self.window_s
        from hipsense.exercises.recognition import UNKNOWN, Window, recognise  # only when needed

        answer = recognise(Window(t[keep], acc[keep]), usable, min_confidence=self.min_confidence)
        self.last_answer = answer.exercise_id
        self.evaluations += 1
        if answer.exercise_id == UNKNOWN or answer.exercise_id == expected:
            self._run = []
            return None
        self._run = [*self._run, answer.exercise_id][-self.agree:]
        if len(self._run) == self.agree and len(set(self._run)) == 1:
            self._run = []
            return answer.exercise_id
        return None
