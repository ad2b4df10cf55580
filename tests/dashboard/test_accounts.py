"""Accounts: slow salted hashes, the one access rule (a therapist sees only their patients)."""

from __future__ import annotations

import pytest

from hipsense.dashboard.accounts.login_sessions import end_session, find_session, start_session
from hipsense.dashboard.accounts.therapists import (
    AccountError,
    add_therapist,
    assign_patient,
    authenticate,
    can_see,
    patients_of,
)
from hipsense.dashboard.db.tables import therapists


def test_passwords_are_stored_as_salted_argon2id_hashes(sqlite_engine):
    add_therapist(sqlite_engine, "ana", "correct horse battery")
    add_therapist(sqlite_engine, "ben", "correct horse battery")
    with sqlite_engine.connect() as connection:
        hashes = [row.password_hash for row in connection.execute(therapists.select())]
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert hashes[0] != hashes[1]  # salted
    assert authenticate(sqlite_engine, "ana", "correct horse battery").username == "ana"
    assert authenticate(sqlite_engine, "ana", "wrong password!!") is None
    assert authenticate(sqlite_engine, "nobody", "correct horse battery") is None


def test_bad_accounts_are_refused(sqlite_engine):
    add_therapist(sqlite_engine, "ana", "correct horse battery")
    with pytest.raises(AccountError, match="exists"):
        add_therapist(sqlite_engine, "ANA", "another long password")
    with pytest.raises(AccountError, match="at least"):
        add_therapist(sqlite_engine, "cy", "short")
    with pytest.raises(AccountError, match="no user"):
        assign_patient(sqlite_engine, "p-0001", "nobody")


def test_a_therapist_sees_only_their_own_patients(engine):
    ana = add_therapist(engine, "ana", "correct horse battery")
    ben = add_therapist(engine, "ben", "correct horse battery")
    assign_patient(engine, "p-0001", "ana", label="A.B.")
    assign_patient(engine, "p-0002", "ben")
    assert patients_of(engine, ana.id) == [("p-0001", "A.B.")]
    assert patients_of(engine, ben.id) == [("p-0002", None)]
    assert can_see(engine, ana.id, "p-0001") and not can_see(engine, ana.id, "p-0002")
    assert not can_see(engine, ben.id, "p-0001") and not can_see(engine, ben.id, "p-9999")
    assign_patient(engine, "p-0001", "ben")  # handed over
    assert not can_see(engine, ana.id, "p-0001") and can_see(engine, ben.id, "p-0001")


def test_login_sessions_end_on_logout(sqlite_engine):
    ana = add_therapist(sqlite_engine, "ana", "correct horse battery")
    token, session = start_session(sqlite_engine, ana.id)
    assert find_session(sqlite_engine, token) == session
    assert find_session(sqlite_engine, token + "x") is None
    end_session(sqlite_engine, token)
    assert find_session(sqlite_engine, token) is None
