"""The demo clinic's past: several pseudonymous patients with up to twelve weeks of sessions.

Every rep in it was counted by the real counter (:class:`~hipsense.exercises.tracker.ExerciseTracker`)
in a real recording shipped in ``hipsense/data`` (UCI Physical Therapy Exercises and MEx,
CC BY 4.0; citations in hipsense/data/README.md). Each recording is counted once, at demo
start; its sets (in the UCI files: correct with the 5 s hold, too fast, low amplitude) are the
material a patient's sessions are made of. What is chosen, per patient and day, is which of
those counted sets a session holds, when it happened, and the pain the patient reported: the
parts a person decides. So the stories the therapist should see are real counter output:

* ``p-demo2`` does every session, but the pain rises over the last week  → "pain rising";
* ``p-demo3``'s reps this week are the data set's low-amplitude ones    → "range of motion falling";
* ``p-demo4`` missed a whole week a month ago and nothing since Friday   → "no session for N days";
* ``p-demo5`` does one or two of three sets, skips days, says why        → low adherence, "skipped";
* ``p-demo1``, the live patient, has five good weeks before today's session (replayed live).

Everything goes into the dashboard's database as protocol messages through the dashboard's own
:class:`~hipsense.dashboard.event_store.EventStore`, exactly as ingest stores what arrives over
MQTT: the dashboard cannot tell them from results a Pi sent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Callable, Iterator, Sequence
from importlib import resources

import numpy as np

from hipsense import protocol as p
from hipsense.protocol.skipped_day import skip_flags

__all__ = ["PATIENTS", "RECORDINGS", "CountedSet", "HistoryPatient", "count_recording", "history_messages", "seed_history",
           "seed_history_into"]

CHUNK_S = 1.0  # seconds of samples per push: the counter is chunk-invariant (tests/signal)
REST_BETWEEN_SETS_S = 45.0


@dataclasses.dataclass(frozen=True)
class CountedRep:
    start_s: float  # from the start of its set
    end_s: float
    rom_deg: float
    hold_s: float
    peak_speed_dps: float
    flags: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class CountedSet:
    """One set as the counter found it in a recording (times relative to its first rep)."""

    reps: tuple[CountedRep, ...]

    @property
    def duration_s(self) -> float:
        return self.reps[-1].end_s if self.reps else 0.0


@dataclasses.dataclass(frozen=True)
class Recording:
    file: str  # in hipsense/data
    exercise: str
    hold_s: float


RECORDINGS = {
    "uci_s1_slr": Recording("uci_s1_e3_test.txt.gz", "straight_leg_raise", 5.0),
    "uci_s2_slr": Recording("uci_s2_e3_test.txt.gz", "straight_leg_raise", 5.0),
    "uci_s1_abd": Recording("uci_s1_e4_test.txt.gz", "side_lying_hip_abduction", 5.0),
    "mex_01_bridge": Recording("mex_01_02_act_1.csv.gz", "bridge", 5.0),
}


def count_recording(recording: Recording) -> list[CountedSet]:
    """Run the recording through the real counter, as ``hipsense replay`` does; its sets."""
    from hipsense.exercises.catalogue import get_exercise
    from hipsense.exercises.tracker import ExerciseTracker, TrackerSettings
    from hipsense.device.sample_files import read_samples

    with resources.as_file(resources.files("hipsense") / "data" / recording.file) as path:
        samples = read_samples(path)
    tracker = ExerciseTracker(get_exercise(recording.exercise), TrackerSettings(hold_target_s=recording.hold_s),
                              has_gyro=samples.gyr_rad_s is not None)
    t = samples.t_s
    edges = np.searchsorted(t, np.arange(t[0], t[-1] + CHUNK_S, CHUNK_S))
    reps = []
    for a, b in zip(edges[:-1], edges[1:]):
        if b > a:
            gyr = None if samples.gyr_rad_s is None else samples.gyr_rad_s[a:b]
            reps += tracker.push(t[a:b], samples.acc_ms2[a:b], gyr).reps
    reps += tracker.flush().reps
    by_set: dict[int, list] = {}
    for rep in reps:
        by_set.setdefault(rep.set_index, []).append(rep)
    sets = []
    for members in by_set.values():
        t0 = members[0].start_t_s
        sets.append(CountedSet(tuple(CountedRep(r.start_t_s - t0, r.end_t_s - t0, r.rom_deg, r.hold_s,
                                                r.peak_speed_dps, tuple(r.flags)) for r in members)))
    return sets


# -- who, and what each day held -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Day:
    """One day of a patient's history: the sets done (indices into the recording's counted
    sets; empty = no session), pain before/after, or a skip with its reason."""

    days_ago: int
    sets: tuple[int, ...] = ()
    pain_before: int | None = None
    pain_after: int | None = None
    skip: str | None = None
    hour: float = 10.0  # local time the session started (the clinic runs on UTC in the demo)


@dataclasses.dataclass(frozen=True)
class HistoryPatient:
    patient_id: str
    label: str
    recording: str  # key of RECORDINGS
    sets: int
    reps: int
    side: str
    weeks: int
    days: Callable[[random.Random], list[Day]]
    online: bool = False


def _weekdays(weeks: int, per_week: Sequence[int] = (0, 2, 4, 5)) -> Iterator[int]:
    """Days ago of the usual training days (weekday offsets within each week), oldest first."""
    for week in range(weeks, 0, -1):
        for offset in per_week:
            days_ago = week * 7 - offset
            if days_ago > 0:
                yield days_ago


def _steady(rng: random.Random) -> list[Day]:  # p-demo1: five good weeks, pain easing
    return [Day(d, (0, 1, 2), pain_before=max(1, 4 - (35 - d) // 12), pain_after=max(1, 3 - (35 - d) // 12),
                hour=9 + rng.random() * 2) for d in _weekdays(5)]


def _pain_rising(rng: random.Random) -> list[Day]:  # p-demo2
    days = []
    for d in _weekdays(10, per_week=(0, 2, 5)):
        pain = 2 + rng.choice((0, 0, 1)) if d > 7 else 3 + (8 - d) // 2  # 3 → 7 over the last week
        days.append(Day(d, (0, 1, 2), pain_before=pain, pain_after=min(10, pain + 1), hour=17 + rng.random()))
    days.append(Day(0, (0, 1, 2), pain_before=7, pain_after=8, hour=-2.0))  # this morning (see _start)
    return days


def _rom_falling(rng: random.Random) -> list[Day]:  # p-demo3: the low-amplitude set, this week
    days = [Day(d, (0, 1, 0) if d > 6 else (2, 2, 2), pain_before=2, pain_after=2 + rng.choice((0, 1)),
                hour=8 + rng.random()) for d in _weekdays(12, per_week=(0, 2, 5))]
    days.append(Day(1, (2, 2, 2), pain_before=3, pain_after=3, hour=8.5))
    return days


def _missed_week(rng: random.Random) -> list[Day]:  # p-demo4
    return [Day(d, (0, 0), pain_before=rng.choice((1, 2)), pain_after=rng.choice((1, 2)), hour=12 + rng.random())
            for d in _weekdays(8, per_week=(0, 3, 5)) if not 22 <= d <= 28 and d >= 5]


def _low_adherence(rng: random.Random) -> list[Day]:  # p-demo5
    days = []
    for d in _weekdays(7):
        roll = rng.random()
        if roll < 0.2:
            days.append(Day(d, skip=rng.choice(("pain", "no_time", "unwell")), hour=9 + rng.random()))
        elif roll < 0.3:
            continue  # nothing at all that day
        else:
            days.append(Day(d, (0,) if roll < 0.7 else (0, 1), pain_before=4, pain_after=rng.choice((4, 5)),
                            hour=19 + rng.random()))
    days.append(Day(0, skip="no_time", hour=-1.0))
    return days


PATIENTS = (
    # The live patient: its Pi (the demo's service) reports its own status.
    HistoryPatient("p-demo1", "Demo patient (UCI subject 1)", "uci_s1_slr", 3, 10, "right", 5, _steady),
    HistoryPatient("p-demo2", "B.K. (UCI subject 2)", "uci_s2_slr", 3, 10, "right", 10, _pain_rising, online=True),
    HistoryPatient("p-demo3", "M.O. (UCI subject 1, abduction)", "uci_s1_abd", 3, 10, "right", 12, _rom_falling,
                   online=True),
    HistoryPatient("p-demo4", "T.R. (MEx subject 01)", "mex_01_bridge", 2, 10, "both", 8, _missed_week),
    HistoryPatient("p-demo5", "S.L. (UCI subject 2)", "uci_s2_slr", 3, 10, "right", 7, _low_adherence, online=True),
)


def prescription_items(patient: HistoryPatient) -> tuple[p.PrescribedExercise, ...]:
    recording = RECORDINGS[patient.recording]
    return (p.PrescribedExercise(order=1, exercise=recording.exercise, sets=patient.sets, reps=patient.reps,
                                 hold_s=recording.hold_s, sides=(patient.side,)),)


# -- from days to protocol messages --------------------------------------------------------------


def _start(day: Day, now: dt.datetime) -> dt.datetime:
    """A negative hour means "that many hours before now" (today's sessions are in the past)."""
    if day.hour < 0:
        return now + dt.timedelta(hours=day.hour)
    midnight = dt.datetime.combine(now.date() - dt.timedelta(days=day.days_ago), dt.time(), tzinfo=dt.UTC)
    return min(midnight + dt.timedelta(hours=day.hour), now - dt.timedelta(hours=1))


def history_messages(patient: HistoryPatient, sets: Sequence[CountedSet], *, now: dt.datetime,
                     seed: int = 12) -> list[p.Envelope]:
    """Every message a Pi would have sent for ``patient``'s history, oldest first."""
    recording = RECORDINGS[patient.recording]
    exercise, side = recording.exercise, patient.side
    out: list[p.Envelope] = []
    seq = 0

    def next_seq() -> int:
        nonlocal seq
        seq += 1
        return seq

    for day in sorted(patient.days(random.Random(f"{seed}-{patient.patient_id}")), key=lambda d: -d.days_ago):
        start = _start(day, now)
        session_id = p.new_message_id(now_ms=int(start.timestamp() * 1000))
        if day.pain_before is not None:
            out.append(p.build_pain_checkin(patient.patient_id, seq=next_seq(), score=day.pain_before,
                                            moment="before", t=start - dt.timedelta(minutes=2)))
        if day.skip is not None:
            out.append(p.build_session_summary(
                patient.patient_id, seq=next_seq(), session_id=session_id, t_start=start, t_end=start,
                exercises=[p.ExerciseSummary(exercise, side, 0, patient.sets, 0, patient.sets * patient.reps,
                                             0.0, None, None)],
                prescription_version=1, adherence=0.0, flags=skip_flags(day.skip)))
            continue
        if not day.sets:
            continue
        offset = 0.0
        roms: list[float] = []
        hold_total = 0.0
        for set_index, which in enumerate(day.sets, 1):
            counted = sets[which % len(sets)]
            t0 = start + dt.timedelta(seconds=offset)
            for rep_index, rep in enumerate(counted.reps, 1):
                out.append(p.build_rep_event(
                    patient.patient_id, seq=next_seq(), session_id=session_id, exercise=exercise, side=side,
                    set_index=set_index, rep_index=rep_index, t_start=t0 + dt.timedelta(seconds=rep.start_s),
                    t_end=t0 + dt.timedelta(seconds=rep.end_s), rom_deg=rep.rom_deg, hold_s=rep.hold_s,
                    peak_speed_dps=rep.peak_speed_dps, duration_s=rep.end_s - rep.start_s, flags=rep.flags))
                roms.append(rep.rom_deg)
            held = [r.hold_s for r in counted.reps if r.hold_s > 0]
            hold_total += sum(held)
            out.append(p.build_set_event(
                patient.patient_id, seq=next_seq(), session_id=session_id, exercise=exercise, side=side,
                set_index=set_index, t_start=t0, t_end=t0 + dt.timedelta(seconds=counted.duration_s),
                reps=len(counted.reps), reps_target=patient.reps, holds=len(held), hold_s_total=sum(held),
                target_hold_s=recording.hold_s, prescribed=True))
            offset += counted.duration_s + REST_BETWEEN_SETS_S
        end = start + dt.timedelta(seconds=offset - REST_BETWEEN_SETS_S)
        target = patient.sets * patient.reps
        out.append(p.build_session_summary(
            patient.patient_id, seq=next_seq(), session_id=session_id, t_start=start, t_end=end,
            exercises=[p.ExerciseSummary(exercise, side, len(day.sets), patient.sets, len(roms), target,
                                         round(hold_total, 1), max(roms) if roms else None,
                                         sum(roms) / len(roms) if roms else None)],
            prescription_version=1, adherence=min(1.0, len(roms) / target),
            flags=() if len(day.sets) >= patient.sets else (p.Flag.INCOMPLETE,)))
        if day.pain_after is not None:
            out.append(p.build_pain_checkin(patient.patient_id, seq=next_seq(), score=day.pain_after,
                                            moment="after", t=end + dt.timedelta(minutes=3), session_id=session_id))
    if patient.online:
        out.append(p.build_status(patient.patient_id, online=True, t=now - dt.timedelta(minutes=5)))
    return out


def seed_history(engine, therapist: str, therapist_id: int, *, now: dt.datetime | None = None,
                 patients: Sequence[HistoryPatient] = PATIENTS, live_patient: str | None = None) -> dict[str, int]:
    """Count the recordings, then give each patient (assigned to ``therapist``) a prescription
    in force since their history began, and their history. ``live_patient`` is already set up
    (its prescription is the one its Pi follows): it gets its history only. Returns the
    number of messages stored per patient."""
    from hipsense.dashboard.accounts.therapists import assign_patient
    from hipsense.dashboard.event_store import EventStore
    from hipsense.dashboard.prescribing import publish_prescription

    now = now or dt.datetime.now(dt.UTC)
    counted = {key: count_recording(RECORDINGS[key]) for key in sorted({pt.recording for pt in patients})}
    stored: dict[str, int] = {}
    store = EventStore(engine)
    try:
        for patient in patients:
            if patient.patient_id != live_patient:
                assign_patient(engine, patient.patient_id, therapist, label=patient.label)
                publish_prescription(engine, patient.patient_id, prescription_items(patient),
                                     therapist_id=therapist_id, publish=lambda envelope: None,
                                     now=now - dt.timedelta(weeks=patient.weeks, days=1))
            messages = [p.parse_message(e.topic, e.payload)
                        for e in history_messages(patient, counted[patient.recording], now=now)]
            store.write_batch(messages)
            stored[patient.patient_id] = len(messages)
    finally:
        store.close()
    return stored


def seed_history_into(db_url: str, therapist: str, therapist_id: int, live_patient: str, *,
                      now: dt.datetime | None = None) -> dict[str, int]:
    """:func:`seed_history` on the database at ``db_url``: what the demo runs in a process of
    its own while the live session starts (counting and validating ~5000 messages takes seconds,
    and must not hold up the embedded broker in the demo's process)."""
    from hipsense.dashboard.db import make_engine

    engine = make_engine(db_url)
    try:
        return seed_history(engine, therapist, therapist_id, live_patient=live_patient, now=now)
    finally:
        engine.dispose()
