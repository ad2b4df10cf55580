"""Results that will never arrive: recorded when a Pi's status moves the acknowledgement past
numbers that never came (``delivery_gaps``).

Revision ID: 0005
Revises: 0004

Before, the acknowledgement moved past them silently: a result dropped at a Pi's hard cap, or
left in an outbox file set aside as corrupt, was gone without anyone on the dashboard's side
being told.
"""

import sqlalchemy as sa
from alembic import op

from hipsense.dashboard.db.tables import RowNumber, UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_gaps",
        sa.Column("row_no", RowNumber, primary_key=True, autoincrement=True),
        sa.Column("patient", sa.String(64), nullable=False),
        sa.Column("after_seq", sa.BigInteger, nullable=False),
        sa.Column("before_seq", sa.BigInteger, nullable=False),
        sa.Column("missing", sa.BigInteger, nullable=False),
        sa.Column("detected_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("row_no", name="pk_delivery_gaps"),
        sa.UniqueConstraint("patient", "after_seq", name="uq_delivery_gaps_patient_after_seq"),
    )


def downgrade() -> None:
    op.drop_table("delivery_gaps")
