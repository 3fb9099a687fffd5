"""write_path: cheaper spectrum storage on PostgreSQL

Raw spectra are float64 bytes, which do not compress: PostgreSQL would try (pglz) on
every insert of a field test and give up. ``STORAGE EXTERNAL`` stores them out of line
without the attempt. SQLite has no such setting.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_SPECTRUM_COLUMNS = ("axis_f64le", "intensities_f64le")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in _SPECTRUM_COLUMNS:
        op.execute(f"ALTER TABLE field_test ALTER COLUMN {column} SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in _SPECTRUM_COLUMNS:
        op.execute(f"ALTER TABLE field_test ALTER COLUMN {column} SET STORAGE EXTENDED")
