"""OCI upload sessions record the blob store's handle (an S3 multipart upload id) and, while
their bytes came in one chunk, that chunk's digest (so closing them hashes nothing again).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("oci_uploads") as batch:
        batch.add_column(sa.Column("store_handle", sa.String(1024), nullable=True))
        batch.add_column(sa.Column("digest", sa.String(71), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("oci_uploads") as batch:
        batch.drop_column("digest")
        batch.drop_column("store_handle")
