"""Table definitions (SQLAlchemy Core). Alembic revisions in ``migrations/`` create them.

The same metadata serves SQLite (the default, one file) and PostgreSQL (a clinic). Only
portable types are used; instants go through :class:`UtcDateTime` so both return aware UTC
datetimes and sort correctly (SQLite has no time-zone type).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.sql.expression import true
from sqlalchemy.types import TypeDecorator

# Named constraints, so a migration on PostgreSQL and on SQLite names them the same way.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BIGINT on PostgreSQL; on SQLite only "INTEGER PRIMARY KEY" autoincrements.
RowNumber = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator):
    """An aware UTC datetime in, an aware UTC datetime out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the dashboard stores UTC instants only")
        value = value.astimezone(dt.timezone.utc)
        # SQLite keeps the text as given; dropping the offset keeps every row in one format,
        # so text order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


therapists = Table(
    "therapists",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(128), nullable=False),
    Column("password_hash", String(256), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# A patient is known by pseudonym only. ``label`` is the therapist's own reminder (initials,
# a room number); the name-to-pseudonym mapping stays in the clinic's records.
patients = Table(
    "patients",
    metadata,
    Column("patient_id", String(64), primary_key=True),
    Column("therapist_id", Integer, ForeignKey("therapists.id", ondelete="SET NULL"), nullable=True, index=True),
    Column("label", String(128), nullable=True),
    Column("first_seen", UtcDateTime, nullable=False),
)

# One row per result message (rep, hold, set, session, pain). ``message_id`` is unique: the
# protocol delivers at least once, and this constraint plus insert-or-ignore stores it once.
# ``row_no`` is the arrival order, used only to find "rows stored since I last looked";
# everything shown to a person is ordered by event time and ``seq``.
events = Table(
    "events",
    metadata,
    Column("row_no", RowNumber, primary_key=True, autoincrement=True),
    Column("message_id", String(26), nullable=False),
    Column("patient", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("session_id", String(64), nullable=True),  # common.json: up to 64 (revision 0003)
    Column("exercise", String(64), nullable=True),
    Column("side", String(8), nullable=True),
    Column("t_start", UtcDateTime, nullable=False),
    Column("t_end", UtcDateTime, nullable=False),
    Column("payload", Text, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    UniqueConstraint("message_id"),
    Index("ix_events_patient_t_start", "patient", "t_start"),
    Index("ix_events_patient_row_no", "patient", "row_no"),
    Index("ix_events_patient_seq", "patient", "seq"),
)

# Per patient, the highest ``seq`` up to which every result is stored (in ``events``) or
# dead-lettered: what the dashboard acknowledges end to end on hipsense/v1/<patient>/stored.
# Only grows; several dashboard instances may advance it at once (revision 0003).
delivery_progress = Table(
    "delivery_progress",
    metadata,
    Column("patient", String(64), primary_key=True),
    Column("stored_seq", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Values every dashboard instance on this database must share and no Pi may know (revision
# 0004): ``share_group``, the name of the shared subscription the instances split results
# through. A Pi that knew it could join the group, and Mosquitto would drop the results it
# hands that Pi (its ACL denies the read) instead of giving them to a dashboard.
dashboard_settings = Table(
    "dashboard_settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# Results that will never arrive (revision 0005): a Pi's status said it holds nothing below
# ``before_seq`` (outbox_first_seq) while ``missing`` numbers after ``after_seq`` (the
# acknowledgement then) had not arrived: dropped at its outbox's hard cap, or only in an outbox
# file it set aside as corrupt (hipsense dashboard import-outbox). The acknowledgement moves
# past them; this is what tells the therapist and the operator.
delivery_gaps = Table(
    "delivery_gaps",
    metadata,
    Column("row_no", RowNumber, primary_key=True, autoincrement=True),
    Column("patient", String(64), nullable=False),
    Column("after_seq", BigInteger, nullable=False),
    Column("before_seq", BigInteger, nullable=False),
    Column("missing", BigInteger, nullable=False),
    Column("detected_at", UtcDateTime, nullable=False),
    UniqueConstraint("patient", "after_seq"),
)

# Messages that could not be stored: refused by validation (malformed, implausible dates) or by
# the database. Kept with the reason for the operator (the monitoring page lists them), so one
# bad message never stops the rest. ``patient`` comes from the topic (the broker's ACL vouches
# for it), ``seq`` from the payload if it has a usable one; ``digest`` (SHA-256 of topic and
# payload) stores a redelivered message once (revision 0003).
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("row_no", RowNumber, primary_key=True, autoincrement=True),
    Column("digest", String(64), nullable=False),
    Column("topic", Text, nullable=False),
    Column("patient", String(64), nullable=True),
    Column("seq", BigInteger, nullable=True),
    Column("reason", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    UniqueConstraint("digest"),
    Index("ix_dead_letters_patient_seq", "patient", "seq"),
)

# The newest status (online/offline) of each Pi.
device_status = Table(
    "device_status",
    metadata,
    Column("patient", String(64), primary_key=True),
    Column("online", Boolean, nullable=False),
    Column("status_t", UtcDateTime, nullable=True),
    Column("received_at", UtcDateTime, nullable=False),
    Column("payload", Text, nullable=False),
)

# Every prescription the dashboard published; the newest confirmed version is in force.
prescriptions = Table(
    "prescriptions",
    metadata,
    Column("patient", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("published_at", UtcDateTime, nullable=False),
    Column("published_by", Integer, ForeignKey("therapists.id", ondelete="SET NULL"), nullable=True),
    Column("payload", Text, nullable=False),
    # False while waiting for the broker, and forever if it never confirmed (revision 0002).
    Column("confirmed", Boolean, nullable=False, server_default=true()),
)

# Server-side login sessions: the cookie carries a random token, the table its SHA-256, so a
# leaked database does not hand out live sessions, and logging out really ends one.
login_sessions = Table(
    "login_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("therapist_id", Integer, ForeignKey("therapists.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)
