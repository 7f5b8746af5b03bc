"""Acceptance 2: a bad table is refused naming the problem and changes nothing; a killed
ingest leaves nothing of its batch visible; the offline store works the same on S3."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fnhub.core.errors import InvalidInput, ManifestError
from fnhub.features import offline as offline_module
from fnhub.features.store import FeatureStore
from tests.features.conftest import make_store
from tests.features.factories import write_featureset
from tests.s3 import S3Server

T0 = pd.Timestamp("2026-01-01", tz="UTC")
ROOT = Path(__file__).resolve().parents[2]


def table(n: int = 4, start: int = 0) -> pd.DataFrame:
    times = [T0 + pd.Timedelta(hours=13 * i) for i in range(start, start + n)]
    return pd.DataFrame({
        "driver_id": list(range(start, start + n)), "event_timestamp": times,
        "created": times, "conv_rate": [0.5] * n, "acc_rate": [0.25] * n,
        "avg_daily_trips": list(range(n)),
    })


def entity_df(n: int = 40) -> pd.DataFrame:
    return pd.DataFrame({"driver_id": list(range(n)),
                         "event_timestamp": [T0 + pd.Timedelta(days=30)] * n})


def visible_rows(store: FeatureStore) -> int:
    offline = store.offline
    applied = offline.get("driver-stats")
    files = offline.files(applied, offline.commits(applied))
    return offline.dataset(applied, files).count_rows() if files else 0


def snapshot(store: FeatureStore) -> tuple[list[str], int, list[object]]:
    """Every file of the offline store, the rows it shows, and training data read from it."""
    rows = store.get_historical_features(entity_df(), ["driver-stats:avg_daily_trips"])
    return (store.offline.location.walk(store.offline.location.root), visible_rows(store),
            rows.iloc[:, -1].tolist())


def _drop(column: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda df: df.drop(columns=column)


def _set(column: str, values: list[object]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda df: df.assign(**{column: values})


@pytest.mark.parametrize(("change", "message"), [
    (_drop("acc_rate"), "missing column 'acc_rate'"),
    (_set("conv_rate", ["high", "low", "x", "y"]), "column .conv_rate. has type (large_)?string, "
                                                   "expected float"),
    (_set("avg_daily_trips", [1.5, 2.0, 3.0, 4.0]), "column 'avg_daily_trips' has type double"),
    (_set("driver_id", pd.array([1, None, 3, 4], dtype="Int64")),
     "column 'driver_id' has 1 null value"),
    (_set("event_timestamp", [pd.Timestamp("2026-01-01")] * 4),
     "column 'event_timestamp' holds timestamps without a timezone"),
    (_set("created", [T0, None, T0, T0]), "column 'created' has 1 null value"),
])
def test_a_bad_table_is_refused_and_changes_nothing(
        store: FeatureStore, change: Callable[[pd.DataFrame], pd.DataFrame],
        message: str) -> None:
    store.ingest("driver-stats", table(4, start=10))
    before = snapshot(store)
    with pytest.raises(InvalidInput, match=message) as err:
        store.ingest("driver-stats", change(table()))
    assert "driver-stats" in err.value.message
    assert snapshot(store) == before


def test_a_bad_batch_after_good_ones_removes_what_was_written(store: FeatureStore,
                                                             tmp_path: Path) -> None:
    """The bad row is in the last row group: earlier groups were written, then deleted."""
    source = tmp_path / "big.parquet"
    frames = [table(50, start=50 * i) for i in range(5)]
    frames[-1].loc[49, "driver_id"] = None
    frames[-1]["driver_id"] = frames[-1]["driver_id"].astype("Int64")
    with pq.ParquetWriter(source, pa.Schema.from_pandas(frames[-1], preserve_index=False)) as w:
        for frame in frames:
            w.write_table(pa.Table.from_pandas(frame.astype({"driver_id": "Int64"}),
                                               preserve_index=False))
    before = snapshot(store)
    seen: list[int] = []
    with pytest.raises(InvalidInput, match="column 'driver_id' has 1 null value"):
        store.ingest("driver-stats", source, progress=seen.append)
    assert sum(seen) == 200  # four batches were written before the fifth failed
    assert snapshot(store) == before


def test_csv_and_parquet_sources(store: FeatureStore, tmp_path: Path) -> None:
    df = table(3)
    df.to_parquet(tmp_path / "t.parquet")
    df.assign(event_timestamp=df.event_timestamp.map(lambda t: t.isoformat()),
              created=df.created.map(lambda t: t.isoformat())).to_csv(tmp_path / "t.csv",
                                                                     index=False)
    assert store.ingest("driver-stats", tmp_path / "t.parquet") == 3
    assert store.ingest("driver-stats", str(tmp_path / "t.csv")) == 3
    df.to_csv(tmp_path / "naive.csv", index=False, date_format="%Y-%m-%d %H:%M:%S")
    with pytest.raises(InvalidInput, match="without a timezone"):
        store.ingest("driver-stats", tmp_path / "naive.csv")
    with pytest.raises(InvalidInput, match="does not exist"):
        store.ingest("driver-stats", tmp_path / "nope.parquet")


STREAM = """
import sys
import pyarrow as pa
from fnhub.features.sources import batches
rows = sum(b.num_rows for b in batches(sys.argv[1], None))
print(rows, pa.default_memory_pool().max_memory())
"""


def test_a_parquet_source_is_read_a_little_at_a_time(tmp_path: Path) -> None:
    """Arrow's defaults (pre-buffering every row group, 16 batches read ahead) held a whole
    Parquet source in memory during ingest: 1.9 GB for the bench's 10M rows. In a fresh
    process, so Arrow's peak allocation is this read's alone."""
    rng = np.random.default_rng(1)
    rows = 800_000  # 10 float64 columns: 64 MB decoded, in 160 row groups
    pq.write_table(pa.table({f"f{i}": rng.random(rows) for i in range(10)}),
                   tmp_path / "big.parquet", row_group_size=5_000)
    out = subprocess.run([sys.executable, "-c", STREAM, str(tmp_path / "big.parquet")],
                         capture_output=True, text=True, check=True).stdout.split()
    assert int(out[0]) == rows
    assert int(out[1]) < 64_000_000 // 3  # about two 64k-row batches: 13 MB


def test_the_offline_store_reads_its_files_without_pre_buffering(store: FeatureStore) -> None:
    """Materialize scans the store's files through this dataset: pre-buffering would hold each
    file's every row group until its scan ends (see the test above)."""
    store.ingest("driver-stats", table(4))
    offline = store.offline
    applied = offline.get("driver-stats")
    dataset = offline.dataset(applied, offline.files(applied, offline.commits(applied)))
    assert dataset.format.default_fragment_scan_options.pre_buffer is False


def _spread_batches(count: int, rows: int, days: int) -> list[pa.RecordBatch]:
    """`count` batches of `rows` rows each, spread evenly over `days` dates (as an ingest of
    a large table arrives: every batch touches every date)."""
    out = []
    for b in range(count):
        i = np.arange(b * rows, (b + 1) * rows)
        times = (T0 + pd.to_timedelta(i % days, unit="D") + pd.to_timedelta(i, unit="s"))
        out.extend(pa.Table.from_pandas(pd.DataFrame({
            "driver_id": i, "event_timestamp": times, "created": times,
            "conv_rate": np.full(rows, 0.5), "acc_rate": np.full(rows, 0.25),
            "avg_daily_trips": i % rows}), preserve_index=False).to_batches())
    return out


def _row_groups(store: FeatureStore) -> dict[str, list[int]]:
    offline = store.offline
    applied = offline.get("driver-stats")
    return {path.rsplit("/", 2)[-2]: [pq.ParquetFile(path).metadata.row_group(i).num_rows
                                      for i in range(pq.ParquetFile(path).num_row_groups)]
            for path in offline.files(applied, offline.commits(applied))}


def test_rows_of_a_date_are_held_until_they_fill_a_row_group(
        store: FeatureStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each batch brings 3 rows per date; written as they came, every date would hold row
    groups of 3 rows (DuckDB scans row groups that small at half the speed)."""
    monkeypatch.setattr(offline_module, "ROW_GROUP_ROWS", 12)
    store.offline.ingest(store.offline.get("driver-stats"), _spread_batches(10, 6, days=2))
    assert _row_groups(store) == {"event_date=2026-01-01": [12, 12, 6],
                                  "event_date=2026-01-02": [12, 12, 6]}
    result = store.get_historical_features(pd.DataFrame({
        "driver_id": range(60),
        "event_timestamp": [T0 + pd.Timedelta(days=1, hours=1)] * 60}),
        ["driver-stats:avg_daily_trips"])
    assert result["driver-stats:avg_daily_trips"].tolist() == list(range(6)) * 10


def test_what_an_ingest_holds_for_row_groups_stays_within_its_budget(
        store: FeatureStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over the budget, the date holding most is written first: row groups get smaller, and
    the memory held stays bounded however many dates an ingest spreads over. The rows held
    own their memory (a slice of a batch would keep all of the batch alive)."""
    batches = _spread_batches(8, 30_000, days=30)
    per_date = batches[0].nbytes // 30  # what one batch brings to one date
    monkeypatch.setattr(offline_module, "BUFFER_BYTES", 40 * per_date)
    allocated: list[int] = []
    before = pa.total_allocated_bytes()
    store.offline.ingest(
        store.offline.get("driver-stats"), iter(batches),
        progress=lambda _rows: allocated.append(pa.total_allocated_bytes() - before))
    # held: at most the budget and the date just added; plus the batch being split (its
    # sorted order and the dates' copies)
    assert max(allocated) < 40 * per_date + 4 * batches[0].nbytes
    groups = _row_groups(store)
    assert sum(map(sum, groups.values())) == 240_000
    assert max(len(g) for g in groups.values()) > 1  # the budget, not the ingest's end, wrote


KILLED = """
import sys, time
from pathlib import Path
from fnhub.features.store import FeatureStore
store = FeatureStore(offline=sys.argv[1], online=sys.argv[2])
def slow(rows):
    Path(sys.argv[4]).touch()  # a batch is written, the commit is not
    time.sleep(0.2)
store.ingest("driver-stats", sys.argv[3], progress=slow)
"""


@pytest.mark.slow
def test_a_killed_ingest_leaves_nothing_visible(store: FeatureStore, tmp_path: Path) -> None:
    store.ingest("driver-stats", table(4, start=10))
    source = tmp_path / "big.parquet"
    with pq.ParquetWriter(source, pa.Schema.from_pandas(table(1), preserve_index=False)) as w:
        for i in range(100):
            w.write_table(pa.Table.from_pandas(table(100, start=100 * i), preserve_index=False))
    before = snapshot(store)
    marker = tmp_path / "written"
    env = {**os.environ, "FNHUB_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(tmp_path / "offline"),
                             str(tmp_path / "online.db"), str(source), str(marker)], env=env)
    deadline = time.monotonic() + 120
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the ingest never wrote a batch"
    time.sleep(0.5)  # a few batches in
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    files, rows, training = snapshot(store)
    assert (rows, training) == before[1:]  # nothing of the killed ingest is visible...
    assert any(f.endswith(".parquet") for f in set(files) - set(before[0]))  # ...though written
    # a complete ingest becomes visible whole
    assert store.ingest("driver-stats", source) == 10_000
    assert visible_rows(store) == 4 + 10_000


@pytest.mark.slow
def test_the_offline_store_on_s3(s3: S3Server, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    bucket = s3.create_bucket()
    store = make_store(tmp_path, offline=f"s3://{bucket}/features")
    store.apply(write_featureset(tmp_path / "sets"))
    assert store.ingest("driver-stats", table(4)) == 4
    before = snapshot(store)
    with pytest.raises(InvalidInput, match="missing column"):
        store.ingest("driver-stats", table(4, start=4).drop(columns="conv_rate"))
    assert snapshot(store) == before
    keys = sorted(o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket)["Contents"]
                  if not o["Key"].endswith("/"))  # folder markers
    assert keys[0].startswith("features/data/driver-stats/1.0.0/_commits/")
    assert len(keys) == 4  # one commit, two partitions, the registry entry
    assert "features/registry/driver-stats.json" in keys
    assert any("event_date=2026-01-01/part-" in k for k in keys)
    assert before[1] == 4


def test_re_applying_the_same_version_keeps_the_entry_as_first_applied(
        store: FeatureStore, tmp_path: Path) -> None:
    """Same version and digest: the registry entry (its transform pin included) is not
    rewritten, so a range in `transform.uses` is not resolved again for a dataset."""
    first = store.offline.get("driver-stats")
    store.ingest("driver-stats", table())
    again = store.apply(write_featureset(tmp_path / "sets"))
    assert again == first and store.offline.get("driver-stats") == first
    assert visible_rows(store) == 4


def test_a_transform_pin_that_does_not_bind_to_the_set_is_refused(tmp_path: Path) -> None:
    """`apply(transform=...)` checks the pin itself (a step runs it from a lock's entry), so a
    pin for a set that has no hub transform is refused and nothing is applied."""
    pin = "hub://acme/agg:1.0.0@sha256:" + "ab" * 32
    with make_store(tmp_path) as fs:
        with pytest.raises(ManifestError, match="has no hub transform to pin"):
            fs.apply(write_featureset(tmp_path / "sets"), transform=pin)
        assert fs.list() == []


def test_a_store_whose_path_looks_like_a_glob_reads_only_its_own_files(tmp_path: Path) -> None:
    """DuckDB reads a path as a glob: `st[1]/x.parquet` matches a sibling `st1/x.parquet`."""
    entities = pd.DataFrame({"driver_id": range(4),
                             "event_timestamp": [T0 + pd.Timedelta(days=2)] * 4})
    with make_store(tmp_path, offline=str(tmp_path / "st[1]")) as fs:
        fs.apply(write_featureset(tmp_path / "sets"))
        fs.ingest("driver-stats", table().assign(avg_daily_trips=[7] * 4))
        shutil.copytree(tmp_path / "st[1]", tmp_path / "st1")  # the same names, other values
        for part in (tmp_path / "st1").rglob("*.parquet"):
            rows = pq.read_table(part)
            column = rows.schema.get_field_index("avg_daily_trips")
            pq.write_table(rows.set_column(column, rows.schema.field(column),
                                           pa.array([100] * rows.num_rows)), part)
        got = fs.get_historical_features(entities, ["driver-stats:avg_daily_trips"])
    assert got.iloc[:, -1].tolist() == [7] * 4


def test_a_commit_naming_a_file_outside_its_dataset_is_refused(store: FeatureStore) -> None:
    """A shared store's commit file is data: a `..` or glob path in it is not followed."""
    store.ingest("driver-stats", table())
    location, applied = store.offline.location, store.offline.get("driver-stats")
    [commit] = location.list(f"{store.offline.dataset_folder(applied)}/_commits", ".json")
    text = Path(commit).read_text()
    Path(commit).write_text(text.replace('"event_date=', '"../../event_date=', 1))
    with pytest.raises(ManifestError, match="is not a commit this store wrote"):
        store.get_historical_features(entity_df(), ["driver-stats:avg_daily_trips"])
