"""Tests for the customer-aggregates catalog function, against a brute-force reference."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from catalog.testing import load_module, run_examples, write_table

FOLDER = Path(__file__).resolve().parents[1]
MODULE = load_module(FOLDER)
T0 = pd.Timestamp("2026-11-01", tz="UTC")


def _transactions(tmp_path: Path, rows: list[tuple[int, str, float]], name: str) -> Path:
    frame = pd.DataFrame(rows, columns=["customer_id", "offset", "amount"])
    frame["event_timestamp"] = T0 + pd.to_timedelta(frame.pop("offset"))
    return write_table(frame, tmp_path / name)


def test_aggregates_match_a_brute_force_window(tmp_path: Path, out_dir: Path) -> None:
    rows = [(1, "0h", 10.0), (1, "2D", 20.0), (2, "3D", 5.0), (1, "7D", 30.0),
            (1, "7D 1s", 40.0), (2, "20D", 7.0)]
    source = _transactions(tmp_path, rows, "tx.parquet")
    out = MODULE.customer_aggregates(source, window_days=7)
    table = pd.read_parquet(out["features"])
    assert list(table.columns) == ["customer_id", "event_timestamp", "spend_7d",
                                   "txn_count_7d", "avg_amount_7d"]
    assert out["n_rows"] == len(rows) == len(table)
    for row in table.itertuples():
        # the window is (t - 7 days, t]: the row itself counts, one exactly 7 days old does not
        seen = [a for c, o, a in rows if c == row.customer_id
                and row.event_timestamp - pd.Timedelta(days=7) < T0 + pd.Timedelta(o)
                <= row.event_timestamp]
        assert row.spend_7d == pytest.approx(sum(seen))
        assert row.txn_count_7d == len(seen)
        assert row.avg_amount_7d == pytest.approx(sum(seen) / len(seen))
    assert table["event_timestamp"].is_monotonic_increasing


def test_window_days_names_the_columns_and_csv_works(tmp_path: Path, out_dir: Path) -> None:
    source = _transactions(tmp_path, [(1, "0h", 1.0), (1, "1D", 2.0)], "tx.csv")
    table = pd.read_parquet(MODULE.customer_aggregates(source, window_days=1)["features"])
    assert list(table["spend_1d"]) == [1.0, 2.0]  # exactly one day apart: the first drops out


@pytest.mark.parametrize(("frame", "message"), [
    (pd.DataFrame({"customer_id": [1], "amount": [1.0]}), r"lacks column\(s\) event_timestamp"),
    (pd.DataFrame({"customer_id": [1], "event_timestamp": [pd.Timestamp("2026-01-01")],
                   "amount": [1.0]}), r"has no timezone"),
    (pd.DataFrame({"customer_id": [1], "event_timestamp": [T0], "amount": ["x"]}),
     r"amount must be numeric"),
    (pd.DataFrame({"customer_id": [None], "event_timestamp": [T0], "amount": [1.0]}),
     r"rows without customer_id"),
])
def test_bad_tables_are_refused_clearly(frame: pd.DataFrame, message: str, tmp_path: Path,
                                        out_dir: Path) -> None:
    with pytest.raises(ValueError, match=message):
        MODULE.customer_aggregates(write_table(frame, tmp_path / "bad.parquet"))
    assert not out_dir.exists()


def test_bad_window_is_refused(tmp_path: Path, out_dir: Path) -> None:
    with pytest.raises(ValueError, match="window_days must be an integer from 1"):
        MODULE.customer_aggregates(tmp_path / "tx.parquet", window_days=0)


def test_examples_return_the_declared_outputs(tmp_path: Path, out_dir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _transactions(tmp_path, [(1, "0h", 1.0)], "transactions.parquet")
    for out in run_examples(FOLDER, MODULE.customer_aggregates):
        assert out["n_rows"] == 1
