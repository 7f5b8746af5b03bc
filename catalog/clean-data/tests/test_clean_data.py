"""Tests for the clean-data catalog function, calling the entrypoint directly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from catalog.testing import load_module, run_examples, write_table
from fnhub.core.manifest import load_manifest

FOLDER = Path(__file__).resolve().parents[1]
MODULE = load_module(FOLDER)


@pytest.fixture
def raw() -> pd.DataFrame:
    """Gaps in numbers and text, numbers as text, a duplicate, a constant, a missing label.

    Written as Parquet, which keeps the text column as text (a CSV reader would parse " 10").
    """
    return pd.DataFrame(
        {
            "age": [30.0, np.nan, 50.0, 40.0, 30.0, 61.0, np.nan],
            "income": [" 10", "20", None, "40", " 10", "60", "70"],
            "city": ["Oslo", "Rome", "Oslo", None, "Oslo", "Lima", "Rome"],
            "country": ["NO"] * 7,
            "notes": [None] * 7,
            "target": [0, 1, 1, np.nan, 0, 1, 0],
        }
    )


def _report(out: dict[str, Any]) -> dict[str, Any]:
    return json.loads(out["report"].read_text())


def test_defaults_clean_and_report_every_change(
    raw: pd.DataFrame, tmp_path: Path, out_dir: Path
) -> None:
    out = MODULE.clean_data(write_table(raw, tmp_path / "raw.parquet"))
    assert set(out) == {"cleaned", "report", "n_rows"}
    assert (out["cleaned"], out["report"]) == (out_dir / "cleaned.csv", out_dir / "report.json")
    cleaned = pd.read_csv(out["cleaned"])
    report = _report(out)

    # Row 3 lost its label; row 4 duplicates row 0; country is constant; notes is empty.
    assert out["n_rows"] == len(cleaned) == 5
    assert list(cleaned.columns) == ["age", "income", "city", "target"]
    assert report["rows_dropped_missing_label"] == 1
    assert report["duplicate_rows_removed"] == 1
    assert {c["column"]: c["to"] for c in report["coerced_columns"]} == {
        "income": "float64",
        "target": "int64",
    }
    imputed = {entry["column"]: entry for entry in report["imputed"]}
    assert imputed["age"] == {
        "column": "age", "strategy": "median", "requested": "median", "count": 2, "value": 50.0,
    }  # fmt: skip
    assert imputed["income"]["value"] == 40.0  # median of 10, 20, 60, 70
    assert "city" not in imputed  # its only gap was in the row without a label
    reasons = {entry["column"]: entry["reason"] for entry in report["dropped_columns"]}
    assert reasons == {
        "notes": "all values missing (no median to fill with)",
        "country": "constant: every row holds 'NO'",
    }
    assert report["input"] == {"file": "raw.parquet", "rows": 7, "columns": 6}
    assert report["output"] == {"rows": 5, "columns": 4}

    assert not cleaned.isna().any().any()
    assert cleaned["target"].dtype == "int64"
    assert cleaned["age"].tolist() == [30.0, 50.0, 50.0, 61.0, 50.0]
    assert cleaned["income"].tolist() == [10.0, 20.0, 40.0, 60.0, 70.0]
    assert not [p for p in out_dir.iterdir() if p.name.endswith(".tmp")]


def test_text_columns_fall_back_to_most_frequent(tmp_path: Path, out_dir: Path) -> None:
    frame = pd.DataFrame(
        {"city": ["Rome", None, "Oslo", "Rome", None], "x": [1, 2, 3, 4, 5], "target": [0] * 5}
    )
    out = MODULE.clean_data(write_table(frame, tmp_path / "t.csv"), default_strategy="mean")
    (entry,) = _report(out)["imputed"]
    assert entry == {
        "column": "city", "strategy": "most_frequent", "requested": "mean", "count": 2,
        "value": "Rome",
    }  # fmt: skip
    assert pd.read_csv(out["cleaned"])["city"].tolist() == ["Rome", "Rome", "Oslo", "Rome", "Rome"]


def test_per_column_strategies(raw: pd.DataFrame, tmp_path: Path, out_dir: Path) -> None:
    strategies = {
        "age": "mean",
        "city": "constant:unknown",
        "income": "drop",
        "notes": "constant:0",
    }
    out = MODULE.clean_data(
        write_table(raw, tmp_path / "raw.parquet"),
        strategies=strategies,
        drop_constant=False,
        drop_duplicates=False,
    )
    cleaned = pd.read_csv(out["cleaned"])
    report = _report(out)
    assert report["rows_dropped_missing"] == [{"column": "income", "rows": 1}]
    imputed = {entry["column"]: entry for entry in report["imputed"]}
    assert imputed["age"]["strategy"] == "mean"
    assert imputed["age"]["value"] == pytest.approx(np.mean([30, 30, 61]))  # rows 2 and 3 are gone
    assert imputed["notes"] == {
        "column": "notes", "strategy": "constant:0", "requested": "constant:0", "count": 5,
        "value": "0",
    }  # fmt: skip
    assert list(cleaned.columns) == list(raw.columns)  # nothing dropped
    assert len(cleaned) == out["n_rows"] == 5  # 7 less the unlabelled row, less row 2
    assert cleaned["city"].tolist() == ["Oslo", "Rome", "Oslo", "Lima", "Rome"]
    assert report["duplicate_rows_removed"] == 0 and report["dropped_columns"] == []


def test_drop_strategy_drops_rows_and_counts_them(tmp_path: Path, out_dir: Path) -> None:
    frame = pd.DataFrame(
        {"a": [1.0, np.nan, 3.0, np.nan], "b": [1, 2, 3, 4], "target": [0, 1, 0, 1]}
    )
    out = MODULE.clean_data(write_table(frame, tmp_path / "t.csv"), strategies={"a": "drop"})
    assert _report(out)["rows_dropped_missing"] == [{"column": "a", "rows": 2}]
    assert pd.read_csv(out["cleaned"])["b"].tolist() == [1, 3]
    assert out["n_rows"] == 2


def test_numeric_constant_is_a_number(tmp_path: Path, out_dir: Path) -> None:
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0], "target": [0, 1, 0]})
    path = write_table(frame, tmp_path / "t.csv")
    out = MODULE.clean_data(path, strategies={"a": "constant:-1.5"})
    assert pd.read_csv(out["cleaned"])["a"].tolist() == [1.0, -1.5, 3.0]
    with pytest.raises(ValueError, match=r"constant value 'n/a' for column 'a' is not a number"):
        MODULE.clean_data(path, strategies={"a": "constant:n/a"})


def test_parquet_nullable_and_categorical_columns_can_be_filled(
    tmp_path: Path, out_dir: Path
) -> None:
    frame = pd.DataFrame(
        {
            "count": pd.array([1, None, 2, 4], dtype="Int64"),
            "size": pd.Categorical(["s", "m", None, "m"]),
            "ok": pd.array([True, None, True, False], dtype="boolean"),
            "target": [0, 1, 0, 1],
        }
    )
    path = write_table(frame, tmp_path / "raw.parquet")
    out = MODULE.clean_data(path, default_strategy="mean", strategies={"size": "constant:xl"})
    cleaned = pd.read_csv(out["cleaned"])
    assert cleaned["count"].tolist() == [1.0, pytest.approx(7 / 3), 2.0, 4.0]
    assert cleaned["size"].tolist() == ["s", "m", "xl", "m"]
    assert cleaned["ok"].tolist() == [True, True, True, False]
    imputed = {entry["column"]: entry["strategy"] for entry in _report(out)["imputed"]}
    assert imputed == {"count": "mean", "size": "constant:xl", "ok": "most_frequent"}


def test_coercion_is_all_or_nothing_and_can_be_turned_off(tmp_path: Path, out_dir: Path) -> None:
    frame = pd.DataFrame({"n": ["1", "2", " 3 "], "w": ["1", "2kg", "3"], "label": ["x", "y", "x"]})
    path = write_table(frame, tmp_path / "raw.parquet")
    out = MODULE.clean_data(path, label_column="label")
    cleaned = pd.read_csv(out["cleaned"])
    (coerced,) = _report(out)["coerced_columns"]
    assert coerced["column"] == "n" and coerced["to"] == "int64"
    assert coerced["from"] in ("str", "object")  # pandas 3 and pandas 2 names for text
    assert cleaned["n"].tolist() == [1, 2, 3]
    assert cleaned["w"].tolist() == ["1", "2kg", "3"]

    out = MODULE.clean_data(path, label_column="label", coerce_types=False)
    assert _report(out)["coerced_columns"] == []


def test_table_without_labels(tmp_path: Path, out_dir: Path) -> None:
    frame = pd.DataFrame({"a": [1.0, np.nan, 1.0, 5.0], "b": ["u", "v", "u", "w"]})
    out = MODULE.clean_data(write_table(frame, tmp_path / "t.csv"), label_column=None)
    report = _report(out)
    assert report["label_column"] is None
    assert report["rows_dropped_missing_label"] == 0
    assert report["duplicate_rows_removed"] == 1
    assert out["n_rows"] == 3


def test_iris_is_already_clean(iris: pd.DataFrame, tmp_path: Path, out_dir: Path) -> None:
    frame = iris.drop_duplicates()
    out = MODULE.clean_data(write_table(frame, tmp_path / "iris.csv"))
    pd.testing.assert_frame_equal(
        pd.read_csv(out["cleaned"]), frame.reset_index(drop=True), check_dtype=False
    )
    report = _report(out)
    assert report["imputed"] == report["dropped_columns"] == report["coerced_columns"] == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategies": {"nope": "mean"}}, r"unknown column 'nope' \(columns: a, b, target\)"),
        ({"strategies": {"a": "avg"}}, r"strategies\['a'\]: unknown strategy 'avg' \(choices:"),
        ({"strategies": {"a": "constant:"}}, r"'constant:' needs a value"),
        ({"strategies": {"a": 3}}, r"a strategy must be a string"),
        ({"strategies": {"target": "mean"}}, r"'target' is the label column"),
        ({"strategies": ["a"]}, r"strategies must be a mapping"),
        ({"default_strategy": "mode"}, r"default_strategy: unknown strategy 'mode'"),
        ({"drop_constant": "yes"}, r"drop_constant must be true or false, got 'yes'"),
        ({"label_column": "y"}, r"label_column 'y' is not a column of t\.csv; columns: a, b"),
        ({"strategies": {"b": "drop"}}, r"no rows left after dropping rows with a missing 'b'"),
    ],
)
def test_bad_inputs_are_refused_clearly(
    kwargs: dict[str, Any], message: str, tmp_path: Path, out_dir: Path
) -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [np.nan, np.nan], "target": [0, 1]})
    with pytest.raises(ValueError, match=message):
        MODULE.clean_data(write_table(frame, tmp_path / "t.csv"), **kwargs)
    assert not out_dir.exists()


def test_unreadable_inputs(tmp_path: Path, out_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"unsupported suffix '\.txt'"):
        MODULE.clean_data(tmp_path / "t.txt")
    with pytest.raises(ValueError, match="table file not found"):
        MODULE.clean_data(tmp_path / "nowhere.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("a,target\n")
    with pytest.raises(ValueError, match=r"table empty\.csv has no rows"):
        MODULE.clean_data(empty)
    unlabelled = write_table(pd.DataFrame({"a": [1], "target": [np.nan]}), tmp_path / "u.csv")
    with pytest.raises(
        ValueError, match=r"no rows left after dropping rows with a missing 'target'"
    ):
        MODULE.clean_data(unlabelled)


def test_examples_return_the_declared_outputs(
    raw: pd.DataFrame, tmp_path: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = load_manifest(FOLDER)
    assert manifest.ref == "library/clean-data@1.0.1"
    assert manifest.spec.entrypoint == "clean_data.py:clean_data"

    write_table(raw, tmp_path / "raw.csv")
    monkeypatch.chdir(tmp_path)  # the examples name raw.csv relative to the run
    for out in run_examples(FOLDER, MODULE.clean_data):
        assert len(pd.read_csv(out["cleaned"])) == out["n_rows"]
        assert json.loads(out["report"].read_text())["output"]["rows"] == out["n_rows"]
