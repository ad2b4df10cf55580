"""Prescriptions: remember whether the broker confirmed a version.

Revision ID: 0002
Revises: 0001

A version the broker did not acknowledge may still reach the Pi later (paho keeps a QoS 1
message it could not send yet), so its number must never be given to another prescription.
Such rows stay, marked unconfirmed, and the prescription in force is the newest confirmed one.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("prescriptions") as batch:
        batch.add_column(sa.Column("confirmed", sa.Boolean, nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("prescriptions") as batch:
        batch.drop_column("confirmed")
