"""Tests for the get-historical-features catalog function: it returns exactly what the feature
store's own get_historical_features returns, and refuses bad input clearly."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from catalog.testing import load_module, run_examples, write_table
from fnhub.features.store import FeatureStore

FOLDER = Path(__file__).resolve().parents[1]
CATALOG = FOLDER.parent
MODULE = load_module(FOLDER)
T0 = pd.Timestamp("2026-11-01", tz="UTC")
FEATURES = ["customer-features:spend_7d", "customer-features:txn_count_7d"]


def _store(root: Path) -> Path:
    """An offline store under `root` holding customer-features (its transform's output
    ingested as is) with three rows of customers 1 and 2."""
    manifest = yaml.safe_load((CATALOG / "customer-features" / "featureset.yaml").read_text())
    manifest["spec"].pop("transform")
    (root / "set").mkdir(parents=True)
    (root / "set" / "featureset.yaml").write_text(yaml.safe_dump(manifest))
    offline = root / "features" / "offline"
    rows = pd.DataFrame({"customer_id": [1, 1, 2],
                         "event_timestamp": [T0, T0 + pd.Timedelta(days=2), T0],
                         "spend_7d": [10.0, 30.0, 5.0], "txn_count_7d": [1, 2, 1],
                         "avg_amount_7d": [10.0, 15.0, 5.0]})
    with FeatureStore(offline=offline) as store:
        store.apply(root / "set")
        store.ingest("customer-features", source=rows)
    return offline


def _labels(path: Path) -> Path:
    frame = pd.DataFrame({"customer_id": [1, 2, 1, 3],
                          "event_timestamp": [T0 + pd.Timedelta(days=d) for d in (1, 1, 3, 1)],
                          "is_fraud": [0, 1, 0, 0]})
    return write_table(frame, path)


def test_the_table_is_what_the_store_returns(tmp_path: Path, out_dir: Path) -> None:
    offline = _store(tmp_path)
    labels = _labels(tmp_path / "labels.parquet")
    out = MODULE.get_historical_features(labels, FEATURES, offline=str(offline))
    got = pd.read_parquet(out["dataset"])
    with FeatureStore(offline=offline) as store:
        expected = store.get_historical_features(pd.read_parquet(labels), FEATURES)
    pd.testing.assert_frame_equal(got, expected)
    assert out["n_rows"] == 4 and out["dataset"].parent == out_dir
    assert got["is_fraud"].tolist() == [0, 1, 0, 0]  # labels kept, rows in the input order
    assert got["customer-features:spend_7d"].iloc[:3].tolist() == [10.0, 5.0, 30.0]
    assert pd.isna(got["customer-features:spend_7d"].iloc[3])  # customer 3 has no features


def test_csv_entities_and_drop_columns(tmp_path: Path, out_dir: Path) -> None:
    offline = _store(tmp_path)
    labels = _labels(tmp_path / "labels.csv")  # times as ISO-8601 text with +00:00
    out = MODULE.get_historical_features(labels, FEATURES[:1], offline=str(offline),
                                         drop_columns=["customer_id", "event_timestamp"])
    got = pd.read_parquet(out["dataset"])
    assert list(got.columns) == ["is_fraud", "customer-features:spend_7d"]
    assert got["customer-features:spend_7d"].iloc[:3].tolist() == [10.0, 5.0, 30.0]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"features": []}, r"features must be a non-empty list of names"),
    ({"features": "customer-features:spend_7d"}, r"features must be a non-empty list"),
    ({"features": ["nope:x"]}, r"no feature set 'nope' is applied"),
    ({"features": ["customer-features:nope"]}, r"nope"),
    ({"features": FEATURES, "drop_columns": ["label"]},
     r"drop_columns names column\(s\) the table lacks: label"),
])
def test_bad_requests_are_refused_clearly(kwargs: dict, message: str, tmp_path: Path,
                                          out_dir: Path) -> None:
    offline = _store(tmp_path)
    with pytest.raises(ValueError, match=message):
        MODULE.get_historical_features(_labels(tmp_path / "labels.parquet"),
                                       offline=str(offline), **kwargs)
    assert not out_dir.exists()


@pytest.mark.parametrize(("frame", "message"), [
    (pd.DataFrame({"customer_id": [1]}), r"entities lacks the column event_timestamp"),
    (pd.DataFrame({"customer_id": [1], "event_timestamp": [pd.Timestamp("2026-11-02")]}),
     r"timezone"),
    (pd.DataFrame({"customer_id": [1], "event_timestamp": ["yesterday"]}),
     r"event_timestamp is not ISO-8601 time"),
    (pd.DataFrame({"customer_id": [], "event_timestamp": []}), r"entities .* has no rows"),
])
def test_bad_entity_tables_are_refused_clearly(frame: pd.DataFrame, message: str,
                                               tmp_path: Path, out_dir: Path) -> None:
    offline = _store(tmp_path)
    with pytest.raises(ValueError, match=message):
        MODULE.get_historical_features(write_table(frame, tmp_path / "bad.csv"), FEATURES,
                                       offline=str(offline))
    assert not out_dir.exists()


def test_examples_return_the_declared_outputs(tmp_path: Path, out_dir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FNHUB_FEATURES_OFFLINE", str(_store(tmp_path)))  # the configured store
    _labels(tmp_path / "labels.parquet")
    for out in run_examples(FOLDER, MODULE.get_historical_features):
        assert out["n_rows"] == 4
