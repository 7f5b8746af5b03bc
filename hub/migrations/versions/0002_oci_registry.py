"""The OCI registry: repositories, blob links, manifests, tags and upload sessions.

Revision ID: 0002
Revises: 0001
Create Date: 2024-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _fk(table: str, column: str, target: str, type_: sa.types.TypeEngine | None = None
        ) -> list[sa.SchemaItem]:
    """A NOT NULL column and its named, cascading foreign key (`fk_TABLE_COLUMN_REFERRED`)."""
    referred = target.split(".")[0]
    return [sa.Column(column, type_ or sa.Integer(), nullable=False),
            sa.ForeignKeyConstraint([column], [target], ondelete="CASCADE",
                                    name=f"fk_{table}_{column}_{referred}")]


def _created(name: str = "created_at") -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "oci_repositories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        *_fk("oci_repositories", "namespace_id", "namespaces.id"),
        _created(),
        sa.PrimaryKeyConstraint("id", name="pk_oci_repositories"),
        sa.UniqueConstraint("name", name="uq_oci_repositories_name"),
    )
    op.create_index("ix_oci_repositories_namespace_id", "oci_repositories", ["namespace_id"])
    op.create_table(
        "oci_blob_links",
        *_fk("oci_blob_links", "repository_id", "oci_repositories.id"),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        _created(),
        sa.PrimaryKeyConstraint("repository_id", "digest", name="pk_oci_blob_links"),
    )
    op.create_table(
        "oci_manifests",
        sa.Column("id", sa.Integer(), nullable=False),
        *_fk("oci_manifests", "repository_id", "oci_repositories.id"),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("media_type", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("artifact_type", sa.String(255), nullable=True),
        sa.Column("subject_digest", sa.String(71), nullable=True),
        sa.Column("annotations", sa.JSON(), nullable=False),
        _created(),
        sa.PrimaryKeyConstraint("id", name="pk_oci_manifests"),
        sa.UniqueConstraint("repository_id", "digest",
                            name="uq_oci_manifests_repository_id_digest"),
    )
    op.create_index("ix_oci_manifests_repository_id", "oci_manifests", ["repository_id"])
    op.create_index("ix_oci_manifests_subject_digest", "oci_manifests", ["subject_digest"])
    op.create_table(
        "oci_tags",
        sa.Column("id", sa.Integer(), nullable=False),
        *_fk("oci_tags", "repository_id", "oci_repositories.id"),
        sa.Column("name", sa.String(128), nullable=False),
        *_fk("oci_tags", "manifest_id", "oci_manifests.id"),
        _created("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_oci_tags"),
        sa.UniqueConstraint("repository_id", "name", name="uq_oci_tags_repository_id_name"),
    )
    op.create_index("ix_oci_tags_repository_id", "oci_tags", ["repository_id"])
    op.create_index("ix_oci_tags_manifest_id", "oci_tags", ["manifest_id"])
    op.create_table(
        "oci_uploads",
        sa.Column("id", sa.String(32), nullable=False),
        *_fk("oci_uploads", "repository_id", "oci_repositories.id"),
        sa.Column("size", sa.BigInteger(), nullable=False),
        _created(),
        _created("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_oci_uploads"),
    )
    op.create_index("ix_oci_uploads_repository_id", "oci_uploads", ["repository_id"])
    op.create_index("ix_oci_uploads_updated_at", "oci_uploads", ["updated_at"])
    op.create_table(
        "oci_upload_parts",
        *_fk("oci_upload_parts", "upload_id", "oci_uploads.id", sa.String(32)),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("upload_id", "seq", name="pk_oci_upload_parts"),
    )


def downgrade() -> None:
    for table in ("oci_upload_parts", "oci_uploads", "oci_tags", "oci_manifests",
                  "oci_blob_links", "oci_repositories"):
        op.drop_table(table)
