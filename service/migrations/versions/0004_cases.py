"""cases: investigations with member seizures, persons and companies, documents, tasks, notes

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.core.types import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _record_columns(*, updated: bool) -> list[sa.Column[object]]:
    """``version`` and timestamps, as every versioned record has them."""
    columns: list[sa.Column[object]] = [
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
    ]
    if updated:
        columns.append(sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False))
    return columns


def _child_columns() -> list[sa.Column[object]]:
    """Id, case and agency of a record that belongs to a case."""
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), sa.ForeignKey("case.id"), nullable=False),
        sa.Column("agency_id", sa.Uuid(), sa.ForeignKey("agency.id"), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "case",
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("reference", sa.String(length=50), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("lead_investigator_id", sa.Uuid(), sa.ForeignKey("user.id"), nullable=True),
        sa.Column("sharing", sa.String(length=16), nullable=False),
        sa.Column("shared_with", sa.JSON(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), sa.ForeignKey("agency.id"), nullable=False),
        sa.Column("created_by_user_id", sa.Uuid(), sa.ForeignKey("user.id"), nullable=True),
        *_record_columns(updated=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agency_id", "reference", name="uq_case_agency_reference"),
    )
    op.create_index("ix_case_agency_updated", "case", ["agency_id", "updated_at"])
    op.create_index("ix_case_status", "case", ["status"])

    op.create_table(
        "case_seizure",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), sa.ForeignKey("case.id"), nullable=False),
        sa.Column("seizure_id", sa.Uuid(), sa.ForeignKey("seizure.id"), nullable=False),
        sa.Column("agency_id", sa.Uuid(), sa.ForeignKey("agency.id"), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("added_by_user_id", sa.Uuid(), sa.ForeignKey("user.id"), nullable=True),
        sa.Column("removed_at", UtcDateTime(timezone=True), nullable=True),
        *_record_columns(updated=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "seizure_id", name="uq_case_seizure"),
    )
    op.create_index("ix_case_seizure_seizure_id", "case_seizure", ["seizure_id"])

    op.create_table(
        "case_entity",
        *_child_columns(),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("added_by_user_id", sa.Uuid(), sa.ForeignKey("user.id"), nullable=True),
        sa.Column("removed_at", UtcDateTime(timezone=True), nullable=True),
        *_record_columns(updated=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_entity_case_id", "case_entity", ["case_id"])

    op.create_table(
        "case_document",
        *_child_columns(),
        sa.Column("sha256", sa.String(length=64), sa.ForeignKey("blob.sha256"), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("added_by_user_id", sa.Uuid(), sa.ForeignKey("user.id"), nullable=True),
        sa.Column("removed_at", UtcDateTime(timezone=True), nullable=True),
        *_record_columns(updated=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_document_case_id", "case_document", ["case_id"])

    op.create_table(
        "case_task",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("owner_user_id", sa.Uuid(), sa.ForeignKey("user.id"), nullable=False),
        *_child_columns(),
        sa.Column("due_date", sa.String(length=10), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("completed_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("created_by_user_id", sa.Uuid(), sa.ForeignKey("user.id"), nullable=True),
        *_record_columns(updated=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_task_case_id", "case_task", ["case_id"])
    op.create_index("ix_case_task_owner_user_id", "case_task", ["owner_user_id"])

    op.create_table(
        "case_note",
        *_child_columns(),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author_user_id", sa.Uuid(), sa.ForeignKey("user.id"), nullable=True),
        *_record_columns(updated=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_note_case_id", "case_note", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_case_note_case_id", table_name="case_note")
    op.drop_table("case_note")
    op.drop_index("ix_case_task_owner_user_id", table_name="case_task")
    op.drop_index("ix_case_task_case_id", table_name="case_task")
    op.drop_table("case_task")
    op.drop_index("ix_case_document_case_id", table_name="case_document")
    op.drop_table("case_document")
    op.drop_index("ix_case_entity_case_id", table_name="case_entity")
    op.drop_table("case_entity")
    op.drop_index("ix_case_seizure_seizure_id", table_name="case_seizure")
    op.drop_table("case_seizure")
    op.drop_index("ix_case_status", table_name="case")
    op.drop_index("ix_case_agency_updated", table_name="case")
    op.drop_table("case")
