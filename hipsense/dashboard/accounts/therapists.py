"""Therapist accounts and the patient-to-therapist assignment that limits what each one sees."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from hipsense.dashboard.accounts.passwords import DUMMY_HASH, hash_password, needs_rehash, verify_password
from hipsense.dashboard.db.tables import patients, therapists
from hipsense.protocol import validate_patient_id
from hipsense.dashboard.accounts.usernames import normalise_username


class AccountError(ValueError):
    """A user or assignment request that cannot be done; the message says why."""


@dataclasses.dataclass(frozen=True, slots=True)
class Therapist:
    id: int
    username: str
    display_name: str


def add_therapist(engine: Engine, username: str, password: str, display_name: str | None = None) -> Therapist:
    """Create a therapist account; raises AccountError if the name is taken or invalid."""
    username = normalise_username(username)
    if not username or len(username) > 64 or any(c.isspace() for c in username):
        raise AccountError("a user name is 1-64 characters without spaces")
    try:
        password_hash = hash_password(password)
    except ValueError as exc:
        raise AccountError(str(exc)) from None
    row = {
        "username": username,
        "display_name": display_name or username,
        "password_hash": password_hash,
        "created_at": dt.datetime.now(dt.timezone.utc),
    }
    try:
        with engine.begin() as connection:
            new_id = connection.execute(therapists.insert().returning(therapists.c.id), row).scalar_one()
    except IntegrityError:
        raise AccountError(f"user {username!r} exists already") from None
    return Therapist(new_id, username, row["display_name"])


def authenticate(engine: Engine, username: str, password: str) -> Therapist | None:
    """The therapist if the password is right, else None (same work either way)."""
    with engine.connect() as connection:
        row = connection.execute(
            select(therapists).where(therapists.c.username == normalise_username(username))
        ).first()
    if row is None:
        verify_password(DUMMY_HASH, password)
        return None
    if not verify_password(row.password_hash, password):
        return None
    if needs_rehash(row.password_hash):
        with engine.begin() as connection:
            connection.execute(
                update(therapists).where(therapists.c.id == row.id).values(password_hash=hash_password(password))
            )
    return Therapist(row.id, row.username, row.display_name)


def get_therapist(engine: Engine, therapist_id: int) -> Therapist | None:
    with engine.connect() as connection:
        row = connection.execute(select(therapists).where(therapists.c.id == therapist_id)).first()
    return None if row is None else Therapist(row.id, row.username, row.display_name)


def assign_patient(engine: Engine, patient_id: str, username: str, label: str | None = None) -> None:
    """Give ``patient_id`` to therapist ``username`` (creating the patient if no Pi sent yet)."""
    validate_patient_id(patient_id)
    with engine.begin() as connection:
        therapist_id = connection.scalar(
            select(therapists.c.id).where(therapists.c.username == normalise_username(username)))
        if therapist_id is None:
            raise AccountError(f"no user {username!r}; add it with `hipsense dashboard add-user`")
        exists = connection.scalar(select(patients.c.patient_id).where(patients.c.patient_id == patient_id))
        values = {"therapist_id": therapist_id}
        if label is not None:
            values["label"] = label
        if exists is None:
            connection.execute(patients.insert().values(
                patient_id=patient_id, first_seen=dt.datetime.now(dt.timezone.utc), **values))
        else:
            connection.execute(update(patients).where(patients.c.patient_id == patient_id).values(**values))


def patients_of(engine: Engine, therapist_id: int) -> list[tuple[str, str | None]]:
    """``(patient_id, label)`` of the therapist's patients, by label then id."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(patients.c.patient_id, patients.c.label)
            .where(patients.c.therapist_id == therapist_id)
            .order_by(patients.c.label, patients.c.patient_id)
        ).all()
    return [(row.patient_id, row.label) for row in rows]


def can_see(engine: Engine, therapist_id: int, patient_id: str) -> bool:
    """True only if ``patient_id`` is assigned to this therapist: the one access rule."""
    with engine.connect() as connection:
        owner = connection.scalar(select(patients.c.therapist_id).where(patients.c.patient_id == patient_id))
    return owner is not None and owner == therapist_id


def patient_label(engine: Engine, patient_id: str) -> str | None:
    with engine.connect() as connection:
        return connection.scalar(select(patients.c.label).where(patients.c.patient_id == patient_id))
