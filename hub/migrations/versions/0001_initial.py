"""Initial schema: users, tokens, namespaces, keys, functions, versions, tags, search index.

Revision ID: 0001
Revises:
Create Date: 2024-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), nullable=False)


def _fk(table: str, column: str, target: str, *, nullable: bool = False,
        ondelete: str = "CASCADE") -> list[sa.SchemaItem]:
    """An integer column and its named foreign key (`fk_TABLE_COLUMN_REFERRED`)."""
    referred = target.split(".")[0]
    return [sa.Column(column, sa.Integer(), nullable=nullable),
            sa.ForeignKeyConstraint([column], [target], ondelete=ondelete,
                                    name=f"fk_{table}_{column}_{referred}")]


def upgrade() -> None:
    op.create_table(
        "users",
        _id(),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )
    op.create_table(
        "namespaces",
        _id(),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_namespaces"),
        sa.UniqueConstraint("name", name="uq_namespaces_name"),
    )
    op.create_table(
        "tokens",
        _id(),
        *_fk("tokens", "user_id", "users.id"),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_tokens_token_hash"),
    )
    op.create_index("ix_tokens_user_id", "tokens", ["user_id"])
    op.create_table(
        "namespace_owners",
        *_fk("namespace_owners", "namespace_id", "namespaces.id"),
        *_fk("namespace_owners", "user_id", "users.id"),
        sa.PrimaryKeyConstraint("namespace_id", "user_id", name="pk_namespace_owners"),
    )
    op.create_table(
        "publisher_keys",
        _id(),
        *_fk("publisher_keys", "namespace_id", "namespaces.id"),
        sa.Column("keyid", sa.String(64), nullable=False),
        sa.Column("public_key", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_publisher_keys"),
        sa.UniqueConstraint("namespace_id", "keyid", name="uq_publisher_keys_namespace_id_keyid"),
    )
    op.create_index("ix_publisher_keys_namespace_id", "publisher_keys", ["namespace_id"])
    op.create_table(
        "functions",
        _id(),
        *_fk("functions", "namespace_id", "namespaces.id"),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("latest_version", sa.String(200), nullable=True),
        sa.Column("live_versions", sa.Integer(), nullable=False),
        sa.Column("downloads", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_functions"),
        sa.UniqueConstraint("namespace_id", "name", name="uq_functions_namespace_id_name"),
    )
    op.create_index("ix_functions_namespace_id", "functions", ["namespace_id"])
    op.create_table(
        "function_categories",
        *_fk("function_categories", "function_id", "functions.id"),
        sa.Column("category", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("function_id", "category", name="pk_function_categories"),
    )
    op.create_index("ix_function_categories_category", "function_categories", ["category"])
    op.create_table(
        "versions",
        _id(),
        *_fk("versions", "function_id", "functions.id"),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("package_digest", sa.String(71), nullable=False),
        sa.Column("package_size", sa.BigInteger(), nullable=False),
        sa.Column("envelope", sa.JSON(), nullable=False),
        sa.Column("keyids", sa.JSON(), nullable=False),
        sa.Column("image_ref", sa.String(500), nullable=True),
        sa.Column("image_digest", sa.String(71), nullable=True),
        sa.Column("yanked", sa.Boolean(), nullable=False),
        sa.Column("yank_reason", sa.String(1000), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        *_fk("versions", "published_by", "users.id", nullable=True, ondelete="SET NULL"),
        sa.Column("downloads", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_versions"),
        sa.UniqueConstraint("function_id", "version", name="uq_versions_function_id_version"),
    )
    op.create_index("ix_versions_function_id", "versions", ["function_id"])
    op.create_index("ix_versions_package_digest", "versions", ["package_digest"])
    op.create_table(
        "tags",
        _id(),
        *_fk("tags", "function_id", "functions.id"),
        sa.Column("name", sa.String(64), nullable=False),
        *_fk("tags", "version_id", "versions.id"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tags"),
        sa.UniqueConstraint("function_id", "name", name="uq_tags_function_id_name"),
    )
    op.create_index("ix_tags_function_id", "tags", ["function_id"])
    op.create_index("ix_tags_version_id", "tags", ["version_id"])
    if op.get_bind().dialect.name == "sqlite":
        # The search index; rowid = functions.id, kept in step by fnhub.hub.services.search.
        op.execute(
            "CREATE VIRTUAL TABLE functions_fts USING fts5("
            "name, namespace, description, keywords, tokenize = 'unicode61')"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE functions_fts")
    for table in ("tags", "versions", "function_categories", "functions", "publisher_keys",
                  "namespace_owners", "tokens", "namespaces", "users"):
        op.drop_table(table)
