"""`engine="dask"` (issue #17 Build 2): point-in-time retrieval split across a LocalCluster of
2 worker processes equals the local engine's result exactly, on a local folder and with the
offline store on S3 (the workers share nothing with the caller but the bucket)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.fs as pafs
import pytest

from fnhub.core.errors import InvalidInput
from fnhub.features.schema import INGEST, ROW
from fnhub.features.store import FeatureStore
from tests.features.conftest import make_store
from tests.features.factories import write_featureset
from tests.s3 import S3Server

pytestmark = pytest.mark.slow
T = pd.Timestamp("2026-03-10", tz="UTC")
REFS = ["drivers:conv_rate", "drivers:trips", "drivers:last_seen", "riders:tier"]


@pytest.fixture(scope="module")
def client(s3: S3Server) -> Iterator[object]:
    """Two worker processes; started after AWS_ENDPOINT_URL is set so they reach moto."""
    from distributed import Client, LocalCluster

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as dask:
            yield dask


def fill(store: FeatureStore, root: Path) -> pd.DataFrame:
    """Two sets over 300 drivers / 50 riders and 2,000 entity rows in shuffled order, with
    repeated keys, a repeating index, misses and expired rows; returns the entity frame."""
    rng = np.random.default_rng(7)
    store.apply(write_featureset(root / "sets", "drivers", features=[
        {"name": "conv_rate", "type": "float"}, {"name": "trips", "type": "int"},
        {"name": "last_seen", "type": "timestamp"}]))
    store.apply(write_featureset(root / "sets", "riders", created=None, ttl=None,
                                 entities=[{"name": "rider", "type": "str"}],
                                 features=[{"name": "tier", "type": "str"}]))
    n = 3_000
    events = T - pd.to_timedelta(rng.integers(0, 5 * 24 * 60, n), unit="min")
    store.ingest("drivers", pd.DataFrame({
        "driver_id": rng.integers(0, 300, n), "event_timestamp": events,
        "created": events + pd.to_timedelta(rng.integers(0, 120, n), unit="min"),
        "conv_rate": rng.random(n), "trips": rng.integers(0, 100, n), "last_seen": events}))
    store.ingest("riders", pd.DataFrame({
        "rider": [f"r{i % 50}" for i in range(400)],
        "event_timestamp": T - pd.to_timedelta(rng.integers(0, 10 * 24, 400), unit="h"),
        "tier": [f"t{i % 3}" for i in range(400)]}))
    rows = 2_000
    return pd.DataFrame({
        "driver_id": rng.integers(0, 320, rows),  # 300..319 have no rows
        "rider": [f"r{i}" for i in rng.integers(0, 60, rows)],
        "event_timestamp": T - pd.to_timedelta(rng.integers(-600, 6 * 24 * 60, rows),
                                               unit="min")}, index=[i % 7 for i in range(rows)])


def test_dask_equals_local_on_a_folder(client: object, tmp_path: Path) -> None:
    store = make_store(tmp_path)
    entity_df = fill(store, tmp_path)
    local = store.get_historical_features(entity_df, REFS)
    dask = store.get_historical_features(entity_df, REFS, engine="dask", dask_client=client)
    pd.testing.assert_frame_equal(dask, local, check_exact=True)
    assert local["drivers:conv_rate"].notna().sum() > 500  # the data does match things
    assert local["drivers:conv_rate"].isna().sum() > 50 and local["riders:tier"].isna().any()


def test_dask_equals_local_on_s3(client: object, s3: S3Server, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    store = make_store(tmp_path, offline=f"s3://{s3.create_bucket()}/features")
    entity_df = fill(store, tmp_path)
    local = store.get_historical_features(entity_df, REFS)
    dask = store.get_historical_features(entity_df, REFS, engine="dask", dask_client=client)
    pd.testing.assert_frame_equal(dask, local, check_exact=True)


def test_dask_refuses_bad_input_before_sending_work(client: object, tmp_path: Path) -> None:
    store = make_store(tmp_path)
    entity_df = fill(store, tmp_path)
    naive = entity_df.assign(event_timestamp=entity_df.event_timestamp.dt.tz_localize(None))
    with pytest.raises(InvalidInput, match="timezone-aware"):
        store.get_historical_features(naive, REFS, engine="dask", dask_client=client)
    with pytest.raises(InvalidInput, match="unknown engine"):
        store.get_historical_features(entity_df, REFS, engine="spark")


def _visible(store: FeatureStore, name: str) -> pd.DataFrame:
    """The committed rows of a set, without the ingest id, in a stable order."""
    applied = store.offline.get(name)
    files = store.offline.files(applied, store.offline.commits(applied))
    frame = store.offline.dataset(applied, files).to_table().to_pandas()
    return frame.drop(columns=[INGEST]).sort_values([ROW, "driver_id", "event_timestamp"]) \
        .reset_index(drop=True)


def _all_files(store: FeatureStore) -> list[str]:
    """Every Parquet file under the store, committed or not."""
    selector = pafs.FileSelector(store.offline.location.path("data"), recursive=True)
    return sorted(i.path for i in store.offline.location.fs.get_file_info(selector)
                  if i.path.endswith(".parquet"))


@pytest.mark.parametrize("on_s3", [False, True])
def test_dask_ingest_equals_local(client: object, s3: S3Server, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch, on_s3: bool) -> None:
    """The same Parquet folder (3 files) and DataFrame ingested by both engines: the same
    rows, numbered the same, hence the same training data; a bad part commits nothing."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    stores = {}
    for engine in ("local", "dask"):
        offline = f"s3://{s3.create_bucket()}/f" if on_s3 else tmp_path / engine / "offline"
        stores[engine] = make_store(tmp_path / engine, offline=str(offline))
    source = make_store(tmp_path / "source")
    entity_df = fill(source, tmp_path / "source")  # its datasets: the sources below
    applied = source.offline.get("drivers")
    folder = tmp_path / "drivers-source"
    folder.mkdir()
    for i, path in enumerate(source.offline.files(applied, source.offline.commits(applied))
                             [:3]):
        table = source.offline.dataset(applied, [path]).to_table()
        pd.DataFrame(table.to_pandas()).drop(columns=[INGEST, ROW]) \
            .to_parquet(folder / f"{i}.parquet")
    frame = pd.read_parquet(folder)
    for engine, store in stores.items():
        store.apply(write_featureset(tmp_path / "sets", "drivers", features=[
            {"name": "conv_rate", "type": "float"}, {"name": "trips", "type": "int"},
            {"name": "last_seen", "type": "timestamp"}]))
        assert store.ingest("drivers", str(folder), engine=engine, dask_client=client) \
            == len(frame)
        assert store.ingest("drivers", frame, engine=engine, dask_client=client) == len(frame)
    pd.testing.assert_frame_equal(_visible(stores["dask"], "drivers"),
                                  _visible(stores["local"], "drivers"), check_exact=True)
    refs = REFS[:3]
    pd.testing.assert_frame_equal(
        stores["dask"].get_historical_features(entity_df, refs),
        stores["local"].get_historical_features(entity_df, refs), check_exact=True)

    before = _visible(stores["dask"], "drivers")
    files = _all_files(stores["dask"])
    bad = frame.copy()
    bad.loc[len(bad) - 1, "event_timestamp"] = pd.NaT  # only the last slice is bad
    with pytest.raises(InvalidInput, match="event_timestamp"):
        stores["dask"].ingest("drivers", bad, engine="dask", dask_client=client)
    pd.testing.assert_frame_equal(_visible(stores["dask"], "drivers"), before)
    assert _all_files(stores["dask"]) == files  # the good parts' files were deleted too
