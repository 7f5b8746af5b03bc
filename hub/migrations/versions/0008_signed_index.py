"""The signed index: each function's serial, and the hub's index keys with their rotations.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("functions") as batch:
        batch.add_column(sa.Column("index_serial", sa.BigInteger(), nullable=False,
                                   server_default="0"))
    with op.batch_alter_table("functions") as batch:
        batch.alter_column("index_serial", server_default=None)
    op.create_table(
        "index_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("keyid", sa.String(64), nullable=False),
        sa.Column("public_key", sa.String(100), nullable=False),
        sa.Column("rotation", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_index_keys"),
        sa.UniqueConstraint("keyid", name="uq_index_keys_keyid"),
    )


def downgrade() -> None:
    op.drop_table("index_keys")
    with op.batch_alter_table("functions") as batch:
        batch.drop_column("index_serial")
