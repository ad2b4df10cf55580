"""Server-side login sessions: a random token in the cookie, its SHA-256 in the database.

Each session also holds the CSRF token that every POST form must echo back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets

from sqlalchemy import Engine, delete, select

from hipsense.dashboard.db.tables import login_sessions

SESSION_LIFETIME = dt.timedelta(hours=12)


@dataclasses.dataclass(frozen=True, slots=True)
class LoginSession:
    therapist_id: int
    csrf_token: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def start_session(engine: Engine, therapist_id: int) -> tuple[str, LoginSession]:
    """Create a session; return the cookie token (shown once, never stored) and the session."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as connection:
        connection.execute(delete(login_sessions).where(login_sessions.c.expires_at < now))
        connection.execute(login_sessions.insert().values(
            token_hash=_digest(token), therapist_id=therapist_id, csrf_token=csrf,
            created_at=now, expires_at=now + SESSION_LIFETIME,
        ))
    return token, LoginSession(therapist_id, csrf)


def find_session(engine: Engine, token: str | None) -> LoginSession | None:
    if not token or len(token) > 128:
        return None
    now = dt.datetime.now(dt.timezone.utc)
    with engine.connect() as connection:
        row = connection.execute(
            select(login_sessions.c.therapist_id, login_sessions.c.csrf_token)
            .where(login_sessions.c.token_hash == _digest(token), login_sessions.c.expires_at > now)
        ).first()
    return None if row is None else LoginSession(row.therapist_id, row.csrf_token)


def end_session(engine: Engine, token: str | None) -> None:
    if token:
        with engine.begin() as connection:
            connection.execute(delete(login_sessions).where(login_sessions.c.token_hash == _digest(token)))
