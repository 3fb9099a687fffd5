"""sharing: level and partner agencies on seizures, and the derived share index

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "record_share",
        sa.Column("entity_type", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"]),
        sa.PrimaryKeyConstraint("entity_type", "record_id", "agency_id"),
    )
    op.create_index(
        "ix_record_share_agency", "record_share", ["agency_id", "entity_type", "record_id"]
    )
    with op.batch_alter_table("seizure", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sharing", sa.String(length=16), nullable=False, server_default="own")
        )
        batch_op.add_column(sa.Column("shared_with", sa.JSON(), nullable=True))
    op.create_index(
        "ix_seizure_sharing_seized_at", "seizure", ["sharing", "seized_at", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_seizure_sharing_seized_at", table_name="seizure")
    with op.batch_alter_table("seizure", schema=None) as batch_op:
        batch_op.drop_column("shared_with")
        batch_op.drop_column("sharing")
    op.drop_index("ix_record_share_agency", table_name="record_share")
    op.drop_table("record_share")
