"""PostgreSQL full-text search: `functions_fts` (a tsvector per listed function, GIN-indexed).

SQLite keeps its FTS5 table from 0001; this revision does nothing there. The documents are
written by fnhub.hub.services.search.index_function; existing functions are indexed here,
with the same words (name, namespace, description, categories, labels, kind).

Revision ID: 0004
Revises: 0002
Create Date: 2024-11-29
"""

from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def _words(text: str) -> str:
    return " ".join(re.findall(r"[^\W_]+", text.lower()))


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_table(
        "functions_fts",
        sa.Column("function_id", sa.Integer(), nullable=False),
        sa.Column("document", postgresql.TSVECTOR(), nullable=False),
        sa.ForeignKeyConstraint(["function_id"], ["functions.id"], ondelete="CASCADE",
                                name="fk_functions_fts_function_id_functions"),
        sa.PrimaryKeyConstraint("function_id", name="pk_functions_fts"),
    )
    op.create_index("ix_functions_fts_document", "functions_fts", ["document"],
                    postgresql_using="gin")
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT f.id, f.name, n.name, f.description, f.kind, f.categories, f.labels "
        "FROM functions f JOIN namespaces n ON n.id = f.namespace_id WHERE f.live_versions > 0"
    )).all()
    for fid, name, namespace, description, kind, categories, labels in rows:
        labels = _json(labels) or {}
        keywords = [*(_json(categories) or []), *labels, *labels.values(), kind]
        bind.execute(sa.text(
            "INSERT INTO functions_fts (function_id, document) VALUES (:id, "
            "setweight(to_tsvector('simple', :name), 'A') || "
            "setweight(to_tsvector('simple', :description), 'B') || "
            "setweight(to_tsvector('simple', :keywords), 'B') || "
            "setweight(to_tsvector('simple', :namespace), 'C'))"
        ), {"id": fid, "name": _words(name), "description": _words(description or ""),
            "keywords": _words(" ".join(keywords)), "namespace": _words(namespace)})


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_table("functions_fts")
