"""End-to-end delivery: session ids as long as the schema allows, acknowledgement progress,
dead letters.

Revision ID: 0003
Revises: 0002

* ``events.session_id`` was varchar(26) while the schema allows 64 characters: on PostgreSQL
  one such message made every write of its batch fail, for ever.
* ``delivery_progress`` starts, for patients already known, at the highest ``seq`` stored:
  before this revision a Pi forgot each result at the broker's PUBACK, so a gap from that time
  can never be filled, and waiting for it would keep every later result in the Pi's outbox.
"""

import sqlalchemy as sa
from alembic import op

from hipsense.dashboard.db.tables import RowNumber, UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # On SQLite (which does not enforce the length) this copies the table once, so that the
    # declared schema is the same on both databases.
    with op.batch_alter_table("events") as batch:
        batch.alter_column("session_id", type_=sa.String(64), existing_type=sa.String(26), existing_nullable=True)
    op.create_index("ix_events_patient_seq", "events", ["patient", "seq"])
    op.create_table(
        "delivery_progress",
        sa.Column("patient", sa.String(64), nullable=False),
        sa.Column("stored_seq", sa.BigInteger, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("patient", name="pk_delivery_progress"),
    )
    op.create_table(
        "dead_letters",
        sa.Column("row_no", RowNumber, primary_key=True, autoincrement=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("patient", sa.String(64), nullable=True),
        sa.Column("seq", sa.BigInteger, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("row_no", name="pk_dead_letters"),
        sa.UniqueConstraint("digest", name="uq_dead_letters_digest"),
    )
    op.create_index("ix_dead_letters_patient_seq", "dead_letters", ["patient", "seq"])
    op.execute(
        "INSERT INTO delivery_progress (patient, stored_seq, updated_at) "
        "SELECT patient, MAX(seq), MAX(received_at) FROM events GROUP BY patient"
    )


def downgrade() -> None:
    op.drop_table("dead_letters")
    op.drop_table("delivery_progress")
    op.drop_index("ix_events_patient_seq", "events")
    with op.batch_alter_table("events") as batch:
        batch.alter_column("session_id", type_=sa.String(26), existing_type=sa.String(64), existing_nullable=True)
