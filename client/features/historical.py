"""Point-in-time correct training data: `get_historical_features` in DuckDB.

The rule (design §10): a feature row is visible to an entity row at time `t` when
`event <= t`, `created <= t` and `event >= t - ttl`; among visible rows the latest event
wins, then the later created, then the later ingest (and, within one ingest, the later row).

With a ttl, every row visible at `t` has its event in [t - ttl, t], so in the ttl-wide time
bucket of `t` or the one before: a hash join on (key, bucket) pairs each entity row with
those few rows, and the winner is the highest per entity row (`bucket_sql`); a second join
on the winners' (ingest, row) fetches their values (`values_sql`). Those joins hold only
entity rows; they are used while the rows per key and bucket are few (`MAX_PAIRS`).

Otherwise (no ttl, or dense rows), ignoring ttl, the winner only changes at a row's
visibility time `vis = max(event, created)`, so per entity key the winner is a step
function: a running arg_max over rows ordered by `vis` (peers included). One ASOF JOIN on
(key, `t >= vis`) then finds each entity row's winner; ttl is applied last: if the winner's
event is older than `t - ttl`, every row visible at `t` is, so the value is missing. Only
the committed files of the event dates in [min(t) - ttl, max(t)] are read, and only the
columns asked for.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fnhub.core.errors import InvalidInput
from fnhub.core.featureset import FeatureSetSpec, column_problem
from fnhub.core.names import name_problem
from fnhub.features.offline import AppliedSet, CommitFile, OfflineStore
from fnhub.features.schema import ARROW_TYPES, INGEST, ROW, TIMESTAMP, arrow_schema

if TYPE_CHECKING:
    import pandas as pd

EVENT_TIMESTAMP = "event_timestamp"
# The bucket join pairs each entity row with its key's rows in two ttl-wide buckets; above
# this many such rows per entity row (estimated), the ASOF JOIN, which holds every candidate
# row but pairs each entity row with one, is cheaper.
MAX_PAIRS = 16


def q(name: str) -> str:
    """A quoted SQL identifier (names are checked to [a-z_][a-z0-9_]* before they get here)."""
    return f'"{name}"'


def parse_refs(features: list[str]) -> OrderedDict[str, list[str]]:
    """`SET:FEATURE` references grouped by set, in request order."""
    if isinstance(features, str) or not features:
        raise InvalidInput("features must be a non-empty list of 'SET:FEATURE' references")
    out: OrderedDict[str, list[str]] = OrderedDict()
    for ref in features:
        name, sep, feature = str(ref).partition(":")
        if not sep or name_problem(name) or column_problem(feature):
            raise InvalidInput(f"invalid feature reference {ref!r}: use SET:FEATURE, "
                               "like driver-stats:conv_rate")
        if feature in out.setdefault(name, []):
            raise InvalidInput(f"feature {ref!r} is requested twice")
        out[name].append(feature)
    return out


def check_features(applied: AppliedSet, features: list[str]) -> None:
    known = [f.name for f in applied.spec.features]
    for feature in features:
        if feature not in known:
            raise InvalidInput(f"feature set {applied.name} ({applied.version}) has no feature "
                               f"{feature!r}", hint=f"its features: {', '.join(known)}")


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # Prefetching reads a whole row group's columns ahead: twice the peak memory of a wide
    # scan (+90 against +45 MiB for the bench's values query), and no faster from local disk.
    con.execute("SET disable_parquet_prefetching = true")
    return con


def winners_sql(spec: FeatureSetSpec, features: list[str], rows: str, keys: str,
                bounds: str) -> str:
    """Per entity key, the winner as a step function of time: (keys..., __vis, __e, f_...).

    Each row gets its rank by (event, created, ingest, row) within its key; the winner at a
    visibility time is the row of the highest rank visible by then, a running max of one
    integer (a running arg_max over a struct of every feature cost three times as much),
    joined back to its row for the values."""
    k = ", ".join(q(e.name) for e in spec.entities)
    event = q(spec.timestamp)
    created = q(spec.created) if spec.created else event
    columns = ", ".join(q(f) for f in features)
    on = " AND ".join(f"f.{q(e.name)} = s.{q(e.name)}" for e in spec.entities)
    return f"""
        WITH feats AS (
            SELECT {k}, {event} AS __e, greatest({event}, {created}) AS __vis, {columns},
                   row_number() OVER (PARTITION BY {k} ORDER BY {event}, {created},
                                      {q(INGEST)}, {q(ROW)}) AS __rank
            FROM {rows} SEMI JOIN (SELECT DISTINCT {k} FROM {keys}) USING ({k})
            WHERE {bounds}
        ), steps AS (
            SELECT {k}, __vis, max(max(__rank)) OVER (
                       PARTITION BY {k} ORDER BY __vis ROWS UNBOUNDED PRECEDING) AS __best
            FROM feats GROUP BY {k}, __vis
        )
        SELECT {", ".join(f"s.{q(e.name)}" for e in spec.entities)}, s.__vis, f.__e,
               {", ".join(f"f.{q(f)} AS {q('f_' + f)}" for f in features)}
        FROM steps s JOIN feats f ON {on} AND f.__rank = s.__best"""


def _entities(entity_df: pd.DataFrame, spec_columns: dict[str, str]) -> pa.Table:
    """The entity frame as Arrow: `__row`, the entity keys in the sets' types, `__t` in UTC."""
    import pandas as pd

    if not isinstance(entity_df, pd.DataFrame):
        raise InvalidInput("entity_df must be a pandas DataFrame")
    if EVENT_TIMESTAMP not in entity_df.columns:
        raise InvalidInput(f"entity_df has no {EVENT_TIMESTAMP!r} column")
    times = entity_df[EVENT_TIMESTAMP]
    if not isinstance(times.dtype, pd.DatetimeTZDtype):
        raise InvalidInput(f"entity_df column {EVENT_TIMESTAMP!r} must hold timezone-aware "
                           f"timestamps, not {times.dtype}",
                           hint="e.g. pd.to_datetime(df.event_timestamp, utc=True)")
    if times.isna().any():
        raise InvalidInput(f"entity_df column {EVENT_TIMESTAMP!r} has missing values")
    arrays = {"__row": pa.array(np.arange(len(entity_df), dtype=np.int64))}
    for name, kind in spec_columns.items():
        if name not in entity_df.columns:
            raise InvalidInput(f"entity_df has no entity column {name!r}")
        try:
            arrays[name] = pa.array(entity_df[name], from_pandas=True).cast(ARROW_TYPES[kind])
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise InvalidInput(f"entity_df column {name!r} is not {kind}: {exc}") from None
        if arrays[name].null_count:
            raise InvalidInput(f"entity_df column {name!r} has missing values")
    try:  # a safe cast: rounding t to microseconds would move it across a ttl boundary
        arrays["__t"] = pa.array(times.dt.tz_convert("UTC")).cast(TIMESTAMP)
    except pa.ArrowInvalid:
        raise InvalidInput(f"entity_df column {EVENT_TIMESTAMP!r} has timestamps finer than "
                           "microseconds, the feature store's precision",
                           hint="e.g. df.event_timestamp.dt.floor('us')") from None
    return pa.table(arrays)


def _bounds(spec: FeatureSetSpec, first: datetime, last: datetime
            ) -> tuple[datetime | None, datetime]:
    ttl = spec.ttl_delta
    return (first - ttl if ttl is not None else None), last


def _ttl_us(spec: FeatureSetSpec) -> int | None:
    ttl = spec.ttl_delta
    return None if ttl is None else ttl // timedelta(microseconds=1)


def check_request(offline: OfflineStore, features: list[str]
                  ) -> tuple[OrderedDict[str, list[str]], dict[str, AppliedSet], dict[str, str]]:
    """(features by set, the applied sets, entity column → type), or the error naming why."""
    groups = parse_refs(features)
    sets = {name: offline.get(name) for name in groups}
    keys: dict[str, str] = {}
    for name, applied in sets.items():
        check_features(applied, groups[name])
        for entity in applied.spec.entities:
            if keys.setdefault(entity.name, entity.type) != entity.type:
                raise InvalidInput(f"entity {entity.name!r} is {keys[entity.name]} in one "
                                   f"feature set and {entity.type} in {name}")
    return groups, sets, keys


def point_in_time(offline: OfflineStore, entity_df: pd.DataFrame, features: list[str]
                  ) -> pd.DataFrame:
    """`entity_df` (rows in their order) with one column `SET:FEATURE` per requested feature."""
    groups, sets, keys = check_request(offline, features)
    entities = _entities(entity_df, keys)
    out = entity_df.copy(deep=False)  # new columns only: the caller's frame is left as it was
    if not len(entity_df):
        for name, wanted in groups.items():
            for feature in wanted:
                out[f"{name}:{feature}"] = []
        return out
    span = pc.min_max(entities.column("__t")).as_py()
    first, last = span["min"], span["max"]
    # DuckDB allocates on its own, so what Arrow's pool holds free (the caller's reads, the
    # frame's conversion: ~25 MiB in the bench) would sit idle through its joins, the peak
    pa.default_memory_pool().release_unused()
    answers = {name: _one_set(offline, sets[name], wanted, first, last, entities)
               for name, wanted in groups.items()}
    for name, wanted in groups.items():
        table, positions = answers[name]
        for feature in wanted:
            column = table.column(f"f_{feature}")
            # by position: entity_df's index may repeat or be unordered
            out[f"{name}:{feature}"] = to_pandas(
                column if positions is None else column.take(positions)).array
    return out


def register_rows(con: duckdb.DuckDBPyConnection, offline: OfflineStore, applied: AppliedSet,
                  files: list[str]) -> None:
    """The committed `files` as the view `rows`: a local store through DuckDB's own Parquet
    reader (parallel, reading only the columns and row groups a query needs), S3 through
    pyarrow's filesystem."""
    paths = offline.location.local_paths(files)
    # DuckDB reads a path as a glob: a store under `st[1]` would read `st1`'s files
    if files and paths is not None and not any(set("*?[]{}") & set(p) for p in paths):
        con.read_parquet(paths).to_view("rows", replace=True)
    else:
        con.register("rows", offline.dataset(applied, files) if files
                     else arrow_schema(applied.spec).empty_table())


def _query(offline: OfflineStore, applied: AppliedSet, files: list[str], sql: str,
           params: dict[str, Any], **tables: pa.Table) -> pa.Table:
    """`sql` over the `files` (as `rows`) and `tables`, on a connection of its own: DuckDB
    gives its memory back when a connection closes (~120 MiB after the bench's joins), so
    the next query, and the conversion to pandas, start without it."""
    con = connect()
    try:
        for name, table in tables.items():
            con.register(name, table)
        register_rows(con, offline, applied, files)
        return con.sql(sql, params=params).to_arrow_table()
    finally:
        con.close()


def set_sql(spec: FeatureSetSpec, wanted: list[str], *, low: bool) -> str:
    """The features of one set for every row of `entities` (ordered by `__row`); parameters
    $high and, with `low`, $low bound the event times read.

    One ASOF JOIN finds, per entity row, the row of the highest (event, created, ingest,
    row) with `event <= t` (structs compare in that order). That row wins unless it was not
    yet created at `t`; only those entity rows (about 1% in the bench) go through the general
    step function of `winners_sql`."""
    event = q(spec.timestamp)
    created = q(spec.created) if spec.created else event
    bounds = f"{event} <= $high" + (f" AND {event} >= $low" if low else "")
    k = [e.name for e in spec.entities]
    keys = ", ".join(q(c) for c in k)
    on = " AND ".join(f"e.{q(c)} = w.{q(c)}" for c in k)
    ttl = _ttl_us(spec)
    fresh = "TRUE" if ttl is None else f"__e >= __t - to_microseconds({ttl})"
    values = [q("f_" + f) for f in wanted]
    select = ", ".join(f"CASE WHEN {fresh} THEN {v} END AS {v}" for v in values)
    order = f"struct_pack(e := {event}, c := {created}, i := {q(INGEST)}, r := {q(ROW)})"
    top = ("struct_pack(e := e.__t, c := 'infinity'::TIMESTAMPTZ, i := 9223372036854775807, "
           "r := 9223372036854775807)")
    return f"""
        WITH candidates AS (
            SELECT {keys}, {order} AS __o, {event} AS __e, {created} AS __c,
                   {", ".join(f"{q(f)} AS {q('f_' + f)}" for f in wanted)}
            FROM rows SEMI JOIN (SELECT DISTINCT {keys} FROM entities) USING ({keys})
            WHERE {bounds}
        ), latest AS (
            SELECT e.__row, {", ".join(f"e.{q(c)}" for c in k)}, e.__t, w.__e, w.__c,
                   {", ".join(f"w.{v}" for v in values)}
            FROM entities e ASOF LEFT JOIN candidates w ON {on} AND {top} >= w.__o
        ), late AS (
            SELECT __row, {keys}, __t FROM latest WHERE __c > __t
        ), w AS ({winners_sql(spec, wanted, "rows", "late", bounds)}
        ), answers AS (
            SELECT __row, __t, __e, {", ".join(values)} FROM latest
            WHERE __c IS NULL OR __c <= __t
            UNION ALL
            SELECT e.__row, e.__t, w.__e, {", ".join(f"w.{v}" for v in values)}
            FROM late e ASOF LEFT JOIN w ON {on} AND e.__t >= w.__vis
        )
        SELECT __row, {select} FROM answers ORDER BY __row"""


def bucket_sql(spec: FeatureSetSpec) -> str:
    """The winning row of one set for each entity row where any row is visible: (`__row`,
    `__i`, `__r`: the row's ingest and position), in no order; parameters $low and $high
    bound the event times read.

    A row visible at `t` has `t - ttl <= event <= t`, so its bucket `(event - low) // ttl`
    is the bucket of `t` or the one before: each row probes the entity rows (the hash
    table, held once) on (keys, its bucket) and (keys, its bucket + 1), the visibility rule
    filters the pairs, and the highest (event, created, ingest, row) of each entity row
    wins. Only that key is aggregated (an arg_max carrying every feature held twice the
    memory); `values_sql` fetches the values."""
    ttl = _ttl_us(spec)
    event = q(spec.timestamp)
    created = q(spec.created) if spec.created else event
    k = [e.name for e in spec.entities]

    def bucket(column: str) -> str:
        return f"(epoch_us({column}) - epoch_us($low)) // {ttl}"

    on = " AND ".join(f"f.{q(c)} = e.{q(c)}" for c in k)
    return f"""
        WITH e AS (
            SELECT __row, {", ".join(q(c) for c in k)}, __t, {bucket("__t")} AS __b
            FROM entities
        ), w AS (
            SELECT e.__row, max(struct_pack(e := f.{event}, c := f.{created},
                                            i := f.{q(INGEST)}, r := f.{q(ROW)})) AS __o
            FROM (SELECT *, {bucket(event)} + i AS __b FROM rows, range(2) r(i)
                  WHERE {event} <= $high AND {event} >= $low) f
                 JOIN e ON {on} AND f.__b = e.__b
            WHERE f.{event} <= e.__t
              AND f.{created} <= e.__t
              AND f.{event} >= e.__t - to_microseconds({ttl})
            GROUP BY e.__row
        )
        SELECT __row, __o.i AS __i, __o.r AS __r FROM w"""


def values_sql(spec: FeatureSetSpec, wanted: list[str]) -> str:
    """The features of the rows `winners` names (`__row`, `__i`, `__r`): (`__row`, `f_...`);
    (ingest, row) is unique within a set's dataset."""
    event = q(spec.timestamp)
    return f"""
        SELECT w.__row, {", ".join(f"f.{q(f)} AS {q('f_' + f)}" for f in wanted)}
        FROM rows f JOIN winners w ON f.{q(INGEST)} = w.__i AND f.{q(ROW)} = w.__r
        WHERE f.{event} <= $high AND f.{event} >= $low"""


def pairs_per_row(entities: pa.Table, keys: list[str], records: list[CommitFile],
                  low: datetime, high: datetime, ttl: timedelta) -> float:
    """The feature rows the bucket join pairs with each entity row, estimated: the rows
    read spread evenly over the keys asked for and the time read (an overestimate when the
    store holds more keys than are asked for)."""
    rows = sum(r.rows for r in records)
    distinct = (len(pc.unique(entities.column(keys[0]))) if len(keys) == 1  # no Acero start
                else entities.select(keys).group_by(keys).aggregate([]).num_rows)
    return rows / max(distinct, 1) * min(1.0, 2 * ttl / max(high - low, ttl))


def _positions(table: pa.Table, rows: int) -> pa.Array:
    """For each of `rows` entity rows, the row of `table` (by its `__row`) answering it, null
    where none does: `take` puts the answers in entity order."""
    index = np.full(rows, -1, np.int64)
    index[table.column("__row").to_numpy()] = np.arange(table.num_rows)
    return pa.array(index, mask=index < 0)


def _one_set(offline: OfflineStore, applied: AppliedSet, wanted: list[str], first: datetime,
             last: datetime, entities: pa.Table) -> tuple[pa.Table, pa.Array | None]:
    """The set's features for the entity rows: a table and, unless it is in entity order
    already, the positions that put it there."""
    spec = applied.spec
    low, high = _bounds(spec, first, last)
    records = offline.records(offline.commits(applied), first=low.date() if low else None,
                              last=high.date())
    files = offline.paths(applied, records)
    params: dict[str, Any] = {"high": high} | ({"low": low} if low else {})
    ttl = spec.ttl_delta
    keys = [e.name for e in spec.entities]
    if low is None or not ttl or pairs_per_row(entities, keys, records, low, high,
                                               ttl) > MAX_PAIRS:
        return _query(offline, applied, files, set_sql(spec, wanted, low=low is not None),
                      params, entities=entities), None
    winners = _query(offline, applied, files, bucket_sql(spec), params, entities=entities)
    table = _query(offline, applied, files, values_sql(spec, wanted), params, winners=winners)
    return table, _positions(table, entities.num_rows)


def to_pandas(column: pa.ChunkedArray) -> Any:
    """A feature column for pandas: nullable integers and booleans stay exact."""
    import pandas as pd

    mapping = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
    return column.to_pandas(types_mapper=mapping.get)
