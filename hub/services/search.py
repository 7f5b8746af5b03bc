"""Search over functions, and the full-text index behind it.

On SQLite the index is the FTS5 table `functions_fts` (rowid = functions.id), created by the
first migration; on PostgreSQL it is the table `functions_fts` (function_id, document
tsvector) with a GIN index, created by migration 0004. Either is rewritten here whenever a
function's displayed version changes. Results rank by relevance (bm25 on SQLite, ts_rank on
PostgreSQL; a name match weighs most), then downloads. The user's words never reach either
engine as syntax: on SQLite each is quoted, on PostgreSQL the query is built from bare
alphanumeric words, and every word is prefix-matched, so `q` may contain anything.
`_text_match` and `index_function` are the only dialect-specific code.
"""

from __future__ import annotations

import re
from typing import Any, get_args

from sqlalchemy import Float, Integer, exists, false, func, literal, text
from sqlalchemy.sql import ColumnElement, Select
from sqlmodel import Session, col, select

from fnhub.core.api_models import FunctionSummary, SearchResults, SortOrder
from fnhub.core.errors import InvalidInput
from fnhub.core.manifest import Spec
from fnhub.hub.context import Hub
from fnhub.hub.models import Function, FunctionCategory, Namespace

MAX_LIMIT = 100
MAX_OFFSET = 2**63 - 1  # the database's integer range
MAX_QUERY = 256
MAX_TERMS = 16
SORTS: tuple[str, ...] = get_args(SortOrder)
FUNCTION_KINDS: tuple[str, ...] = get_args(Spec.model_fields["kind"].annotation)
# An item's `kind` is its function kind (job, serving) or `feature-set`; the filter also takes
# `function`, meaning any function kind.
KINDS: tuple[str, ...] = (*FUNCTION_KINDS, "feature-set", "function")
# bm25 column weights, in the order of the FTS5 columns: name, namespace, description, keywords
_BM25 = "bm25(functions_fts, 10.0, 2.0, 4.0, 3.0)"
# ts_rank weights of the tsvector classes {D, C, B, A}: namespace is C, description and
# keywords B, name A (the same order of importance as the bm25 weights above)
_TS_WEIGHTS = "'{0.1, 0.2, 0.4, 1.0}'"
_PG_DOCUMENT = (
    "setweight(to_tsvector('simple', :name), 'A') || "
    "setweight(to_tsvector('simple', :description), 'B') || "
    "setweight(to_tsvector('simple', :keywords), 'B') || "
    "setweight(to_tsvector('simple', :namespace), 'C')"
)


def terms(q: str | None) -> list[str]:
    """The words of a query, lowercased; punctuation and FTS operators are just separators."""
    return re.findall(r"\w+", (q or "").lower())[:MAX_TERMS]


def fts_query(words: list[str]) -> str:
    """An FTS5 MATCH expression: every word must appear, as a prefix of a token."""
    return " ".join(f'"{word}"*' for word in words)


def _alnum(text: str) -> list[str]:
    """Letters-and-digits runs: the tokens PostgreSQL indexes (as FTS5's unicode61 splits)."""
    return re.findall(r"[^\W_]+", text.lower())


def ts_query(words: list[str]) -> str:
    """A `to_tsquery` expression: every alphanumeric piece of every word, as a prefix.

    Only bare letters and digits reach PostgreSQL (`foo_bar` becomes `foo:* & bar:*`), so
    no operator, quote or parenthesis a user typed can make the query invalid.
    """
    return " & ".join(f"{piece}:*" for word in words for piece in _alnum(word))


def _text_match(session: Session, query: Select[Any],
                words: list[str]) -> tuple[Select[Any], ColumnElement[Any]]:
    """`query` narrowed to functions matching every word, and a rank (lower is better)."""
    if session.get_bind().dialect.name == "sqlite":
        hits = (
            text(f"SELECT rowid, {_BM25} AS rank FROM functions_fts WHERE functions_fts MATCH :q")
            .bindparams(q=fts_query(words))
            .columns(rowid=Integer, rank=Float)
            .subquery("hits")
        )
        return query.join(hits, hits.c.rowid == Function.id), hits.c.rank
    expression = ts_query(words)
    if not expression:  # only separators, like "___": nothing matches, as on SQLite
        return query.where(false()), literal(0)
    hits = (
        text(f"SELECT function_id, -ts_rank({_TS_WEIGHTS}, document, q) AS rank "
             "FROM functions_fts, to_tsquery('simple', :q) AS q WHERE document @@ q")
        .bindparams(q=expression)
        .columns(function_id=Integer, rank=Float)
        .subquery("hits")
    )
    return query.join(hits, hits.c.function_id == Function.id), hits.c.rank


def index_function(session: Session, function: Function, namespace: str,
                   keywords: list[str]) -> None:
    """Rewrite the function's index entry; a function with no live version leaves the index."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("DELETE FROM functions_fts WHERE function_id = :id"),
                        {"id": function.id})
        if function.live_versions > 0:
            session.execute(
                text(f"INSERT INTO functions_fts (function_id, document) "
                     f"VALUES (:id, {_PG_DOCUMENT})"),
                {"id": function.id, "name": " ".join(_alnum(function.name)),
                 "namespace": " ".join(_alnum(namespace)),
                 "description": " ".join(_alnum(function.description)),
                 "keywords": " ".join(_alnum(" ".join(keywords)))},
            )
        return
    session.execute(text("DELETE FROM functions_fts WHERE rowid = :id"), {"id": function.id})
    if function.live_versions > 0:
        session.execute(
            text("INSERT INTO functions_fts (rowid, name, namespace, description, keywords) "
                 "VALUES (:id, :name, :namespace, :description, :keywords)"),
            {"id": function.id, "name": function.name, "namespace": namespace,
             "description": function.description, "keywords": " ".join(keywords)},
        )


def _check(sort: str, limit: int, offset: int, kind: str | None, q: str | None) -> None:
    if sort not in SORTS:
        raise InvalidInput(f"unknown sort {sort!r}: use one of {', '.join(SORTS)}")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput(f"offset must be between 0 and {MAX_OFFSET}, got {offset}")
    if kind is not None and kind not in KINDS:
        raise InvalidInput(f"unknown kind {kind!r}: use one of {', '.join(KINDS)}")
    if q is not None and len(q) > MAX_QUERY:
        raise InvalidInput(f"query is longer than {MAX_QUERY} characters")


def summary(function: Function, namespace: str) -> FunctionSummary:
    return FunctionSummary(
        namespace=namespace, name=function.name, latest_version=function.latest_version,
        description=function.description, kind=function.kind,
        categories=list(function.categories), labels=dict(function.labels),
        downloads=function.downloads, updated_at=function.updated_at,
    )


def search(
    hub: Hub,
    *,
    q: str | None = None,
    category: str | None = None,
    kind: str | None = None,
    namespace: str | None = None,
    sort: str = "relevance",
    limit: int = 20,
    offset: int = 0,
) -> SearchResults:
    """Listed functions matching every filter, one page of them, and how many match in all."""
    _check(sort, limit, offset, kind, q)
    with hub.db.read() as session:
        query: Select[Any] = (
            select(Function, Namespace.name).join(Namespace).where(Function.live_versions > 0)
        )
        if namespace:
            query = query.where(Namespace.name == namespace)
        if kind == "function":
            query = query.where(col(Function.kind).in_(FUNCTION_KINDS))
        elif kind:
            query = query.where(Function.kind == kind)
        if category:
            query = query.where(exists().where(
                FunctionCategory.function_id == Function.id,
                FunctionCategory.category == category,
            ))
        rank = None
        if words := terms(q):
            query, rank = _text_match(session, query, words)
        total = session.exec(select(func.count()).select_from(query.subquery())).one()
        by_name = (col(Function.name), col(Namespace.name))
        order: tuple[Any, ...] = {
            "relevance": (col(Function.downloads).desc(), *by_name),
            "downloads": (col(Function.downloads).desc(), *by_name),
            "updated": (col(Function.updated_at).desc(), *by_name),
            "name": by_name,
        }[sort]
        if sort == "relevance" and rank is not None:
            order = (rank, *order)
        rows = session.exec(query.order_by(*order).limit(limit).offset(offset)).all()
        items = [summary(function, ns) for function, ns in rows]
    return SearchResults(items=items, total=total, limit=limit, offset=offset)
