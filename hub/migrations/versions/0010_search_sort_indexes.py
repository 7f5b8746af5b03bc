"""Indexes for every search sort (downloads, updated, name), so a page of a large catalog is
read in index order and the sort stops at the page's end instead of ordering every match.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_COLUMNS = ("downloads", "updated_at", "name")


def upgrade() -> None:
    for column in _COLUMNS:
        op.create_index(f"ix_functions_{column}", "functions", [column])


def downgrade() -> None:
    for column in _COLUMNS:
        op.drop_index(f"ix_functions_{column}", table_name="functions")
