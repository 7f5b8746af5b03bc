"""Tests for the customer-transactions catalog function, calling the entrypoint directly."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from catalog.testing import load_module, run_examples

FOLDER = Path(__file__).resolve().parents[1]
MODULE = load_module(FOLDER)


def test_the_table_has_the_documented_columns_and_types(out_dir: Path) -> None:
    out = MODULE.customer_transactions(n_customers=30, days=10)
    assert out["dataset"] == out_dir / "transactions.parquet"
    table = pd.read_parquet(out["dataset"])
    assert list(table.columns) == ["transaction_id", "customer_id", "event_timestamp", "amount",
                                   "merchant_category", "is_fraud"]
    assert len(table) == out["n_rows"] > 0
    assert str(table["event_timestamp"].dtype) == "datetime64[us, UTC]"
    assert table["event_timestamp"].is_monotonic_increasing
    end = pd.Timestamp("2026-12-01", tz="UTC")
    assert table["event_timestamp"].between(end - pd.Timedelta(days=10), end).all()
    assert set(table["customer_id"]) <= set(range(1000, 1030))
    assert (table["amount"] > 0).all() and table["transaction_id"].is_unique
    assert set(table["is_fraud"]) <= {0, 1}


def test_fraud_is_large_and_learnable(out_dir: Path) -> None:
    table = pd.read_parquet(MODULE.customer_transactions(n_customers=100, fraud_rate=0.05,
                                                         seed=1)["dataset"])
    share = table["is_fraud"].mean()
    assert share == pytest.approx(0.05, abs=0.01)
    medians = table.groupby("is_fraud")["amount"].median()
    assert medians[1] > 3 * medians[0]


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    contents = []
    for run, seed in enumerate([3, 3, 4]):
        monkeypatch.setenv("FNHUB_OUTPUT_DIR", str(tmp_path / str(run)))
        out = MODULE.customer_transactions(n_customers=5, days=3, seed=seed)
        contents.append(pd.read_parquet(out["dataset"]))
    pd.testing.assert_frame_equal(contents[0], contents[1])
    assert not contents[0].equals(contents[2])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_customers": 0}, r"n_customers must be >= 1, got 0"),
    ({"days": "7"}, r"days must be an integer, got '7'"),
    ({"seed": -1}, r"seed must be between 0 and"),
    ({"fraud_rate": 1.0}, r"fraud_rate must be a number in \[0, 1\)"),
    ({"end": "2026-12-01T00:00:00"}, r"has no timezone"),
    ({"end": "yesterday"}, r"end must be an ISO-8601 time"),
    ({"n_customers": 100_000, "days": 3650}, r"over the limit of 5,000,000"),
])
def test_bad_inputs_are_refused_clearly(kwargs: dict, message: str, out_dir: Path) -> None:
    with pytest.raises(ValueError, match=message):
        MODULE.customer_transactions(**kwargs)
    assert not out_dir.exists()


def test_examples_return_the_declared_outputs(out_dir: Path) -> None:
    for out in run_examples(FOLDER, MODULE.customer_transactions):
        assert len(pd.read_parquet(out["dataset"])) == out["n_rows"]
