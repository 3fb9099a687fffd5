"""exchange: partner agencies' keys, issued and received packages, provenance of imports

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.core.types import BigIntPK, UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exchange_partner",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("partner_agency_id", sa.Uuid(), nullable=False),
        sa.Column("signing_key", sa.String(length=64), nullable=False),
        sa.Column("signing_key_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("encryption_key", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"]),
        sa.ForeignKeyConstraint(["partner_agency_id"], ["agency.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agency_id", "partner_agency_id", name="uq_exchange_partner_pair"),
    )
    op.create_index("ix_exchange_partner_agency_id", "exchange_partner", ["agency_id"])
    op.create_table(
        "exchange_package",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("package_id", sa.Uuid(), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("partner_agency_id", sa.Uuid(), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("key_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("encrypted", sa.Boolean(), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"]),
        sa.ForeignKeyConstraint(["partner_agency_id"], ["agency.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("package_id", "direction", "agency_id", name="uq_exchange_package"),
    )
    op.create_index("ix_exchange_package_agency_id", "exchange_package", ["agency_id"])
    op.create_index("ix_exchange_package_package_id", "exchange_package", ["package_id"])
    op.create_table(
        "exchange_provenance",
        sa.Column("id", BigIntPK, nullable=False),
        sa.Column("entity_type", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("remote_version", sa.Integer(), nullable=False),
        sa.Column("local_version", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("exchange_package_id", sa.Uuid(), nullable=False),
        sa.Column("package_id", sa.Uuid(), nullable=False),
        sa.Column("issuer_agency_id", sa.Uuid(), nullable=False),
        sa.Column("recipient_agency_id", sa.Uuid(), nullable=False),
        sa.Column("key_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("record_sha256", sa.String(length=64), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["exchange_package_id"], ["exchange_package.id"]),
        sa.ForeignKeyConstraint(["issuer_agency_id"], ["agency.id"]),
        sa.ForeignKeyConstraint(["recipient_agency_id"], ["agency.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_exchange_provenance_entity", "exchange_provenance", ["entity_type", "entity_id"]
    )
    op.create_index(
        "ix_exchange_provenance_exchange_package_id",
        "exchange_provenance",
        ["exchange_package_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_exchange_provenance_exchange_package_id", table_name="exchange_provenance")
    op.drop_index("ix_exchange_provenance_entity", table_name="exchange_provenance")
    op.drop_table("exchange_provenance")
    op.drop_index("ix_exchange_package_package_id", table_name="exchange_package")
    op.drop_index("ix_exchange_package_agency_id", table_name="exchange_package")
    op.drop_table("exchange_package")
    op.drop_index("ix_exchange_partner_agency_id", table_name="exchange_partner")
    op.drop_table("exchange_partner")
