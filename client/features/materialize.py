"""Materialize: the latest in-ttl value per entity at `end`, from the offline store to an
online store, incrementally and in batches.

Each online store keeps, per feature set, a watermark: the version it holds, the `end` it was
materialized to, and the ingests it has read. A later call recomputes only the entities that
may have changed: those with rows from ingests it has not read (whatever their event time:
late rows are not missed), or rows whose event or created time passed the old `end`.
Values that merely expire are hidden at read time (their event is older than `end - ttl`).
Results stream from DuckDB in record batches; each batch is written in one transaction and
the watermark only after the last, so a crashed run is simply run again (writes are
idempotent). `start=` recomputes every entity with rows at or after `start`; a new version,
or an `end` earlier than the stored one, starts the set afresh.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from fnhub.core.featureset import FeatureSetSpec
from fnhub.features.historical import INGEST, ROW, connect, q
from fnhub.features.offline import AppliedSet, OfflineStore
from fnhub.features.online import OnlineStore, encode

BATCH_ROWS = 10_000
Progress = Callable[[int], None]


def entity_key(values: list[Any]) -> str:
    """The online key of an entity: its key values as JSON, in the set's entity order."""
    return encode(values)


def _value(spec: FeatureSetSpec, row: dict[str, Any]) -> str | None:
    if row["__e"] is None:
        return None
    return encode({"e": row["__e"], "v": {f.name: row[f"f_{f.name}"] for f in spec.features}})


def _changed_sql(spec: FeatureSetSpec, *, incremental: bool, since_start: bool) -> str:
    """The entity keys to recompute, from the rows in the ttl window at `end`."""
    k = ", ".join(q(e.name) for e in spec.entities)
    if not incremental:
        condition = f"{q(spec.timestamp)} >= $start" if since_start else "TRUE"
    else:
        condition = (f"{q(INGEST)} NOT IN (SELECT ingest FROM done) "
                     f"OR {q(spec.timestamp)} > $previous")
        if spec.created:
            condition += f" OR ({q(spec.created)} > $previous AND {q(spec.created)} <= $end)"
    return f"SELECT DISTINCT {k} FROM window_rows WHERE {condition}"


def _sql(spec: FeatureSetSpec, bounds: str, changed: str) -> str:
    k = ", ".join(q(e.name) for e in spec.entities)
    event = q(spec.timestamp)
    order = [f"{event} DESC"] + ([f"{q(spec.created)} DESC"] if spec.created else []) + [
        f"{q(INGEST)} DESC", f"{q(ROW)} DESC"]
    visible = f"{q(spec.created)} <= $end" if spec.created else "TRUE"
    features = ", ".join(f"{q(f.name)} AS {q('f_' + f.name)}" for f in spec.features)
    return f"""
        WITH window_rows AS (SELECT * FROM rows WHERE {bounds}),
        changed AS ({changed}),
        winners AS (
            SELECT {k}, {event} AS __e, {features} FROM window_rows WHERE {visible}
            QUALIFY row_number() OVER (PARTITION BY {k} ORDER BY {', '.join(order)}) = 1
        )
        SELECT * FROM changed LEFT JOIN winners USING ({k})"""


def materialize_set(offline: OfflineStore, online: OnlineStore, applied: AppliedSet, *,
                    end: datetime, start: datetime | None = None,
                    progress: Progress | None = None, batch_rows: int = BATCH_ROWS) -> int:
    """Bring `online` up to `end` for one set; returns how many entities were written."""
    spec = applied.spec
    commits = offline.commits(applied)  # the snapshot this run reads, and records as read
    state = online.state(applied.name)
    fresh = (state is None or state.get("version") != applied.version
             or state.get("digest") != applied.digest
             or datetime.fromisoformat(state["end"]) > end)
    if fresh and state is not None:
        online.clear(applied.name)
    incremental = not fresh and start is None
    ttl: timedelta | None = spec.ttl_delta
    low = end - ttl if ttl is not None else None
    files = offline.files(applied, commits, first=low.date() if low else None, last=end.date())
    written = 0
    if files:
        con = connect()
        try:
            con.register("rows", offline.dataset(applied, files))
            event = q(spec.timestamp)
            bounds = f"{event} <= $end" + (f" AND {event} >= $low" if low else "")
            params: dict[str, Any] = {"end": end} | ({"low": low} if low else {})
            if incremental:
                assert state is not None
                done = pa.table({"ingest": pa.array(state.get("ingests", []), pa.int64())})
                con.register("done", done)
                params["previous"] = datetime.fromisoformat(state["end"])
            since_start = start is not None and not fresh
            if since_start:
                params["start"] = start
            sql = _sql(spec, bounds, _changed_sql(spec, incremental=incremental,
                                                  since_start=since_start))
            reader = con.sql(sql, params=params).to_arrow_reader(batch_rows)
            keys = [e.name for e in spec.entities]
            for batch in reader:
                rows = batch.to_pylist()
                online.write(applied.name, [
                    (entity_key([r[c] for c in keys]), _value(spec, r)) for r in rows])
                written += len(rows)
                if progress:
                    progress(len(rows))
        finally:
            con.close()
    online.set_state(applied.name, {
        "version": applied.version, "digest": applied.digest, "end": end.isoformat(),
        "ingests": sorted(c.ingest for c in commits)})
    return written
