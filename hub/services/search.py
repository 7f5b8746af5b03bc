"""Search over functions, and the full-text index behind it.

On SQLite the index is the FTS5 table `functions_fts` (rowid = functions.id), created by the
first migration; on PostgreSQL it is the table `functions_fts` (function_id, document
tsvector) with a GIN index, created by migration 0004. Either is rewritten here whenever a
function's displayed version changes. Results rank by relevance (bm25 on SQLite, ts_rank on
PostgreSQL; a name match weighs most), then downloads. A function whose whole name is the
query comes first, and on every kind of tie the curated `library` namespace ranks before the
others. The user's words never reach either engine as syntax: on SQLite each is quoted, on
PostgreSQL the query is built from bare alphanumeric words, and every word is prefix-matched,
so `q` may contain anything. `_hits`, `index_function` and `_page`'s planner hint are the only
dialect-specific code.

Cost on a large catalog (bench/search.py): a search is two statements, a count of at most
TOTAL_CAP + 1 matches driven by the text or category index, and the page. An ordered sort
(downloads, updated, name) walks that column's index and stops at the page's end, the
matches being a membership test; relevance has to score every match (bm25 or ts_rank), so
its cost grows with the number of matches, the one part that does.

Typos: when nothing matches, each query word that starts no indexed word is replaced by the
indexed words one edit away (a letter deleted, inserted, changed, or two swapped), looked up
by primary key in the vocabulary table `functions_fts_terms` (migration 0008; every word
`index_function` indexes), and the search runs once more; the answer's `suggestion` then
says which words it used ("did you mean"). A search that matches costs nothing extra.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, get_args

from sqlalchemy import Float, Integer, Row, bindparam, case, exists, func, literal_column, or_, text
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.selectable import TextualSelect
from sqlmodel import Session, col, select

from fnhub.core.api_models import FunctionSummary, SearchResults, SortOrder
from fnhub.core.errors import InvalidInput
from fnhub.core.manifest import Spec
from fnhub.core.names import DEFAULT_NAMESPACE
from fnhub.hub.context import Hub
from fnhub.hub.models import Function, FunctionCategory, Namespace

MAX_LIMIT = 100
MAX_OFFSET = 2**63 - 1  # the database's integer range
MAX_QUERY = 256
# matches are counted up to here: a page's total costs at most this many rows, not the catalog
TOTAL_CAP = 1_000
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


# the vocabulary's words (see `vocabulary`); a query word is corrected from 4 letters on, and
# at most 4 words of a query are (their candidates are bound parameters, ~2,500 for a long word)
MIN_TERM, MAX_TERM, MIN_CORRECTED, MAX_CORRECTED_WORDS = 3, 32, 4, 4
_EDIT_LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789"

# A query word, or the words that may stand in its place (any one of them must match).
Word = str | Sequence[str]


def terms(q: str | None) -> list[str]:
    """The words of a query, lowercased; punctuation and FTS operators are just separators."""
    return re.findall(r"\w+", (q or "").lower())[:MAX_TERMS]


def _alternatives(word: Word) -> Sequence[str]:
    return [word] if isinstance(word, str) else word


def fts_query(words: Sequence[Word]) -> str:
    """An FTS5 MATCH expression: every word (one of its alternatives) must appear, as a
    prefix of a token."""
    groups = [" OR ".join(f'"{w}"*' for w in _alternatives(word)) for word in words]
    return " ".join(g if " OR " not in g else f"({g})" for g in groups)


def _alnum(text: str) -> list[str]:
    """Letters-and-digits runs: the tokens PostgreSQL indexes (as FTS5's unicode61 splits)."""
    return re.findall(r"[^\W_]+", text.lower())


def ts_query(words: Sequence[Word]) -> str:
    """A `to_tsquery` expression: every alphanumeric piece of every word, as a prefix (of
    a word with alternatives, one of them).

    Only bare letters and digits reach PostgreSQL (`foo_bar` becomes `foo:* & bar:*`), so
    no operator, quote or parenthesis a user typed can make the query invalid.
    """
    groups = []
    for word in words:
        options = [" & ".join(f"{piece}:*" for piece in _alnum(w)) for w in _alternatives(word)]
        options = [o for o in options if o]
        if len(options) == 1:
            groups.append(options[0])
        elif options:
            groups.append("(" + " | ".join(f"({o})" for o in options) + ")")
    return " & ".join(groups)


def vocabulary(*texts: str) -> set[str]:
    """The words a typo may be corrected to: letter-and-digit runs of 3 to 32 characters that
    are not bare numbers."""
    return {word for text in texts for word in _alnum(text)
            if MIN_TERM <= len(word) <= MAX_TERM and not word.isdigit()}


def one_edit_away(word: str) -> set[str]:
    """Every word one deletion, transposition, substitution or insertion from `word`."""
    letters = set(_EDIT_LETTERS) | set(word)
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    edits = {a + b[1:] for a, b in splits if b}
    edits |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    edits |= {a + c + b[1:] for a, b in splits if b for c in letters}
    edits |= {a + c + b for a, b in splits for c in letters}
    edits.discard(word)
    return edits


def _starts_a_term(session: Session, word: str) -> bool:
    """Whether some indexed word starts with `word` (a range of the vocabulary's key)."""
    return session.execute(
        text("SELECT 1 FROM functions_fts_terms WHERE term >= :low AND term < :high LIMIT 1"),
        {"low": word, "high": word + "\U0010ffff"}).first() is not None


def corrections(session: Session, words: list[str]) -> dict[str, list[str]]:
    """{word: the indexed words one edit away} for the words that start no indexed word."""
    unknown = [w for w in dict.fromkeys(words)
               if MIN_CORRECTED <= len(w) <= MAX_TERM and w.isalnum()
               and not _starts_a_term(session, w)][:MAX_CORRECTED_WORDS]
    candidates = {w: one_edit_away(w) for w in unknown}
    wanted = sorted(set().union(*candidates.values()))
    if not wanted:
        return {}
    known = set(session.execute(
        text("SELECT term FROM functions_fts_terms WHERE term IN :terms")
        .bindparams(bindparam("terms", expanding=True)), {"terms": wanted}).scalars())
    found = {w: sorted(candidates[w] & known) for w in unknown}
    return {w: found[w] for w in unknown if found[w]}


def _hits(session: Session, words: Sequence[Word], *, ranked: bool) -> TextualSelect | None:
    """The index entries matching every word: `(id, rank)` rows (rank lower is better) when
    `ranked`, bare `(id,)` rows otherwise, which the engine finds without scoring each
    match. None when the words hold nothing to look for (only separators, like "___")."""
    if session.get_bind().dialect.name == "sqlite":
        rank = f", {_BM25} AS rank" if ranked else ""
        sql = f"SELECT rowid AS id{rank} FROM functions_fts WHERE functions_fts MATCH :q"
        expression = fts_query(words)
    else:
        rank = f", -ts_rank({_TS_WEIGHTS}, document, q) AS rank" if ranked else ""
        sql = (f"SELECT function_id AS id{rank} FROM functions_fts, to_tsquery('simple', :q) "
               "AS q WHERE document @@ q")
        expression = ts_query(words)
        if not expression:
            return None
    columns = {"id": Integer, "rank": Float} if ranked else {"id": Integer}
    return text(sql).bindparams(q=expression).columns(**columns)


def _add_vocabulary(session: Session, function: Function, namespace: str,
                    keywords: list[str]) -> None:
    words = vocabulary(function.name, namespace, function.description, *keywords)
    if words:  # the same statement on both databases (SQLite 3.24+)
        session.execute(
            text("INSERT INTO functions_fts_terms (term) VALUES (:term) ON CONFLICT DO NOTHING"),
            [{"term": word} for word in sorted(words)])


def index_function(session: Session, function: Function, namespace: str,
                   keywords: list[str]) -> None:
    """Rewrite the function's index entry; a function with no live version leaves the index.
    Its words join the vocabulary typos are corrected to."""
    if function.live_versions > 0:
        _add_vocabulary(session, function, namespace, keywords)
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
    """Listed functions matching every filter, one page of them, and how many match in all
    (up to TOTAL_CAP, so the count stays cheap on a large catalog).

    Two statements answer a search that matches (three or four more when a typo is
    corrected): the bounded count and the page. Neither joins the namespaces (a namespace
    is compared by id, its name read for the page's rows only) nor reads a row it does not
    need: the count stops at TOTAL_CAP + 1, an ordered sort walks its index, and only
    relevance scores every match (bm25 or ts_rank has to)."""
    _check(sort, limit, offset, kind, q)
    filters = _filters(namespace, kind)
    typed = terms(q)
    words: list[Word] = list(typed)
    suggestion = None
    with hub.db.read() as session:
        total = _bounded_count(session, filters, category, words)
        if total == 0 and typed and (fixes := corrections(session, typed)):
            words = [fixes.get(w, w) for w in typed]
            total = _bounded_count(session, filters, category, words)
            suggestion = " ".join(fixes[w][0] if w in fixes else w for w in typed)
        rows = _page(session, filters, category, words, suggestion or " ".join(typed),
                     sort=sort, limit=limit, offset=offset) if total else []
        items = [FunctionSummary(**row._mapping) for row in rows]
    return SearchResults(items=items, total=min(total, TOTAL_CAP), total_capped=total > TOTAL_CAP,
                         limit=limit, offset=offset, suggestion=suggestion)


def _namespace_id(name: str) -> Any:
    """The id of the namespace called `name`, as a scalar subquery (evaluated once)."""
    return select(Namespace.id).where(Namespace.name == name).scalar_subquery()


def _filters(namespace: str | None, kind: str | None) -> list[ColumnElement[bool]]:
    """The conditions on a function's own row: listed, in the namespace, of the kind."""
    filters: list[ColumnElement[bool]] = [col(Function.live_versions) > 0]
    if namespace:
        filters.append(col(Function.namespace_id) == _namespace_id(namespace))
    if kind == "function":
        filters.append(col(Function.kind).in_(FUNCTION_KINDS))
    elif kind:
        filters.append(col(Function.kind) == kind)
    return filters


def _bounded_count(session: Session, filters: list[ColumnElement[bool]], category: str | None,
                   words: Sequence[Word]) -> int:
    """How many listed functions match, counting no further than TOTAL_CAP + 1: driven by
    the text index (unscored) or the category index when there is one, so a count reads at
    most TOTAL_CAP + 1 matches, never the catalog."""
    query = select(Function.id).where(*filters)
    if words:
        hits = _hits(session, words, ranked=False)
        if hits is None:
            return 0
        matched = hits.subquery("hits")
        query = query.join(matched, matched.c.id == Function.id)
    if category:
        query = query.join(FunctionCategory, (FunctionCategory.function_id == Function.id)
                           & (FunctionCategory.category == category))
    return session.exec(
        select(func.count()).select_from(query.limit(TOTAL_CAP + 1).subquery())).one()


def _page(session: Session, filters: list[ColumnElement[bool]], category: str | None,
          words: Sequence[Word], phrase: str, *, sort: str, limit: int,
          offset: int) -> Sequence[Row[Any]]:
    """One page of matches, in the sort's order: rows of the FunctionSummary fields (plain
    rows, not ORM objects: a page is read, never changed).

    Every order ends with the name, then `library` before other namespaces, then the
    namespace's name, so the order is total and pages never overlap. Relevance (with words)
    puts a function named like the query first (`_whole_name_first`), then the rank, then
    `library`; without words it is the downloads order."""
    # labelled, so the order below refers to the page's column instead of running the
    # look-up a second time for every row it sorts
    ns_name = (select(Namespace.name).where(Namespace.id == Function.namespace_id)
               .correlate(Function).scalar_subquery().label("namespace"))
    library_first = case((col(Function.namespace_id) == _namespace_id(DEFAULT_NAMESPACE), 0),
                         else_=1)
    by_name = (col(Function.name), library_first, ns_name)
    order: tuple[Any, ...] = {
        "relevance": (col(Function.downloads).desc(), *by_name),
        "downloads": (col(Function.downloads).desc(), *by_name),
        "updated": (col(Function.updated_at).desc(), *by_name),
        "name": by_name,
    }[sort]
    conditions = list(filters)
    if category:
        conditions.append(exists().where(FunctionCategory.function_id == Function.id,
                                         FunctionCategory.category == category))
    if words and sort != "relevance":  # membership only: no match is scored; "+ 0" keeps
        # the matches' ids from driving the plan, so the sort's index is walked instead
        hits = _hits(session, words, ranked=False)
        assert hits is not None  # the count found matches
        conditions.append((col(Function.id) + 0).in_(hits))
    if session.get_bind().dialect.name == "sqlite":
        # SQLite keeps no statistics: told that each filter passes most rows, it reads a
        # sorted page from the sort's index and stops at the page's end rather than sorting
        # every match (PostgreSQL's planner has statistics and decides for itself)
        conditions = [func.likelihood(c, literal_column("0.9")) for c in conditions]
    query = select(*(getattr(Function, field) for field in _SUMMARY_FIELDS),
                   ns_name).where(*conditions)
    if words and sort == "relevance":
        hits = _hits(session, words, ranked=True)
        assert hits is not None
        ranked = hits.subquery("hits")
        query = query.join(ranked, ranked.c.id == Function.id)
        order = (_whole_name_first(phrase), ranked.c.rank, library_first, *order)
    return session.exec(query.order_by(*order).limit(limit).offset(offset)).all()


# FunctionSummary's fields that are columns of `functions` (the namespace is looked up)
_SUMMARY_FIELDS = tuple(f for f in FunctionSummary.model_fields if f != "namespace")


def _whole_name_first(q: str) -> ColumnElement[int]:
    """0 for a `library` function whose whole name is the query (`load dataset` is
    load-dataset, load_dataset or load.dataset), 1 for another namespace's, 2 for the rest."""
    pieces = _alnum(q)
    named = or_(*(Function.name == sep.join(pieces) for sep in "-_."))
    library = col(Function.namespace_id) == _namespace_id(DEFAULT_NAMESPACE)
    return case((named & library, 0), (named, 1), else_=2)


def categories(hub: Hub) -> list[tuple[str, int]]:
    """Every category with how many listed functions it has, by name."""
    with hub.db.read() as session:
        # Counted on the category index alone; the few unlisted functions (every version
        # deleted) are left out by id, cheaper than joining every listed function's row.
        unlisted = select(Function.id).where(Function.live_versions <= 0)
        rows = session.exec(
            select(FunctionCategory.category, func.count())
            .where(col(FunctionCategory.function_id).not_in(unlisted))
            .group_by(col(FunctionCategory.category)).order_by(col(FunctionCategory.category))
        ).all()
    return [(category, count) for category, count in rows]
