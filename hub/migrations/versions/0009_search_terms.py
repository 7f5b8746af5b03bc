"""The search vocabulary, `functions_fts_terms`: every word the full-text index holds, so a
query word that matches nothing can be corrected to a known word one typo away.

Written by fnhub.hub.services.search.index_function (insert-only: a word stays after the last
function using it goes, and then merely corrects to nothing); existing functions' words are
added here, split as the search service splits them. On PostgreSQL the column sorts bytewise
(COLLATE "C"), so a prefix is a range of the primary key.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _terms(*texts: str) -> set[str]:
    return {word for text in texts for word in re.findall(r"[^\W_]+", text.lower())
            if 3 <= len(word) <= 32 and not word.isdigit()}


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute('CREATE TABLE functions_fts_terms (term varchar(32) COLLATE "C" '
                   "CONSTRAINT pk_functions_fts_terms PRIMARY KEY)")
    else:
        op.execute("CREATE TABLE functions_fts_terms (term TEXT NOT NULL "
                   "CONSTRAINT pk_functions_fts_terms PRIMARY KEY) WITHOUT ROWID")
    rows = bind.execute(sa.text(
        "SELECT f.name, n.name, f.description, f.kind, f.categories, f.labels "
        "FROM functions f JOIN namespaces n ON n.id = f.namespace_id WHERE f.live_versions > 0"
    )).all()
    words: set[str] = set()
    for name, namespace, description, kind, categories, labels in rows:
        labels = _json(labels) or {}
        words |= _terms(name, namespace, description or "", kind,
                        " ".join([*(_json(categories) or []), *labels, *labels.values()]))
    if words:
        bind.execute(sa.text("INSERT INTO functions_fts_terms (term) VALUES (:term)"),
                     [{"term": word} for word in sorted(words)])


def downgrade() -> None:
    op.execute("DROP TABLE functions_fts_terms")
