"""The demo's clinic: one therapist, the live patient and four more with weeks of history.

They go into the dashboard's own database through the dashboard's own functions (what
``hipsense dashboard add-user`` / ``assign-patient`` and the prescription editor call), so the
pages show them exactly as they would show a real clinic's. The prescription is what the
shipped recording contains (UCI subject 1, straight-leg raise with the right thigh: three sets
of ten with a 5 s hold), so the session completes and the adherence reads 100 %. The other
patients, and the live patient's past weeks, come from :mod:`.history`: real recordings
counted by the real counter.
"""

from __future__ import annotations

import dataclasses
import secrets

from hipsense.protocol import Envelope, PrescribedExercise

__all__ = ["PATIENT_ID", "PRESCRIPTION", "THERAPIST", "DemoClinic", "seed_clinic"]

THERAPIST = "demo"
THERAPIST_NAME = "Demo Therapist"
PATIENT_ID = "p-demo1"  # pseudonymous, like every patient id (a digit is required)
PATIENT_LABEL = "Demo patient (UCI subject 1)"
PRESCRIPTION = (
    PrescribedExercise(order=1, exercise="straight_leg_raise", sets=3, reps=10, hold_s=5, sides=("right",)),
)


@dataclasses.dataclass(frozen=True)
class DemoClinic:
    username: str
    password: str = dataclasses.field(repr=False)
    patient_id: str
    prescription: Envelope  # recorded as confirmed; the caller makes it the retained message
    therapist_id: int


def seed_clinic(db_url: str) -> DemoClinic:
    """Create the database, the therapist (with a fresh random password) and the live patient,
    and record its prescription version 1. Returns the login and the prescription to publish.
    The history (:func:`hipsense.demo.history.seed_history_into`) comes after, in the background."""
    from hipsense.dashboard.accounts.therapists import add_therapist, assign_patient
    from hipsense.dashboard.db import make_engine, migrate
    from hipsense.dashboard.prescribing import publish_prescription

    # Random, because the pages are a real login: a fixed demo password would be a known
    # password on any machine where someone serves the demo beyond localhost.
    password = secrets.token_urlsafe(9)  # 12 characters (the dashboard wants at least 10)
    engine = make_engine(db_url)
    try:
        migrate(engine)
        therapist = add_therapist(engine, THERAPIST, password, THERAPIST_NAME)
        assign_patient(engine, PATIENT_ID, THERAPIST, label=PATIENT_LABEL)
        sent: list[Envelope] = []
        # The broker is ours and in this process: the caller publishes the envelope right after,
        # before any client connects, so recording it as confirmed here is true.
        publish_prescription(engine, PATIENT_ID, PRESCRIPTION, therapist_id=therapist.id, publish=sent.append)
    finally:
        engine.dispose()
    return DemoClinic(THERAPIST, password, PATIENT_ID, sent[0], therapist.id)
