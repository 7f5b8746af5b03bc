"""Tests for the describe catalog function, calling the entrypoint directly."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from catalog.testing import PNG_SIGNATURE, load_module, pngs, run_examples
from fnhub.manifest import load_manifest

FOLDER = Path(__file__).resolve().parents[1]
MODULE = load_module(FOLDER)


@pytest.fixture
def mixed() -> pd.DataFrame:
    """Numbers with gaps, text with a clear mode, booleans, and an all-missing column."""
    return pd.DataFrame(
        {
            "x": [1.0, 2.0, np.nan, 4.0, 10.0, np.nan],
            "n": [3, 1, 4, 1, 5, 9],
            "city": ["Oslo", "Rome", "Oslo", None, "Lima", "Oslo"],
            "flag": [True, False, True, True, False, True],
            "empty": [np.nan] * 6,
        }
    )


def test_iris_summary_matches_pandas(iris_csv: Path, out_dir: Path) -> None:
    out = MODULE.describe(iris_csv)
    frame = pd.read_csv(iris_csv)
    assert (out["n_rows"], out["n_columns"]) == (150, 5)
    assert out["summary"] == out_dir / "summary.csv"

    summary = pd.read_csv(out["summary"]).set_index("column")
    assert list(summary.index) == list(frame.columns)
    assert list(summary.columns) == MODULE.SUMMARY_COLUMNS[1:]
    expected = frame.describe().T
    for stat in ["count", "mean", "std", "min", "25%", "50%", "75%", "max"]:
        np.testing.assert_allclose(summary[stat], expected[stat], err_msg=stat)
    assert (summary["missing"] == 0).all()
    assert summary.loc["target", "unique"] == 3
    assert summary.loc["sepal length (cm)", "unique"] == frame["sepal length (cm)"].nunique()
    assert summary.loc["target", "dtype"] == "int64"


def test_missing_values_text_and_boolean_columns(
    mixed: pd.DataFrame, tmp_path: Path, out_dir: Path
) -> None:
    path = tmp_path / "mixed.parquet"
    mixed.to_parquet(path, index=False)
    out = MODULE.describe(path)
    summary = pd.read_csv(out["summary"]).set_index("column")

    assert summary.loc["x", "missing"] == 2
    assert summary.loc["x", "missing_pct"] == pytest.approx(100 * 2 / 6)
    assert summary.loc["x", "count"] == 4
    assert summary.loc["x", "mean"] == pytest.approx(mixed["x"].mean())
    assert summary.loc["x", "50%"] == pytest.approx(3.0)
    assert summary.loc["n", "top"] == "1"  # the only repeated value
    assert summary.loc["city", "top"] == "Oslo"
    assert summary.loc["city", "unique"] == 3
    assert summary.loc["city", "missing"] == 1
    assert np.isnan(summary.loc["city", "mean"])
    assert np.isnan(summary.loc["flag", "mean"])  # booleans are not summed up as numbers
    assert summary.loc["empty", "missing_pct"] == 100.0
    assert summary.loc["empty", "unique"] == 0

    # Histograms for numeric columns only (not text, not booleans); the empty one still gets one.
    plots = pngs(out["plots"])
    assert sorted(plots) == ["empty.png", "n.png", "x.png"]
    assert all(data.startswith(PNG_SIGNATURE) for data in plots.values())


def test_label_column_splits_histograms(iris_csv: Path, out_dir: Path) -> None:
    out = MODULE.describe(iris_csv, label_column="target", bins=10)
    assert out["plots"] == out_dir / "plots"
    plots = pngs(out["plots"])
    assert sorted(plots) == sorted(
        ["petal_length_cm.png", "petal_width_cm.png", "sepal_length_cm.png",
         "sepal_width_cm.png", "target.png"]
    )  # fmt: skip
    assert all(data.startswith(PNG_SIGNATURE) for data in plots.values())

    plain = MODULE.describe(iris_csv, bins=10)
    split = pngs(plain["plots"])
    assert split["sepal_length_cm.png"] != plots["sepal_length_cm.png"]
    assert split["target.png"] == plots["target.png"]  # the label column itself is not split
    assert not [p for p in out_dir.iterdir() if p.name.endswith(".tmp")]


def test_label_groups_stay_few() -> None:
    few = pd.Series([0, 1, 2, 1])
    assert MODULE.label_groups(few) is few
    continuous = pd.Series(np.linspace(0, 1, 100))
    assert MODULE.label_groups(continuous).nunique() == MODULE.QUANTILE_GROUPS
    words = pd.Series([f"w{i % 30}" for i in range(300)] + ["w0"] * 10)
    for labels in (words, words.astype("category")):
        grouped = MODULE.label_groups(labels)
        assert grouped.nunique() == MODULE.MAX_GROUPS
        assert "(other)" in set(grouped) and "w0" in set(grouped)


def test_awkward_column_names_get_distinct_files(tmp_path: Path, out_dir: Path) -> None:
    path = tmp_path / "odd.csv"
    pd.DataFrame({"a/b": [1, 2], "a b": [3, 4], "...": [5, 6]}).to_csv(path, index=False)
    out = MODULE.describe(path)
    assert sorted(pngs(out["plots"])) == ["a_b-2.png", "a_b.png", "column.png"]


def test_rerun_replaces_old_plots(tmp_path: Path, iris_csv: Path, out_dir: Path) -> None:
    MODULE.describe(iris_csv, bins=5)
    small = tmp_path / "small.csv"
    pd.DataFrame({"only": [1, 2, 3]}).to_csv(small, index=False)
    out = MODULE.describe(small, bins=5)
    assert sorted(pngs(out["plots"])) == ["only.png"]
    assert len(pd.read_csv(out["summary"])) == 1


def test_unsupported_suffix_is_refused(tmp_path: Path, out_dir: Path) -> None:
    path = tmp_path / "table.txt"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"unsupported suffix '\.txt'.*\.csv, \.parquet"):
        MODULE.describe(path)


def test_unreadable_and_missing_files_are_clear(tmp_path: Path, out_dir: Path) -> None:
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"this is not parquet")
    with pytest.raises(ValueError, match=r"could not parse broken\.parquet as Parquet"):
        MODULE.describe(broken)
    with pytest.raises(ValueError, match="table file not found"):
        MODULE.describe(tmp_path / "nowhere.csv")
    assert not out_dir.exists()


def test_header_only_tables_are_empty(tmp_path: Path, out_dir: Path) -> None:
    header = tmp_path / "iris.csv"
    header.write_text("a,b,target\n")
    with pytest.raises(ValueError, match=r"^table iris\.csv is empty \(no rows\)$"):
        MODULE.describe(header)
    no_rows = tmp_path / "none.parquet"
    pd.DataFrame({"a": pd.Series([], dtype="float64")}).to_parquet(no_rows)
    with pytest.raises(ValueError, match=r"^table none\.parquet is empty \(no rows\)$"):
        MODULE.describe(no_rows)
    assert not out_dir.exists()


def test_zero_byte_and_blank_files_are_empty(tmp_path: Path, out_dir: Path) -> None:
    for name in ("zero.csv", "zero.parquet"):
        (tmp_path / name).touch()
        with pytest.raises(ValueError, match=rf"^table {re.escape(name)} is empty \(0 bytes\)$"):
            MODULE.describe(tmp_path / name)
    blank = tmp_path / "blank.csv"
    blank.write_text("\n\n")
    with pytest.raises(ValueError, match=r"^table blank\.csv is empty \(no columns\)$"):
        MODULE.describe(blank)
    assert not out_dir.exists()


def test_png_renamed_to_csv_is_not_a_table(tmp_path: Path, out_dir: Path) -> None:
    figure = Figure(figsize=(1, 1))
    FigureCanvasAgg(figure)
    fake = tmp_path / "picture.csv"
    figure.savefig(fake, format="png")
    assert fake.read_bytes().startswith(PNG_SIGNATURE)
    with pytest.raises(ValueError, match=r"could not parse picture\.csv as CSV: .*binary"):
        MODULE.describe(fake)
    assert not out_dir.exists()


def test_binary_garbage_without_nul_bytes_is_not_a_table(tmp_path: Path, out_dir: Path) -> None:
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(bytes(range(128, 256)) * 8)  # no NUL, and not UTF-8 either
    with pytest.raises(ValueError, match=r"could not parse garbage\.csv as CSV: .*utf-8"):
        MODULE.describe(garbage)
    assert not out_dir.exists()


def test_bad_label_column_and_bins(iris_csv: Path, out_dir: Path) -> None:
    with pytest.raises(
        ValueError,
        match=r"label column 'species' not found in iris\.csv \(columns: sepal.*target\)",
    ):
        MODULE.describe(iris_csv, label_column="species")
    with pytest.raises(ValueError, match="bins must be a positive integer"):
        MODULE.describe(iris_csv, bins=0)
    assert not out_dir.exists()


def test_examples_return_the_declared_outputs(
    iris_csv: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = load_manifest(FOLDER)
    assert manifest.ref == "library/describe@1.0.0"
    assert manifest.spec.entrypoint == "describe.py:describe"

    monkeypatch.chdir(iris_csv.parent)  # the example names iris.csv relative to the run
    for out in run_examples(FOLDER, MODULE.describe):
        assert out["summary"].is_file() and out["plots"].is_dir()
