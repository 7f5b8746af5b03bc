"""The customer-features set fits what its transform writes: the generated transactions,
aggregated by customer-aggregates, ingest into a feature store with the set's schema and come
back point in time."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from catalog.testing import load_module
from fnhub.features.store import FeatureStore

CATALOG = Path(__file__).resolve().parents[2]
FOLDER = Path(__file__).resolve().parents[1]


def test_the_transform_output_ingests_with_the_sets_schema(tmp_path: Path, out_dir: Path) -> None:
    generate = load_module(CATALOG / "customer-transactions").customer_transactions
    aggregate = load_module(CATALOG / "customer-aggregates").customer_aggregates
    manifest = yaml.safe_load((FOLDER / "featureset.yaml").read_text())
    with_ = manifest["spec"].pop("transform")["with"]
    (tmp_path / "set").mkdir()  # the set as its transform's output is ingested: no transform
    (tmp_path / "set" / "featureset.yaml").write_text(yaml.safe_dump(manifest))

    transactions = generate(n_customers=10, days=20)["dataset"]
    features = aggregate(transactions, **with_)["features"]
    with FeatureStore(offline=tmp_path / "offline", online=tmp_path / "online.db") as store:
        store.apply(tmp_path / "set")
        assert store.ingest("customer-features", source=features) == len(
            pd.read_parquet(transactions))
        entities = pd.DataFrame({"customer_id": [1000, 1000],
                                 "event_timestamp": pd.to_datetime(
                                     ["2026-01-01", "2026-12-01"], utc=True)})
        got = store.get_historical_features(entities, ["customer-features:txn_count_7d"])
    table = pd.read_parquet(transactions)
    assert pd.isna(got["customer-features:txn_count_7d"].iloc[0])  # before any transaction
    # the latest row of customer 1000 counts its own 7 days up to that transaction
    latest = table[table.customer_id == 1000].event_timestamp.max()
    expected = ((table.customer_id == 1000)
                & (table.event_timestamp > latest - pd.Timedelta(days=7))).sum()
    assert got["customer-features:txn_count_7d"].iloc[1] == expected


def test_the_card_shows_the_seeded_uri() -> None:
    assert "hub://library/customer-features" in (FOLDER / "README.md").read_text()
