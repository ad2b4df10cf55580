"""A secret shared-subscription group for the dashboard instances.

Revision ID: 0004
Revises: 0003

Mosquitto gives each message of a shared subscription to one member of the group and checks
that member's read ACL only then: a member that may not read it makes the broker drop the
message for the whole group. The group was the constant ``hipsense-dashboard``, so any Pi's
credentials could join it and have a share of every patient's results thrown away after the
broker's PUBACK. The group is now ``hipsense-dashboard-<random>``, the random part kept here,
where every instance on this database reads it and no Pi can.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dashboard_settings",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_dashboard_settings"),
    )


def downgrade() -> None:
    op.drop_table("dashboard_settings")
