"""Search over functions, and the full-text index behind it.

On SQLite the index is the FTS5 table `functions_fts` (rowid = functions.id), created by the
first migration; on PostgreSQL it is the table `functions_fts` (function_id, document
tsvector) with a GIN index, created by migration 0004. Either is rewritten here whenever a
function's displayed version changes. Relevance ranks a function whose whole name is the
query first (the curated `library` namespace's before the others), then the functions with
every word in their name, then the other matches; within each of those tiers by downloads,
then name, then `library` before other namespaces, then the namespace. The user's words never
reach either engine as syntax: on SQLite each is quoted, on PostgreSQL the query is built from
bare alphanumeric words, and every word is prefix-matched, so `q` may contain anything.
`_hits`, `_matches` (which query language), `index_function` and `_read`'s planner hint are
the only dialect-specific code.

Why tiers and not a text score (bm25 or ts_rank, which this used to sort by): a score has to
be computed for every match before the first page is known, so a broad word on a large
catalog (18,000 of 100,000 functions) cost 15-20 ms in FTS5 alone, and twice that to join
each match to its row. A tier is itself an index query (FTS5's column filter `{name} : ...`,
PostgreSQL's weight-A lexemes), so each tier is read like an ordered sort; and among
thousands of matches of one word, a score's differences (a longer description, a repeated
word) say less about what a user wants than downloads do.

Cost on a large catalog (bench/search.py): a search is two statements, a count and the page.
The count reads at most TOTAL_CAP + 1 matches of each tier (or of the filters), driven by the
text or category index. The page reads each set of matches one of two ways (`_dense`): many
matches, relative to the catalog's size, are found by walking the sort's index (downloads,
updated, name) with the matches as a membership test, which stops at the page's end; few
are read from the text or category index and sorted, at most TOTAL_CAP rows. No match is
scored.

Typos: when nothing matches, each query word that starts no indexed word is replaced by the
indexed words one edit away (a letter deleted, inserted, changed, or two swapped), looked up
by primary key in the vocabulary table `functions_fts_terms` (migration 0008; every word
`index_function` indexes), and the search runs once more; the answer's `suggestion` then
says which words it used ("did you mean"). A search that matches costs nothing extra.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, get_args

from sqlalchemy import (
    Integer,
    Row,
    Select,
    bindparam,
    case,
    exists,
    func,
    literal,
    literal_column,
    text,
    union_all,
)
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
# The parts of the matches a search reads: all of them, those with every word in the name
# (relevance's first tier), and the others
Part = Literal["all", "name", "rest"]
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


def fts_query(words: Sequence[Word], part: Part = "all") -> str:
    """An FTS5 MATCH expression: every word (one of its alternatives) must appear, as a
    prefix of a token; of `part` "name", in the name column, of "rest", not all of them in
    the name column."""
    groups = [" OR ".join(f'"{w}"*' for w in _alternatives(word)) for word in words]
    every = " AND ".join(g if " OR " not in g else f"({g})" for g in groups)
    return {"all": every, "name": f"{{name}} : ({every})",
            "rest": f"({every}) NOT {{name}} : ({every})"}[part]

def _alnum(text: str) -> list[str]:
    """Letters-and-digits runs: the tokens PostgreSQL indexes (as FTS5's unicode61 splits)."""
    return re.findall(r"[^\W_]+", text.lower())


def ts_query(words: Sequence[Word], part: Part = "all") -> str:
    """A `to_tsquery` expression: every alphanumeric piece of every word, as a prefix (of
    a word with alternatives, one of them); of `part` "name", as a name's (weight A)
    lexeme, of "rest", not all of them as a name's.

    Only bare letters and digits reach PostgreSQL (`foo_bar` becomes `foo:* & bar:*`), so
    no operator, quote or parenthesis a user typed can make the query invalid.
    """
    def every(weight: str) -> str:
        groups = []
        for word in words:
            options = [" & ".join(f"{piece}:*{weight}" for piece in _alnum(w))
                       for w in _alternatives(word)]
            options = [o for o in options if o]
            if len(options) == 1:
                groups.append(options[0])
            elif options:
                groups.append("(" + " | ".join(f"({o})" for o in options) + ")")
        return " & ".join(groups)

    found = every("")
    if not found or part == "all":
        return found
    return every("A") if part == "name" else f"({found}) & !({every('A')})"

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


def index_function(session: Session, function: Function, namespace: str,
                   keywords: list[str]) -> None:
    """Rewrite the function's index entry; a function with no live version leaves the index.
    Its words join the vocabulary typos are corrected to."""
    index_functions(session, [(function, namespace, keywords)])


def index_functions(session: Session,
                    entries: Sequence[tuple[Function, str, list[str]]]) -> None:
    """`index_function` for many functions at once: one batch of each statement, so
    filling a large hub (tests/web/population.py) is not one round trip per function."""
    listed = [(f, ns, kw) for f, ns, kw in entries if f.live_versions > 0]
    words = set().union(*(vocabulary(f.name, ns, f.description, *kw) for f, ns, kw in listed))
    if words:  # the same statement on both databases (SQLite 3.24+)
        session.execute(
            text("INSERT INTO functions_fts_terms (term) VALUES (:term) ON CONFLICT DO NOTHING"),
            [{"term": word} for word in sorted(words)])
    postgres = session.get_bind().dialect.name == "postgresql"
    key = "function_id" if postgres else "rowid"
    session.execute(text(f"DELETE FROM functions_fts WHERE {key} = :id"),
                    [{"id": f.id} for f, _, _ in entries])
    if not listed:
        return
    if postgres:
        session.execute(
            text(f"INSERT INTO functions_fts (function_id, document) VALUES (:id, {_PG_DOCUMENT})"),
            [{"id": f.id, "name": " ".join(_alnum(f.name)), "namespace": " ".join(_alnum(ns)),
              "description": " ".join(_alnum(f.description)),
              "keywords": " ".join(_alnum(" ".join(kw)))} for f, ns, kw in listed])
    else:
        session.execute(
            text("INSERT INTO functions_fts (rowid, name, namespace, description, keywords) "
                 "VALUES (:id, :name, :namespace, :description, :keywords)"),
            [{"id": f.id, "name": f.name, "namespace": ns, "description": f.description,
              "keywords": " ".join(kw)} for f, ns, kw in listed])


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
    is compared by id, its name read for the page's rows only), scores a match, or reads a
    row it does not need (see the module's docstring)."""
    _check(sort, limit, offset, kind, q)
    typed = terms(q)
    words: list[Word] = list(typed)
    suggestion = None
    with hub.db.read() as session:
        shape = _Shape(
            dialect=session.get_bind().dialect.name, namespace=bool(namespace),
            kind="function" if kind == "function" else "one" if kind else None,
            category=bool(category),
            parts=("name", "rest") if sort == "relevance" and words else
            ("all",) if words else (None,))
        values: dict[str, Any] = {"namespace": namespace, "kind": kind, "category": category,
                                  "cap": TOTAL_CAP + 1, "limit": limit, "offset": offset,
                                  "reach": offset + limit}
        found = _matches(session, shape, values, words)
        total = sum(m.count for m in found)
        if total == 0 and typed and (fixes := corrections(session, typed)):
            words = [fixes.get(w, w) for w in typed]
            found = _matches(session, shape, values, words)
            total = sum(m.count for m in found)
            suggestion = " ".join(fixes[w][0] if w in fixes else w for w in typed)
        rows: Sequence[Row[Any]] = []
        if total:
            values["names"] = [sep.join(_alnum(suggestion or " ".join(typed))) for sep in "-_."]
            rows = session.execute(_page_statement(shape, sort, _reads(found, offset + limit)),
                                   values).all()
        items = [FunctionSummary(**row._mapping) for row in rows]
    return SearchResults(items=items, total=min(total, TOTAL_CAP), total_capped=total > TOTAL_CAP,
                         limit=limit, offset=offset, suggestion=suggestion)


@dataclass(frozen=True)
class _Shape:
    """What a search's statements depend on besides the values bound into them. Each
    statement is built once per shape (`_count_statement`, `_page_statement`): building one
    costs several times more than running it on a hub of 10,000 functions."""

    dialect: str
    namespace: bool  # values["namespace"] is compared
    kind: str | None  # None, "function" (any function kind) or "one" (values["kind"])
    category: bool  # values["category"] is compared
    # the sets of matches counted and read: relevance's tiers, every match of the words,
    # or (None) every function the filters pass
    parts: tuple[Part | None, ...]


@dataclass(frozen=True)
class _Matches:
    """One set of matches: how many the filters pass (counted up to TOTAL_CAP + 1), and
    whether walking the sort's index finds a page sooner than sorting them all."""

    count: int
    dense: bool


def _dense(count: int, catalog: int, reach: int) -> bool:
    """Whether `count` matches among `catalog` functions are read sooner by walking the
    sort's index until `reach` of them are found (about reach * catalog / count index
    entries, each a membership probe) than by reading every match's row and sorting
    (`count` rows, each a few times a probe's cost). Past TOTAL_CAP, always."""
    return count > TOTAL_CAP or 4 * count * count > reach * catalog


def _matches(session: Session, shape: _Shape, values: dict[str, Any],
             words: Sequence[Word]) -> list[_Matches]:
    """Each set of matches, counted in one statement; the words' index queries go into
    `values`. None match when the words hold nothing to look for (only separators, like
    "___", which PostgreSQL's query cannot hold)."""
    for part in shape.parts:
        if part is not None:
            values[f"q_{part}"] = (fts_query(words, part) if shape.dialect == "sqlite"
                                   else ts_query(words, part))
            if not values[f"q_{part}"]:
                return []
    *counts, catalog = session.execute(_count_statement(shape), values).one()
    return [_Matches(count, _dense(count, catalog or 0, values["reach"])) for count in counts]


def _reads(found: list[_Matches], reach: int) -> tuple[tuple[int, bool], ...]:
    """The sets a page reads, as (index, dense): those with matches, up to the first that
    fills the page on its own (the sets after it cannot reach the page)."""
    reads = []
    for i, matches in enumerate(found):
        if matches.count:
            reads.append((i, matches.dense))
        if matches.count >= reach:
            break
    return tuple(reads)


def _hits(dialect: str, part: Part) -> TextualSelect:
    """The ids of the index entries matching the words' query for `part` (bound as
    `q_{part}`), which the engine finds without scoring a match."""
    if dialect == "sqlite":
        sql = f"SELECT rowid AS id FROM functions_fts WHERE functions_fts MATCH :q_{part}"
    else:
        sql = (f"SELECT function_id AS id FROM functions_fts, "
               f"to_tsquery('simple', :q_{part}) AS q WHERE document @@ q")
    return text(sql).columns(id=Integer)


def _namespace_id(name: Any) -> Any:
    """The id of the namespace called `name`, as a scalar subquery (evaluated once)."""
    return select(Namespace.id).where(Namespace.name == name).scalar_subquery()


def _listed() -> ColumnElement[bool]:
    """A function with a live version: one whose every version was deleted is not listed."""
    return col(Function.live_versions) > 0


def _filters(shape: _Shape) -> list[ColumnElement[bool]]:
    """The conditions on a function's own row the user asked for: in the namespace, of
    the kind (`_listed` is added where rows are read)."""
    filters: list[ColumnElement[bool]] = []
    if shape.namespace:
        filters.append(col(Function.namespace_id) == _namespace_id(bindparam("namespace")))
    if shape.kind == "function":
        filters.append(col(Function.kind).in_(FUNCTION_KINDS))
    elif shape.kind:
        filters.append(col(Function.kind) == bindparam("kind"))
    return filters


@lru_cache(maxsize=256)
def _count_statement(shape: _Shape) -> Select[Any]:
    """How many functions each set of matches holds, counting no further than TOTAL_CAP + 1
    (bound as `cap`): driven by the text index (unscored) or the category index when
    there is one, so a count never reads the catalog. Last, the catalog's size, nearly
    (the highest id), which `_dense` weighs the counts against."""
    filters = _filters(shape)
    counts = []
    for part in shape.parts:
        hits = _hits(shape.dialect, part).subquery("hits") if part else None
        if hits is not None and not filters and not shape.category:
            # the index holds listed functions only (`index_function`): no row to read
            query = select(hits.c.id)
        else:
            query = select(Function.id).where(_listed(), *filters)
            if hits is not None:
                query = query.join(hits, hits.c.id == Function.id)
            if shape.category:
                query = query.join(FunctionCategory,
                                   (FunctionCategory.function_id == Function.id)
                                   & (FunctionCategory.category == bindparam("category")))
        counts.append(select(func.count()).select_from(
            query.limit(bindparam("cap")).subquery()).scalar_subquery())
    return select(*counts, select(func.max(Function.id)).scalar_subquery())


@lru_cache(maxsize=256)
def _page_statement(shape: _Shape, sort: str,
                    reads: tuple[tuple[int, bool], ...]) -> Select[Any]:
    """One page of matches (bound: `limit`, `offset`, `reach` = their sum, `names` = the
    query's words joined as a name would be), in the sort's order: rows holding the
    FunctionSummary fields (plain rows, not ORM objects: a page is read, never changed).

    Every order ends with the name, then `library` before other namespaces, then the
    namespace's name, so the order is total and pages never overlap. Relevance with words
    reads its tiers (see the module's docstring) as one UNION ALL: the functions named
    like the query, then each tier of `reads` in downloads order, each read to the page's
    end at most."""
    # labelled, so the order below refers to the page's column instead of running the
    # look-up a second time for every row it sorts
    ns_name = (select(Namespace.name).where(Namespace.id == Function.namespace_id)
               .correlate(Function).scalar_subquery().label("namespace"))
    library = col(Function.namespace_id) == _namespace_id(DEFAULT_NAMESPACE)
    library_first = case((library, 0), else_=1)
    by_name = (col(Function.name), library_first, ns_name)
    order: tuple[Any, ...] = {
        "relevance": (col(Function.downloads).desc(), *by_name),
        "downloads": (col(Function.downloads).desc(), *by_name),
        "updated": (col(Function.updated_at).desc(), *by_name),
        "name": by_name,
    }[sort]
    filters = [_listed(), *_filters(shape)]
    columns = (*(getattr(Function, field) for field in _SUMMARY_FIELDS), ns_name)
    limit, offset = bindparam("limit"), bindparam("offset")
    if shape.parts[0] in ("all", None):
        (_, dense), = reads
        return (_read(shape, columns, filters, shape.parts[0], dense, order)
                .limit(limit).offset(offset))
    named = col(Function.name).in_(bindparam("names", expanding=True))
    ranked = (*columns, library_first.label("library"))
    exact = select(*ranked, library_first.label("tier")).where(*filters, named)
    if shape.category:
        exact = exact.where(_in_category())
    branches = [exact]
    for i, dense in reads:
        branches.append(_read(shape, (*ranked, literal(i + 2).label("tier")),
                              [*filters, ~named], shape.parts[i], dense, order)
                        .limit(bindparam("reach")))
    page = union_all(*(select(branch.subquery()) for branch in branches)).subquery("page")
    return (select(*(page.c[c.key] for c in columns))
            .order_by(page.c.tier, page.c.downloads.desc(), page.c.name, page.c.library,
                      page.c.namespace)
            .limit(limit).offset(offset))


def _in_category() -> ColumnElement[bool]:
    return exists().where(FunctionCategory.function_id == Function.id,
                          FunctionCategory.category == bindparam("category"))


def _read(shape: _Shape, columns: Sequence[Any], conditions: list[ColumnElement[bool]],
          part: Part | None, dense: bool, order: tuple[Any, ...]) -> Select[Any]:
    """The rows passing `conditions` among the matches of `part`, in `order`, read the
    way their number makes cheapest: dense matches by walking the order's index, testing
    each row for membership; sparse ones from the text or category index, then sorted."""
    if not dense:
        query = select(*columns).where(*conditions)
        if part is not None:
            hits = _hits(shape.dialect, part).subquery("hits")
            query = query.join(hits, hits.c.id == Function.id)
        if shape.category:
            query = query.join(FunctionCategory,
                               (FunctionCategory.function_id == Function.id)
                               & (FunctionCategory.category == bindparam("category")))
        return query.order_by(*order)
    conditions = list(conditions)
    if shape.category:
        conditions.append(_in_category())
    if part is not None:  # "+ 0" keeps the matches' ids from driving the plan
        conditions.append((col(Function.id) + 0).in_(_hits(shape.dialect, part)))
    if shape.dialect == "sqlite":
        # SQLite keeps no statistics: told that each condition passes most rows, it reads a
        # sorted page from the sort's index and stops at the page's end rather than sorting
        # every match (PostgreSQL's planner has statistics and decides for itself)
        conditions = [func.likelihood(c, literal_column("0.9")) for c in conditions]
    return select(*columns).where(*conditions).order_by(*order)


# FunctionSummary's fields that are columns of `functions` (the namespace is looked up)
_SUMMARY_FIELDS = tuple(f for f in FunctionSummary.model_fields if f != "namespace")


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
