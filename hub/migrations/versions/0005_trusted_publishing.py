"""Trusted publishing: CI workflows allowed to publish by OIDC token, and used token ids.

Revision ID: 0005
Revises: 0004
Create Date: 2024-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trusted_publishers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("namespace_id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(255), nullable=False),
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("workflow", sa.String(255), nullable=False),
        sa.Column("ref", sa.String(255), nullable=False),
        sa.Column("environment", sa.String(255), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["namespace_id"], ["namespaces.id"], ondelete="CASCADE",
                                name="fk_trusted_publishers_namespace_id_namespaces"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], ondelete="CASCADE",
                                name="fk_trusted_publishers_created_by_users"),
        sa.PrimaryKeyConstraint("id", name="pk_trusted_publishers"),
        sa.UniqueConstraint("namespace_id", "issuer", "repository", "workflow", "ref",
                            "environment", name="uq_trusted_publishers_rule"),
    )
    op.create_index("ix_trusted_publishers_namespace_id", "trusted_publishers",
                    ["namespace_id"])
    op.create_index("ix_trusted_publishers_created_by", "trusted_publishers", ["created_by"])
    op.create_table(
        "oidc_token_uses",
        sa.Column("issuer", sa.String(255), nullable=False),
        sa.Column("jti", sa.String(255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("issuer", "jti", name="pk_oidc_token_uses"),
    )
    op.create_index("ix_oidc_token_uses_expires_at", "oidc_token_uses", ["expires_at"])


def downgrade() -> None:
    op.drop_table("oidc_token_uses")
    op.drop_table("trusted_publishers")
