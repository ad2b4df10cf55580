"""Following the prescription: what is due next, what has been done, and how much of it.

Pure bookkeeping, no I/O and no clocks, so it is cheap to test and to persist (to_json /
from_json) for resuming a session after a crash.

Order: the prescription's exercises in ``order``; within one, every set of the first side, then
every set of the next side ("do all the reps, then change legs", as the catalogue instructs; it
also means a single sensor moves between legs once per exercise, not once per set).

Tallies are kept per (exercise, side), for prescribed and unprescribed work alike. Where a set
ends is not decided here: the engine closes the open set when the tracker closes its set (or
at an exercise switch or the session's end), and hands reps over in the tracker's order. The
plan only *numbers* them on from what was done before, so set and rep numbers continue across
a tracker rebuild or a service restart instead of starting again at 1.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hipsense.protocol import ExerciseSummary, Flag, Prescription

__all__ = ["ClosedSet", "OpenSet", "Plan", "PlanLine", "Tally"]


#: a set flag: the tracker's count confidence (``exercises/confidence.py``) was below
#: ``CONFIDENT`` — the thigh did not show the reps clearly, so the number may be wrong
UNCERTAIN_COUNT = Flag.UNCERTAIN_COUNT

@dataclasses.dataclass(frozen=True, slots=True)
class PlanLine:
    """One exercise on one side, as prescribed. ``reps`` is None for a timed exercise."""

    exercise: str
    side: str
    sets: int
    reps: int | None
    hold_s: float

    @property
    def timed(self) -> bool:
        return self.reps is None


@dataclasses.dataclass(slots=True)
class OpenSet:
    """The set in progress for one (exercise, side). Instants are UTC epoch seconds."""

    set_index: int
    reps: int = 0
    holds: int = 0
    hold_s_total: float = 0.0
    t_start: float | None = None
    t_end: float | None = None
    flags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(slots=True)
class Tally:
    """Everything done so far for one (exercise, side) in this session."""

    sets_done: int = 0
    reps: int = 0
    holds: int = 0
    hold_s_total: float = 0.0
    rom_sum: float = 0.0
    rom_n: int = 0
    rom_max: float | None = None
    uncertain_sets: int = 0  # sets whose count the tracker could not trust ("uncertain_count")
    open: OpenSet | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ClosedSet:
    """A finished set, with what the set event needs."""

    exercise: str
    side: str
    set_index: int
    reps: int
    holds: int
    hold_s_total: float
    t_start: float
    t_end: float
    line: PlanLine | None
    flags: tuple[str, ...]


class Plan:
    """The prescription as a list of :class:`PlanLine` plus the session's tallies."""

    def __init__(self, prescription: Prescription | None = None) -> None:
        self.prescription_version: int | None = None
        self.lines: list[PlanLine] = []
        self.tallies: dict[tuple[str, str], Tally] = {}
        self.set_prescription(prescription)

    # -- the prescription ------------------------------------------------------------------------

    def set_prescription(self, prescription: Prescription | None) -> None:
        """Follow ``prescription`` from now on; what was done so far still counts."""
        if prescription is None:
            self.prescription_version, self.lines = None, []
            return
        self.prescription_version = prescription.version
        self.lines = [
            PlanLine(item.exercise, side, item.sets, item.reps, float(item.hold_s))
            for item in prescription.exercises
            for side in item.sides
        ]

    def line_for(self, exercise: str, side: str) -> PlanLine | None:
        return next((ln for ln in self.lines if ln.exercise == exercise and ln.side == side), None)

    def sides_of(self, exercise: str) -> list[str]:
        return [ln.side for ln in self.lines if ln.exercise == exercise]

    def prescribed_exercises(self) -> list[str]:
        return list(dict.fromkeys(ln.exercise for ln in self.lines))

    def current(self) -> PlanLine | None:
        """The first line not done yet (None when everything is done or nothing is prescribed)."""
        return next((ln for ln in self.lines if not self.line_done(ln)), None)

    def next_line_of(self, exercise: str) -> PlanLine | None:
        """The first unfinished line of ``exercise`` (when the patient jumps to it)."""
        return next((ln for ln in self.lines if ln.exercise == exercise and not self.line_done(ln)), None)

    def line_done(self, line: PlanLine) -> bool:
        return self.tally(line.exercise, line.side).sets_done >= line.sets

    @property
    def complete(self) -> bool:
        return bool(self.lines) and self.current() is None

    # -- recording -------------------------------------------------------------------------------

    def tally(self, exercise: str, side: str) -> Tally:
        return self.tallies.setdefault((exercise, side), Tally())

    def _open(self, exercise: str, side: str, t_start: float) -> OpenSet:
        tally = self.tally(exercise, side)
        if tally.open is None:
            tally.open = OpenSet(set_index=tally.sets_done + 1, t_start=t_start)
        return tally.open

    def record_rep(self, exercise: str, side: str, *, rom_deg: float, hold_s: float,
                   t_start: float, t_end: float, flags: tuple[str, ...] = ()) -> tuple[int, int]:
        """Count one rep; return its (set_index, rep_index), both 1-based."""
        tally = self.tally(exercise, side)
        current = self._open(exercise, side, t_start)
        current.reps += 1
        if hold_s > 0:
            current.holds += 1
            current.hold_s_total += hold_s
        current.t_end = t_end
        current.flags = sorted(set(current.flags) | set(flags))
        tally.reps += 1
        tally.hold_s_total += hold_s
        tally.rom_sum += rom_deg
        tally.rom_n += 1
        tally.rom_max = rom_deg if tally.rom_max is None else max(tally.rom_max, rom_deg)
        return current.set_index, current.reps

    def record_hold(self, exercise: str, side: str, *, hold_s: float, t_start: float, t_end: float) -> tuple[int, int]:
        """Count one timed hold (a stretch); return its (set_index, hold_index)."""
        tally = self.tally(exercise, side)
        current = self._open(exercise, side, t_start)
        current.holds += 1
        current.hold_s_total += hold_s
        current.t_end = t_end
        tally.holds += 1
        tally.hold_s_total += hold_s
        return current.set_index, current.holds

    def open_reps(self, exercise: str, side: str) -> int:
        current = self.tally(exercise, side).open
        return 0 if current is None else current.reps

    def flag_open_set(self, exercise: str, side: str, flag: str) -> None:
        """Mark the open set of (exercise, side), if any (e.g. its count is uncertain)."""
        current = self.tally(exercise, side).open
        if current is not None:
            current.flags = sorted({*current.flags, flag})

    def close_set(self, exercise: str, side: str) -> ClosedSet | None:
        """Close the open set of (exercise, side), if any, and count it."""
        tally = self.tally(exercise, side)
        current, tally.open = tally.open, None
        if current is None or (current.reps == 0 and current.holds == 0):
            return None
        tally.sets_done += 1
        if UNCERTAIN_COUNT in current.flags:
            tally.uncertain_sets += 1
        return ClosedSet(
            exercise=exercise, side=side, set_index=current.set_index, reps=current.reps, holds=current.holds,
            hold_s_total=current.hold_s_total, t_start=float(current.t_start or 0.0),
            t_end=float(current.t_end or current.t_start or 0.0), line=self.line_for(exercise, side),
            flags=tuple(current.flags if self.line_for(exercise, side) else sorted({*current.flags, Flag.NOT_PRESCRIBED})),
        )

    @property
    def uncertain_counts(self) -> bool:
        """Some set of this session was counted without confidence."""
        return any(t.uncertain_sets for t in self.tallies.values())

    def close_all(self) -> list[ClosedSet]:
        """Close every open set (end of session)."""
        return [closed for key in list(self.tallies) if (closed := self.close_set(*key)) is not None]

    @property
    def has_results(self) -> bool:
        return any(t.reps or t.holds or t.open for t in self.tallies.values())

    # -- the summary -----------------------------------------------------------------------------

    def adherence(self) -> float | None:
        """Share of the prescribed work done, 0..1: the mean over lines of min(1, done / target).

        A rep line's work is sets × reps; a timed line's is sets × hold_s seconds held. None
        without a prescription.
        """
        if not self.lines:
            return None
        shares = []
        for line in self.lines:
            tally = self.tally(line.exercise, line.side)
            if line.timed:
                target = line.sets * max(line.hold_s, 1.0)
                done = tally.hold_s_total
            else:
                target = line.sets * (line.reps or 1)
                done = tally.reps
            shares.append(min(1.0, done / target))
        return sum(shares) / len(shares)

    def summaries(self) -> list[ExerciseSummary]:
        """One entry per prescribed (exercise, side) in plan order, then unprescribed work."""
        keys = [(ln.exercise, ln.side) for ln in self.lines]
        keys += [key for key, t in self.tallies.items() if key not in keys and (t.reps or t.holds)]
        out = []
        for exercise, side in keys:
            tally = self.tally(exercise, side)
            line = self.line_for(exercise, side)
            out.append(ExerciseSummary(
                exercise=exercise, side=side, sets=tally.sets_done,
                sets_target=None if line is None else line.sets,
                reps=tally.reps,
                reps_target=None if line is None or line.reps is None else line.sets * line.reps,
                hold_s_total=tally.hold_s_total,
                max_rom_deg=tally.rom_max,
                mean_rom_deg=tally.rom_sum / tally.rom_n if tally.rom_n else None,
            ))
        return out

    # -- persistence -----------------------------------------------------------------------------

    def tallies_to_json(self) -> list[dict[str, Any]]:
        return [
            {"exercise": ex, "side": side, **{k: v for k, v in dataclasses.asdict(t).items() if k != "open"},
             "open": None if t.open is None else dataclasses.asdict(t.open)}
            for (ex, side), t in self.tallies.items()
        ]

    def load_tallies(self, items: list[dict[str, Any]]) -> None:
        self.tallies = {}
        for item in items:
            item = dict(item)
            key = (item.pop("exercise"), item.pop("side"))
            open_doc = item.pop("open")
            tally = Tally(**item)
            tally.open = None if open_doc is None else OpenSet(**open_doc)
            self.tallies[key] = tally
