"""What the patient tells the Pi (pain before and after, "skip today, because …") and what the
patient's page shows about today.

:class:`TodayBook` keeps today's progress from the results the service stores (it observes
:class:`~hipsense.service.results.ResultPublisher`), so the page never touches the engine's
state from its own threads. :class:`CheckIns` turns the page's answers into protocol messages:
a pain check-in is the protocol's ``event/pain``; a skipped day is a session summary with no
work, adherence 0 and the flags ``skipped`` and ``skip_<reason>`` (docs/mqtt.md: readers
tolerate unknown flags, so no new message kind was needed). Both go through the durable outbox
like every result, and both run on the processing thread (:meth:`CheckIns.submit`).

A reason is one of a few fixed choices, never free text: nothing the patient types travels,
so no name or diagnosis can end up in a message by accident.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hipsense.protocol import Envelope, ExerciseSummary, Flag, new_session_id
from hipsense.protocol.skipped_day import SKIP_REASONS, skip_flags

__all__ = ["SKIP_REASONS", "CheckInError", "CheckIns", "TodayBook"]

log = logging.getLogger(__name__)

MOMENTS = ("before", "after")
ANSWER_TIMEOUT_S = 5.0  # the page says "saved" only once the answer is in the outbox


class CheckInError(Exception):
    """The answer was not taken (the message says why, in the patient's words)."""


@dataclasses.dataclass
class _Today:
    date: str
    reps: dict[str, int] = dataclasses.field(default_factory=dict)  # "exercise|side" -> reps
    sets: dict[str, int] = dataclasses.field(default_factory=dict)
    hold_s: dict[str, float] = dataclasses.field(default_factory=dict)
    sessions: int = 0
    adherence: float | None = None
    pain: dict[str, list[Any]] = dataclasses.field(default_factory=dict)  # moment -> [score, "HH:MM"]
    skipped: str | None = None


class TodayBook:
    """Today's work and answers, kept from the stored results; read by the page's threads."""

    def __init__(self, path: str | os.PathLike[str], *, today: Callable[[], dt.date] = dt.date.today,
                 clock: Callable[[], dt.datetime] = dt.datetime.now) -> None:
        self._path = Path(path)
        self._today = today
        self._clock = clock
        self._lock = threading.Lock()
        self._day = self._load()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            self._roll_over()
            return json.loads(json.dumps(dataclasses.asdict(self._day)))

    def on_result(self, kind: str, envelope: Envelope) -> None:
        """Observer of the result publisher (the processing thread)."""
        doc = json.loads(envelope.payload)
        with self._lock:
            self._roll_over()
            day = self._day
            if kind in ("rep", "hold", "set"):
                key = f"{doc['exercise']}|{doc['side']}"
                if kind == "rep":
                    day.reps[key] = day.reps.get(key, 0) + 1
                elif kind == "hold":
                    day.hold_s[key] = round(day.hold_s.get(key, 0.0) + float(doc["hold_s"]), 1)
                else:
                    day.sets[key] = day.sets.get(key, 0) + 1
            elif kind == "session":
                if Flag.SKIPPED in doc["flags"]:
                    day.skipped = next((f[5:] for f in doc["flags"] if f.startswith("skip_")), "other")
                else:
                    day.sessions += 1
                    day.adherence = doc["adherence"]
            elif kind == "pain":
                day.pain[doc["moment"]] = [doc["score"], self._clock().strftime("%H:%M")]
            else:
                return
            self._save()

    def _roll_over(self) -> None:
        today = self._today().isoformat()
        if self._day.date != today:
            self._day = _Today(date=today)

    def _load(self) -> _Today:
        try:
            doc = json.loads(self._path.read_text(encoding="utf-8"))
            return _Today(**doc)
        except (OSError, ValueError, TypeError):
            return _Today(date=self._today().isoformat())

    def _save(self) -> None:
        # Not fsynced: this is what the page shows; the results themselves are in the outbox.
        try:
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(json.dumps(dataclasses.asdict(self._day)), encoding="utf-8")
            os.replace(tmp, self._path)
        except OSError as exc:
            log.warning("today's progress not saved: %s", exc)


class CheckIns:
    """The page's answers, carried out on the processing thread through ``run_on_worker``.

    ``engine`` is the :class:`~hipsense.service.engine.SessionEngine` (its ``record_pain``,
    ``plan``, ``session_id`` and ``publisher``); ``run_on_worker`` queues a callable on the
    thread that owns it.
    """

    def __init__(self, engine: Any, run_on_worker: Callable[[Callable[[], None]], None], *,
                 utc_now: Callable[[], float]) -> None:
        self.engine = engine
        self._run = run_on_worker
        self._utc_now = utc_now

    def plan_lines(self) -> list[Any]:
        """The prescription as the engine follows it (a list it replaces whole: safe to read)."""
        return list(self.engine.plan.lines)

    def pain(self, score: int, moment: str) -> None:
        if moment not in MOMENTS:
            raise CheckInError("unknown moment")
        if not 0 <= score <= 10:
            raise CheckInError("the score is 0 to 10")
        def record() -> None:
            failed = self.engine.publisher.failed
            self.engine.record_pain(score, moment)
            if self.engine.publisher.failed > failed:
                raise CheckInError("it could not be saved on the Pi (see the service's log)")

        self._on_worker(record)

    def skip(self, reason: str) -> None:
        if reason not in SKIP_REASONS:
            raise CheckInError("choose one of the reasons")

        def skip_today() -> None:
            engine = self.engine
            if engine.session_id is not None:
                raise CheckInError("a session is going on: it is not skipped")
            plan = engine.plan
            now = self._utc_now()
            exercises = [ExerciseSummary(exercise=ln.exercise, side=ln.side, sets=0, sets_target=ln.sets, reps=0,
                                         reps_target=None if ln.reps is None else ln.sets * ln.reps,
                                         hold_s_total=0.0, max_rom_deg=None, mean_rom_deg=None)
                         for ln in plan.lines]
            self._stored(engine.publisher.session(
                session_id=new_session_id(), t_start=now, t_end=now, exercises=exercises,
                prescription_version=plan.prescription_version, adherence=0.0 if plan.lines else None,
                flags=skip_flags(reason), hold=False))  # the patient is told if it fails

        self._on_worker(skip_today)

    @staticmethod
    def _stored(envelope: Envelope | None) -> None:
        if envelope is None:
            raise CheckInError("it could not be saved on the Pi (see the service's log)")

    def _on_worker(self, job: Callable[[], None]) -> None:
        """Run ``job`` on the processing thread and wait for it: "saved" means in the outbox."""
        done = threading.Event()
        failure: list[BaseException] = []

        def call() -> None:
            try:
                job()
            except BaseException as exc:  # handed back to the page's thread
                failure.append(exc)
            finally:
                done.set()

        self._run(call)
        if not done.wait(ANSWER_TIMEOUT_S):
            raise CheckInError("the Pi is busy; try again in a minute")
        if failure:
            if isinstance(failure[0], CheckInError):
                raise failure[0]
            log.error("check-in failed", exc_info=failure[0])
            raise CheckInError("it could not be saved on the Pi (see the service's log)")

