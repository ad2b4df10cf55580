"""The first schema: therapists, patients, events, device status, prescriptions, logins.

Revision ID: 0001
Revises:

Spelled out column by column (not created from tables.py) so that this revision stays what
it was when tables.py changes; a later change gets its own revision.
"""

import sqlalchemy as sa
from alembic import op

from hipsense.dashboard.db.tables import RowNumber, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "therapists",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_therapists"),
        sa.UniqueConstraint("username", name="uq_therapists_username"),
    )
    op.create_table(
        "patients",
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("therapist_id", sa.Integer, nullable=True),
        sa.Column("label", sa.String(128), nullable=True),
        sa.Column("first_seen", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("patient_id", name="pk_patients"),
        sa.ForeignKeyConstraint(["therapist_id"], ["therapists.id"], ondelete="SET NULL",
                                name="fk_patients_therapist_id_therapists"),
    )
    op.create_index("ix_patients_therapist_id", "patients", ["therapist_id"])
    op.create_table(
        "events",
        sa.Column("row_no", RowNumber, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(26), nullable=False),
        sa.Column("patient", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("session_id", sa.String(26), nullable=True),
        sa.Column("exercise", sa.String(64), nullable=True),
        sa.Column("side", sa.String(8), nullable=True),
        sa.Column("t_start", UtcDateTime, nullable=False),
        sa.Column("t_end", UtcDateTime, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("row_no", name="pk_events"),
        sa.UniqueConstraint("message_id", name="uq_events_message_id"),
    )
    op.create_index("ix_events_patient_t_start", "events", ["patient", "t_start"])
    op.create_index("ix_events_patient_row_no", "events", ["patient", "row_no"])
    op.create_table(
        "device_status",
        sa.Column("patient", sa.String(64), nullable=False),
        sa.Column("online", sa.Boolean, nullable=False),
        sa.Column("status_t", UtcDateTime, nullable=True),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("patient", name="pk_device_status"),
    )
    op.create_table(
        "prescriptions",
        sa.Column("patient", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("published_at", UtcDateTime, nullable=False),
        sa.Column("published_by", sa.Integer, nullable=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("patient", "version", name="pk_prescriptions"),
        sa.ForeignKeyConstraint(["published_by"], ["therapists.id"], ondelete="SET NULL",
                                name="fk_prescriptions_published_by_therapists"),
    )
    op.create_table(
        "login_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("therapist_id", sa.Integer, nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_login_sessions"),
        sa.ForeignKeyConstraint(["therapist_id"], ["therapists.id"], ondelete="CASCADE",
                                name="fk_login_sessions_therapist_id_therapists"),
    )


def downgrade() -> None:
    for table in ("login_sessions", "prescriptions", "device_status", "events", "patients", "therapists"):
        op.drop_table(table)
