"""Building valid protocol messages for the dashboard tests (through the protocol's builders)."""

from __future__ import annotations

import datetime as dt

from hipsense import protocol as p

SESSION_A = "01JQ7Z8K3M4N5P6Q7R8S9T0V1W"


def rep(patient: str, seq: int, t: dt.datetime, *, session_id: str = SESSION_A, exercise: str = "clam_shells",
        side: str = "left", set_index: int = 1, rep_index: int | None = None, rom: float = 38.0,
        hold_s: float = 2.0) -> p.Envelope:
    return p.build_rep_event(
        patient, seq=seq, session_id=session_id, exercise=exercise, side=side, set_index=set_index,
        rep_index=rep_index or seq, t_start=t, t_end=t + dt.timedelta(seconds=3), rom_deg=rom, hold_s=hold_s,
        peak_speed_dps=60.0,
    )


def pain(patient: str, seq: int, t: dt.datetime, score: int, *, session_id: str | None = SESSION_A) -> p.Envelope:
    return p.build_pain_checkin(patient, seq=seq, score=score, moment="after", t=t, session_id=session_id)


def session_summary(patient: str, seq: int, t_start: dt.datetime, *, session_id: str = SESSION_A,
                    adherence: float = 0.8, mean_rom: float = 36.0, reps: int = 30) -> p.Envelope:
    return p.build_session_summary(
        patient, seq=seq, session_id=session_id, t_start=t_start, t_end=t_start + dt.timedelta(minutes=15),
        prescription_version=1, adherence=adherence,
        exercises=[p.ExerciseSummary(exercise="clam_shells", side="left", sets=3, sets_target=3, reps=reps,
                                     reps_target=36, hold_s_total=60.0, max_rom_deg=mean_rom + 4,
                                     mean_rom_deg=mean_rom)],
    )


def parsed(envelope: p.Envelope) -> p.Message:
    return p.parse_message(envelope.topic, envelope.payload)
