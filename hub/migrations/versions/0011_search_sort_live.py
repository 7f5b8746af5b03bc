"""The search sorts' indexes carry `live_versions`: (name | downloads | updated_at,
live_versions). A sorted page walks its index and tests each entry for being listed and
for its filters (category, matched words: by id, which every index entry holds) before
reading the function's row, so a row is read only for a match. With the one-column indexes
of 0010 every entry walked read its row first: a category sorted by name, whose matches sit
late in the name order, read most of the catalog's rows for one page.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_COLUMNS = ("name", "downloads", "updated_at")


def upgrade() -> None:
    for column in _COLUMNS:
        op.drop_index(f"ix_functions_{column}", table_name="functions")
        op.create_index(f"ix_functions_by_{column}", "functions", [column, "live_versions"])


def downgrade() -> None:
    for column in _COLUMNS:
        op.drop_index(f"ix_functions_by_{column}", table_name="functions")
        op.create_index(f"ix_functions_{column}", "functions", [column])
