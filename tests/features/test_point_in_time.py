"""Acceptance 1: get_historical_features equals a brute-force reference, exactly.

Random entities, event times, created times, ttls and ingests; the reference below is the
rule of design §10 written as plainly as possible. Values are compared exactly, missing ones
included, and no returned value was written after the entity row's time."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fnhub.core.errors import InvalidInput
from fnhub.core.featureset import parse_ttl
from fnhub.features import historical
from fnhub.features.historical import _entities, connect, register_rows, set_sql
from fnhub.features.offline import CommitFile
from fnhub.features.store import FeatureStore
from tests.features.conftest import make_store
from tests.features.factories import write_featureset

BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)
FEATURES = [{"name": "value", "type": "float"}, {"name": "count", "type": "int"},
            {"name": "seen_at", "type": "timestamp"}]
REFS = ["stats:value", "stats:count", "stats:seen_at"]

# Entity times on an hourly grid, event times on a 6-hourly one: ties between rows and
# rows exactly at the ttl boundary are frequent.
hours = st.integers(min_value=0, max_value=24 * 6).map(lambda h: BASE + timedelta(hours=h))
events = st.integers(min_value=0, max_value=4 * 6).map(lambda h: BASE + timedelta(hours=6 * h))
feature_row = st.fixed_dictionaries({
    "key": st.integers(0, 3), "event": events,
    "delay": st.sampled_from([0, 0, 1, 5, 30, -2]),  # created = event + delay hours
    "value": st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)),
    "count": st.one_of(st.none(), st.integers(-(2**62), 2**62)),
})
entity_row = st.fixed_dictionaries({"key": st.integers(0, 4), "t": hours})


def reference(ingests: list[list[dict[str, Any]]], entities: list[dict[str, Any]],
              ttl: timedelta | None, with_created: bool) -> list[tuple[Any, ...]]:
    """For each entity row: the visible row with the latest (event, created, ingest, row)."""
    out = []
    for entity in entities:
        t, best, best_rank = entity["t"], None, None
        for i, rows in enumerate(ingests):
            for j, row in enumerate(rows):
                created = row["event"] + timedelta(hours=row["delay"])
                visible = (row["key"] == entity["key"] and row["event"] <= t
                           and (not with_created or created <= t)
                           and (ttl is None or row["event"] >= t - ttl))
                rank = (row["event"], created if with_created else 0, i, j)
                if visible and (best_rank is None or rank > best_rank):
                    best, best_rank = row, rank
        out.append((None, None, None) if best is None
                   else (best["value"], best["count"], best["event"]))
    return out


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame({
        "driver_id": pd.array([r["key"] for r in rows], dtype="int64"),
        "event_timestamp": pd.to_datetime([r["event"] for r in rows], utc=True),
        "created": pd.to_datetime([r["event"] + timedelta(hours=r["delay"]) for r in rows],
                                  utc=True),
        "value": pd.array([r["value"] for r in rows], dtype="Float64"),
        "count": pd.array([r["count"] for r in rows], dtype="Int64"),
        "seen_at": pd.to_datetime([r["event"] for r in rows], utc=True),
    })


def _python(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ingests=st.lists(st.lists(feature_row, min_size=1, max_size=12), max_size=3),
       entities=st.lists(entity_row, min_size=1, max_size=12),
       ttl=st.sampled_from([None, "1h", "5h", "1d", "2d", "3600s", "1w"]),
       with_created=st.booleans())
def test_historical_features_equal_the_reference(
        ingests: list[list[dict[str, Any]]], entities: list[dict[str, Any]],
        ttl: str | None, with_created: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = make_store(Path(tmp))
        store.apply(write_featureset(Path(tmp) / "sets", "stats", ttl=ttl, features=FEATURES,
                                     created="created" if with_created else None))
        for rows in ingests:
            frame = _frame(rows)
            assert store.ingest("stats", frame if with_created else frame.drop(
                columns="created")) == len(rows)
        entity_df = pd.DataFrame({
            "driver_id": [e["key"] for e in entities],
            "event_timestamp": pd.to_datetime([e["t"] for e in entities], utc=True)})
        result = store.get_historical_features(entity_df, REFS)
    assert list(result.columns) == ["driver_id", "event_timestamp", *REFS]
    assert result["driver_id"].tolist() == entity_df["driver_id"].tolist()  # input order
    got = [tuple(_python(v) for v in row) for row in result[REFS].itertuples(index=False)]
    expected = reference(ingests, entities, parse_ttl(ttl) if ttl else None, with_created)
    assert got == expected
    for entity, (_value, _count, seen_at) in zip(entities, got, strict=True):
        assert seen_at is None or seen_at <= entity["t"]  # never a future row


def test_the_asof_join_for_dense_rows_equals_the_reference_too(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Sets with a ttl go through the bucket join while their rows are sparse (as above);
    the ASOF JOIN they fall back to when rows are dense gives the same answers."""
    monkeypatch.setattr(historical, "MAX_PAIRS", -1)
    test_historical_features_equal_the_reference()


def test_sparse_rows_with_a_ttl_go_through_the_bucket_join() -> None:
    """2,000 rows over 1,000 keys and 30 days, a 2-day ttl, every key asked for: about 0.3
    rows per entity row in its two buckets (the bench's data has 2.8)."""
    entities = pa.table({"driver_id": pa.array(range(1000), pa.int64())})
    day = timedelta(days=1)
    records = [CommitFile(path=f"event_date=2026-01-{d + 1:02d}/part-1-{d}.parquet",
                          date=(BASE + d * day).date(), rows=2000 // 30) for d in range(30)]
    estimate = historical.pairs_per_row(entities, ["driver_id"], records, BASE,
                                        BASE + 30 * day, 2 * day)
    assert estimate == pytest.approx(1980 / 1000 * 4 / 30)
    assert estimate <= historical.MAX_PAIRS
    # one key asked for: all its rows are dense, as far as anyone can tell from here
    assert historical.pairs_per_row(entities.slice(0, 1), ["driver_id"], records, BASE,
                                    BASE + 30 * day, 2 * day) > historical.MAX_PAIRS


def test_several_sets_join_in_one_call(store: FeatureStore, tmp_path: Path) -> None:
    store.apply(write_featureset(tmp_path / "sets", "trips", ttl=None, created=None,
                                 features=[{"name": "trips", "type": "int"}]))
    t = pd.Timestamp("2026-01-02", tz="UTC")
    store.ingest("driver-stats", pd.DataFrame({
        "driver_id": [1, 2], "event_timestamp": [t, t], "created": [t, t],
        "conv_rate": [0.5, 0.25], "acc_rate": [1.0, 0.0], "avg_daily_trips": [3, 4]}))
    store.ingest("trips", pd.DataFrame({"driver_id": [2], "event_timestamp": [t],
                                        "trips": [7]}))
    entity_df = pd.DataFrame({"driver_id": [2, 1, 2],
                              "event_timestamp": [t, t + pd.Timedelta("1h"), t - pd.Timedelta(
                                  "1s")]})
    result = store.get_historical_features(
        entity_df, ["trips:trips", "driver-stats:conv_rate", "driver-stats:avg_daily_trips"])
    assert result["trips:trips"].tolist() == [7, pd.NA, pd.NA]
    assert result["driver-stats:conv_rate"].tolist()[:2] == [0.25, 0.5]
    assert pd.isna(result["driver-stats:conv_rate"].iloc[2])
    assert result["driver-stats:avg_daily_trips"].tolist() == [4, 3, pd.NA]
    # values go to rows by position, whatever the frame's index (here repeated, unordered)
    again = store.get_historical_features(entity_df.set_axis([5, 0, 5]), ["trips:trips"])
    assert again["trips:trips"].tolist() == [7, pd.NA, pd.NA]
    assert again.index.tolist() == [5, 0, 5]


def test_a_set_keyed_by_two_entities_matches_rows_on_both(tmp_path: Path) -> None:
    """Composite keys: a row belongs to one (driver, city) pair, never to a driver alone."""
    store = make_store(tmp_path)
    store.apply(write_featureset(tmp_path / "sets", "trips", features=[
        {"name": "fare", "type": "float"}], entities=[{"name": "driver_id", "type": "int"},
                                                      {"name": "city", "type": "str"}]))
    t = pd.Timestamp("2026-01-03", tz="UTC")
    store.ingest("trips", pd.DataFrame({
        "driver_id": [1, 1, 2], "city": ["oslo", "rome", "oslo"],
        "event_timestamp": [t, t - pd.Timedelta(hours=1), t], "created": [t, t, t],
        "fare": [1.5, 2.5, 3.5]}))
    entity_df = pd.DataFrame({"driver_id": [2, 1, 1, 2], "city": ["oslo", "rome", "oslo", "rome"],
                              "event_timestamp": [t + pd.Timedelta(hours=1)] * 4})
    result = store.get_historical_features(entity_df, ["trips:fare"])
    assert result["trips:fare"].tolist()[:3] == [3.5, 2.5, 1.5]
    assert pd.isna(result["trips:fare"].iloc[3])
    store.close()


def test_a_row_not_yet_created_gives_way_to_the_latest_visible_one(
        store: FeatureStore) -> None:
    """The latest event before `t` was written after `t` (created later): an older row
    wins, also against a row of the same event time that is visible."""
    t = pd.Timestamp("2026-01-03", tz="UTC")
    h = pd.Timedelta("1h")
    store.ingest("driver-stats", pd.DataFrame({
        "driver_id": [1, 1, 2, 2, 2],
        "event_timestamp": [t - 5 * h, t - 2 * h, t - 3 * h, t - 1 * h, t - 1 * h],
        "created": [t - 4 * h, t + 3 * h, t - 3 * h, t - 1 * h, t + 1 * h],
        "conv_rate": [0.1, 0.2, 0.3, 0.4, 0.5], "acc_rate": [0.0] * 5,
        "avg_daily_trips": [1, 2, 3, 4, 5]}))
    entity_df = pd.DataFrame({"driver_id": [1, 2, 1, 2],
                              "event_timestamp": [t, t, t + 3 * h, t + 1 * h]})
    result = store.get_historical_features(entity_df, ["driver-stats:conv_rate"])
    assert result["driver-stats:conv_rate"].tolist() == [0.1, 0.4, 0.2, 0.5]


def test_a_local_store_is_read_by_duckdb_with_only_the_columns_asked_for(
        store: FeatureStore) -> None:
    t = pd.Timestamp("2026-01-03", tz="UTC")
    store.ingest("driver-stats", pd.DataFrame({
        "driver_id": [1], "event_timestamp": [t], "created": [t], "conv_rate": [0.5],
        "acc_rate": [0.0], "avg_daily_trips": [1]}))
    applied = store.offline.get("driver-stats")
    files = store.offline.files(applied, store.offline.commits(applied))
    con = connect()
    con.register("entities", _entities(pd.DataFrame({"driver_id": [1], "event_timestamp": [t]}),
                                       {"driver_id": "int"}))
    register_rows(con, store.offline, applied, files)
    plan = "\n".join(row[1] for row in con.execute(
        "EXPLAIN " + set_sql(applied.spec, ["conv_rate"], low=True),
        {"low": t - pd.Timedelta(days=2), "high": t}).fetchall())
    con.close()
    assert "PARQUET_SCAN" in plan  # DuckDB's reader: projection and row-group pushdown
    assert "conv_rate" in plan and "acc_rate" not in plan and "avg_daily_trips" not in plan


def test_duckdb_reads_parquet_without_prefetching_whole_row_groups() -> None:
    """Prefetching held the columns of whole row groups ahead: +90 MiB at the peak of the
    bench's values query, against +45 without (bench/README.md)."""
    con = connect()
    assert con.execute("SELECT current_setting('disable_parquet_prefetching')").fetchone() == (
        True,)
    con.close()


@pytest.mark.parametrize(("entity_df", "features", "message"), [
    (pd.DataFrame({"driver_id": [1], "event_timestamp": [pd.Timestamp("2026-01-01")]}),
     ["driver-stats:conv_rate"], "timezone-aware"),
    (pd.DataFrame({"event_timestamp": [pd.Timestamp("2026-01-01", tz="UTC")]}),
     ["driver-stats:conv_rate"], "no entity column 'driver_id'"),
    (pd.DataFrame({"driver_id": [1], "event_timestamp": [pd.Timestamp("2026-01-01", tz="UTC")]}),
     ["driver-stats:speed"], "has no feature 'speed'"),
    (pd.DataFrame({"driver_id": [1], "event_timestamp": [pd.Timestamp("2026-01-01", tz="UTC")]}),
     ["conv_rate"], "invalid feature reference"),
    (pd.DataFrame({"driver_id": [1], "event_timestamp": [pd.Timestamp("2026-01-01", tz="UTC")]}),
     ["../etc:conv_rate"], "invalid feature reference"),
    (pd.DataFrame({"driver_id": [1], "event_timestamp": [
        pd.Timestamp("2026-01-01 00:00:00.000000001", tz="UTC")]}),
     ["driver-stats:conv_rate"], "finer than microseconds"),
])
def test_bad_requests_name_the_problem(store: FeatureStore, entity_df: pd.DataFrame,
                                       features: list[str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        store.get_historical_features(entity_df, features)


def test_a_feature_store_imports_no_installer_until_it_installs(tmp_path: Path) -> None:
    """Training data and lookups never install: the installer's imports (~14 MiB) would
    count in their peak memory."""
    code = ("import sys, fnhub; fnhub.FeatureStore(offline=sys.argv[1], online=sys.argv[2]); "
            "print(sorted(m for m in ('fnhub.install', 'fnhub.function') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "offline"),
                          str(tmp_path / "online.db")], capture_output=True, text=True,
                         check=True, env={**os.environ, "FNHUB_HOME": str(tmp_path)})
    assert out.stdout.strip() == "[]"


def test_the_bucket_join_hashes_on_keys_and_bucket(store: FeatureStore) -> None:
    """Joined on the keys alone, every row would meet every entity row of its key (millions
    of pairs for a key asked about often); the bucket has to be part of the hash key."""
    t = pd.Timestamp("2026-01-03", tz="UTC")
    store.ingest("driver-stats", pd.DataFrame({
        "driver_id": [1], "event_timestamp": [t], "created": [t], "conv_rate": [0.5],
        "acc_rate": [0.0], "avg_daily_trips": [1]}))
    applied = store.offline.get("driver-stats")
    con = connect()
    con.register("entities", _entities(pd.DataFrame({"driver_id": [1], "event_timestamp": [t]}),
                                       {"driver_id": "int"}))
    register_rows(con, store.offline, applied,
                  store.offline.files(applied, store.offline.commits(applied)))
    plan = "\n".join(row[1] for row in con.execute(
        "EXPLAIN " + historical.bucket_sql(applied.spec),
        {"low": t - pd.Timedelta(days=2), "high": t}).fetchall())
    con.close()
    assert "Hash Join" in plan and "__b = __b" in plan  # not a filter after a join on keys
