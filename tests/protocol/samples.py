"""One valid envelope of every message kind, shared by the protocol tests."""

from __future__ import annotations

import datetime as dt

from hipsense import protocol as p

PATIENT = "p-7k2m9q4x"
SESSION = "01JQ7Z8K3M4N5P6Q7R8S9T0V1W"
T0 = dt.datetime(2025, 3, 1, 9, 15, 0, tzinfo=dt.timezone.utc)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def sample_prescription(version: int = 1, patient: str = PATIENT) -> p.Envelope:
    return p.build_prescription(
        patient,
        version=version,
        updated_at=T0,
        exercises=[
            p.PrescribedExercise(order=1, exercise="clam_shells", sets=3, reps=12, hold_s=2, sides=("left", "right")),
            p.PrescribedExercise(order=2, exercise="hip_flexor_stretch", sets=1, reps=None, hold_s=30, sides=("left", "right"), rest_s=15),
            p.PrescribedExercise(order=3, exercise="bridge", sets=2, reps=15, hold_s=3, sides=("both",)),
        ],
    )


def every_kind(seq: int = 1, patient: str = PATIENT) -> dict[p.MessageKind, p.Envelope]:
    """Return a valid envelope of every kind (events numbered from ``seq``)."""
    return {
        p.MessageKind.STATUS: p.build_status(
            patient, online=True, t=T0, software_version="0.1.0",
            sensors=[{"side": "left", "connected": True, "battery_pct": 80}],
        ),
        p.MessageKind.LIVE: p.build_live(
            patient, t=at(1), side="left", thigh_angle_deg=23.456, exercise="clam_shells",
            session_id=SESSION, abduction_deg=-4.2, rep_count=3, hold_remaining_s=1.5,
        ),
        p.MessageKind.REP: p.build_rep_event(
            patient, seq=seq, session_id=SESSION, exercise="clam_shells", side="left",
            set_index=1, rep_index=1, t_start=at(2), t_end=at(5.5), rom_deg=38.2, hold_s=2.1,
            peak_speed_dps=75.0, flags=["short_hold"],
        ),
        p.MessageKind.HOLD: p.build_hold_event(
            patient, seq=seq + 1, session_id=SESSION, exercise="hip_flexor_stretch", side="right",
            set_index=1, hold_index=1, t_start=at(60), t_end=at(88), hold_s=28.0, target_hold_s=30,
            mean_angle_deg=-12.5, flags=["short_hold"],
        ),
        p.MessageKind.SET: p.build_set_event(
            patient, seq=seq + 2, session_id=SESSION, exercise="clam_shells", side="left",
            set_index=1, t_start=at(2), t_end=at(50), reps=12, reps_target=12, holds=12,
            hold_s_total=25.2, target_hold_s=2, prescribed=True,
        ),
        p.MessageKind.SESSION: p.build_session_summary(
            patient, seq=seq + 3, session_id=SESSION, t_start=T0, t_end=at(900),
            prescription_version=1, adherence=0.83,
            exercises=[p.ExerciseSummary(exercise="clam_shells", side="left", sets=3, sets_target=3,
                                         reps=34, reps_target=36, hold_s_total=70.4,
                                         max_rom_deg=41.0, mean_rom_deg=36.2)],
        ),
        p.MessageKind.PAIN: p.build_pain_checkin(
            patient, seq=seq + 4, score=3, moment="after", t=at(905), session_id=SESSION,
        ),
        p.MessageKind.PRESCRIPTION: sample_prescription(patient=patient),
        p.MessageKind.STORED: p.build_stored_ack(patient, seq + 4, t=at(906)),
    }
