"""linking_alerts: links across agencies under sharing, spectral fingerprints, the durable
correlation queue, and alerts

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

import service.core.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Index keys per audience: existing keys are their owner's (its audience until re-indexed).
    with op.batch_alter_table("link_key", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audience_id", sa.Uuid(), nullable=True))
    op.execute("UPDATE link_key SET audience_id = agency_id")
    with op.batch_alter_table("link_key", schema=None) as batch_op:
        batch_op.alter_column("audience_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.drop_index("ix_link_key_lookup")
        # seizure_id included: the lookups are index-only scans on PostgreSQL.
        batch_op.create_index(
            "ix_link_key_audience",
            ["audience_id", "key", "at"],
            unique=False,
            postgresql_include=["seizure_id"],
        )
        batch_op.create_index(
            "ix_link_key_key", ["key", "at"], unique=False, postgresql_include=["seizure_id"]
        )

    # One link row per agency and pair: each agency decides on its own.
    with op.batch_alter_table("seizure_link", schema=None) as batch_op:
        batch_op.drop_constraint("uq_seizure_link_pair", type_="unique")
        batch_op.create_unique_constraint(
            "uq_seizure_link_agency_pair", ["agency_id", "seizure_a_id", "seizure_b_id"]
        )
        batch_op.create_index(
            batch_op.f("ix_seizure_link_seizure_a_id"), ["seizure_a_id"], unique=False
        )

    op.create_table(
        "link_spectrum",
        sa.Column("field_test_id", sa.Uuid(), nullable=False),
        sa.Column("seizure_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("spectrum_sha256", sa.String(length=64), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=True),
        sa.Column("bands", sa.String(length=400), nullable=False),
        sa.ForeignKeyConstraint(["field_test_id"], ["field_test.id"]),
        sa.ForeignKeyConstraint(["seizure_id"], ["seizure.id"]),
        sa.PrimaryKeyConstraint("field_test_id"),
    )
    with op.batch_alter_table("link_spectrum", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_link_spectrum_seizure_id"), ["seizure_id"], unique=False
        )

    op.create_table(
        "link_queue",
        sa.Column("seizure_id", sa.Uuid(), nullable=False),
        sa.Column("enqueued_at", service.core.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["seizure_id"], ["seizure.id"]),
        sa.PrimaryKeyConstraint("seizure_id"),
    )

    op.create_table(
        "link_alert",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("seizure_id", sa.Uuid(), nullable=False),
        sa.Column("other_agency_id", sa.Uuid(), nullable=False),
        sa.Column("other_seizure_id", sa.Uuid(), nullable=False),
        sa.Column("link_id", sa.Uuid(), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=True),
        sa.Column("strength", sa.Float(), nullable=False),
        sa.Column("read_at", service.core.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("read_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", service.core.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", service.core.types.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"]),
        sa.ForeignKeyConstraint(["link_id"], ["seizure_link.id"]),
        sa.ForeignKeyConstraint(["other_agency_id"], ["agency.id"]),
        sa.ForeignKeyConstraint(["other_seizure_id"], ["seizure.id"]),
        sa.ForeignKeyConstraint(["read_by_user_id"], ["user.id"]),
        sa.ForeignKeyConstraint(["seizure_id"], ["seizure.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "agency_id", "seizure_id", "other_seizure_id", name="uq_link_alert_pair"
        ),
    )
    op.create_index(
        "ix_link_alert_agency", "link_alert", ["agency_id", "read_at", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_link_alert_agency", table_name="link_alert")
    op.drop_table("link_alert")
    op.drop_table("link_queue")
    with op.batch_alter_table("link_spectrum", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_link_spectrum_seizure_id"))
    op.drop_table("link_spectrum")
    # Pairs seen by two agencies keep one row (the older) under the old constraint.
    op.execute(
        "DELETE FROM seizure_link WHERE id IN (SELECT l.id FROM seizure_link l "
        "JOIN seizure_link m ON m.seizure_a_id = l.seizure_a_id "
        "AND m.seizure_b_id = l.seizure_b_id AND m.created_at < l.created_at)"
    )
    with op.batch_alter_table("seizure_link", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_seizure_link_seizure_a_id"))
        batch_op.drop_constraint("uq_seizure_link_agency_pair", type_="unique")
        batch_op.create_unique_constraint("uq_seizure_link_pair", ["seizure_a_id", "seizure_b_id"])
    # Partners' copies of keys go; a seizure shared with all keeps its only (everyone's) keys.
    op.get_bind().execute(
        sa.text(
            "DELETE FROM link_key WHERE audience_id <> agency_id AND audience_id <> :everyone"
        ).bindparams(sa.bindparam("everyone", uuid.UUID(int=0), type_=sa.Uuid()))
    )
    with op.batch_alter_table("link_key", schema=None) as batch_op:
        batch_op.drop_index("ix_link_key_key")
        batch_op.drop_index("ix_link_key_audience")
        batch_op.create_index("ix_link_key_lookup", ["agency_id", "key", "at"], unique=False)
        batch_op.drop_column("audience_id")
