"""Tests for the feature-selection catalog function, calling the entrypoint directly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets

from catalog.testing import load_module, run_examples, write_table
from fnhub.core.manifest import load_manifest

FOLDER = Path(__file__).resolve().parents[1]
MODULE = load_module(FOLDER)


@pytest.fixture
def signal() -> pd.DataFrame:
    """Two features that decide the class, two of pure noise, one constant, one weak."""
    rng = np.random.default_rng(0)
    n = 400
    strong, other = rng.normal(size=n), rng.uniform(0, 1, size=n)
    target = ((strong + 2 * other) > 1).astype(int)
    return pd.DataFrame(
        {
            "noise_a": rng.normal(size=n),
            "strong": strong,
            "flat": np.full(n, 3.0),
            "other": other,
            "noise_b": rng.uniform(0, 1, size=n),
            "weak": target * 0.3 + rng.normal(size=n),
            "target": target,
        }
    )


@pytest.mark.parametrize("method", ["mutual_info", "f_test", "model"])
def test_supervised_methods_find_the_signal(
    method: str, signal: pd.DataFrame, tmp_path: Path, out_dir: Path
) -> None:
    out = MODULE.feature_selection(write_table(signal, tmp_path / "table.csv"), method=method, k=2)
    assert set(out) == {"selected", "scores", "features"}
    assert out["features"] == ["strong", "other"]  # table order, not rank order
    selected = pd.read_csv(out["selected"])
    assert list(selected.columns) == ["strong", "other", "target"]
    pd.testing.assert_series_equal(selected["target"], signal["target"])

    scores = pd.read_csv(out["scores"])
    assert list(scores.columns) == ["feature", "score", "selected", "rank"]
    assert sorted(scores["feature"]) == sorted(signal.columns.drop("target"))
    assert scores["rank"].tolist() == [1, 2, 3, 4, 5, 6]  # best first
    assert set(scores["feature"][:2]) == {"strong", "other"}
    assert scores["selected"].tolist() == [True, True, False, False, False, False]
    assert scores.set_index("feature").loc["weak", "rank"] == 3
    assert not [p for p in out_dir.iterdir() if p.name.endswith(".tmp")]


def test_f_test_leaves_a_constant_feature_unscored_and_last(
    signal: pd.DataFrame, tmp_path: Path, out_dir: Path
) -> None:
    out = MODULE.feature_selection(write_table(signal, tmp_path / "table.csv"), method="f_test")
    scores = pd.read_csv(out["scores"]).set_index("feature")
    assert np.isnan(scores.loc["flat", "score"])
    assert scores.loc["flat", "rank"] == 6
    assert not scores.loc["flat", "selected"]
    assert len(out["features"]) == 5


def test_variance_ranks_by_spread_and_drops_constants_with_a_threshold(
    signal: pd.DataFrame, tmp_path: Path, out_dir: Path
) -> None:
    path = write_table(signal, tmp_path / "table.csv")
    out = MODULE.feature_selection(path, method="variance", threshold=0.0)
    assert out["features"] == ["noise_a", "strong", "other", "noise_b", "weak"]
    scores = pd.read_csv(out["scores"]).set_index("feature")
    assert scores.loc["flat", "score"] == 0.0
    expected = signal["strong"].var(ddof=0)
    assert scores.loc["strong", "score"] == pytest.approx(expected)

    top = MODULE.feature_selection(path, method="variance", k=1)
    assert top["features"] == [scores["score"].idxmax()]


def test_variance_works_without_a_label(tmp_path: Path, out_dir: Path) -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0, 1.0, 1.0], "c": [0, 10, 20]})
    path = write_table(frame, tmp_path / "table.csv")
    out = MODULE.feature_selection(path, label_column=None, method="variance")
    assert out["features"] == ["a", "b", "c"]  # k=5 is more than there are
    assert list(pd.read_csv(out["selected"]).columns) == ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"method 'f_test' scores features against a label"):
        MODULE.feature_selection(path, label_column=None, method="f_test")


def test_threshold_works_for_any_method(
    signal: pd.DataFrame, tmp_path: Path, out_dir: Path
) -> None:
    path = write_table(signal, tmp_path / "table.csv")
    out = MODULE.feature_selection(path, method="model", threshold=0.15, k=1)
    scores = pd.read_csv(out["scores"]).set_index("feature")
    assert out["features"] == [f for f in signal.columns if f in scores.index[scores.score > 0.15]]
    assert len(out["features"]) == 2  # k is ignored when a threshold is given
    with pytest.raises(ValueError, match=r"no feature scores above threshold 5 .*highest score"):
        MODULE.feature_selection(path, method="model", threshold=5)


def test_chi2_on_counts_and_its_refusals(
    iris: pd.DataFrame, diabetes: pd.DataFrame, tmp_path: Path, out_dir: Path
) -> None:
    out = MODULE.feature_selection(write_table(iris, tmp_path / "iris.parquet"), method="chi2", k=2)
    assert out["features"] == ["petal length (cm)", "petal width (cm)"]

    shifted = iris.assign(**{"sepal width (cm)": iris["sepal width (cm)"] - 3})
    with pytest.raises(ValueError, match=r"non-negative features.*: sepal width \(cm\)"):
        MODULE.feature_selection(write_table(shifted, tmp_path / "table.csv"), method="chi2")
    path = write_table(diabetes.abs(), tmp_path / "diabetes.csv")
    with pytest.raises(ValueError, match=r"'chi2' scores a classification label.*regression"):
        MODULE.feature_selection(path, method="chi2")


def test_regression_label_is_detected(
    diabetes: pd.DataFrame, tmp_path: Path, out_dir: Path
) -> None:
    path = write_table(diabetes, tmp_path / "table.csv")
    out = MODULE.feature_selection(path, method="f_test", k=2)
    assert out["features"] == ["bmi", "s5"]
    label = diabetes["target"]
    assert MODULE.resolve_task(label, "auto") == "regression"  # many whole numbers
    assert MODULE.resolve_task(pd.Series([0.0, 1.0, 1.0]), "auto") == "classification"
    assert MODULE.resolve_task(pd.Series([0.5, 1.5, 0.5]), "auto") == "regression"
    assert MODULE.resolve_task(pd.Series(["a", "b"]), "auto") == "classification"
    assert MODULE.resolve_task(pd.Series([True, False]), "auto") == "classification"
    assert MODULE.resolve_task(label, "classification") == "classification"
    with pytest.raises(ValueError, match=r"task 'regression' needs a numeric label"):
        MODULE.resolve_task(pd.Series(["a", "b"], name="y"), "regression")


def test_text_labels_and_boolean_features(tmp_path: Path, out_dir: Path) -> None:
    rng = np.random.default_rng(1)
    flag = rng.integers(0, 2, size=200).astype(bool)
    frame = pd.DataFrame(
        {"flag": flag, "noise": rng.normal(size=200), "kind": np.where(flag, "yes", "no")}
    )
    out = MODULE.feature_selection(
        write_table(frame, tmp_path / "table.csv"), label_column="kind", method="mutual_info", k=1
    )
    assert out["features"] == ["flag"]
    assert pd.read_csv(out["selected"])["kind"].tolist() == frame["kind"].tolist()


def test_seed_makes_random_methods_repeatable(
    signal: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_table(signal, tmp_path / "table.csv")
    runs = []
    for run, seed in enumerate([1, 1, 2]):
        monkeypatch.setenv("FNHUB_OUTPUT_DIR", str(tmp_path / f"run{run}"))
        out = MODULE.feature_selection(path, method="mutual_info", seed=seed)
        runs.append(out["scores"].read_bytes())
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_rank_order() -> None:
    ranks = MODULE.rank(np.array([0.5, np.nan, 2.0, 0.5, -1.0]))
    assert ranks.tolist() == [2, 5, 1, 3, 4]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "lasso"}, r"unknown method 'lasso'; choose one of: variance, mutual_info"),
        ({"task": "ranking"}, r"unknown task 'ranking'; choose one of: auto, classification"),
        ({"k": 0}, r"k must be a positive integer, got 0"),
        ({"k": 2.5}, r"k must be a positive integer, got 2.5"),
        ({"threshold": "high"}, r"threshold must be a number or null, got 'high'"),
        ({"seed": -3}, r"seed must be an integer between 0 and"),
        ({"label_column": "y"}, r"label_column 'y' is not a column of t\.csv; columns: a, b"),
    ],
)
def test_bad_parameters_are_refused_clearly(
    kwargs: dict[str, Any], message: str, tmp_path: Path, out_dir: Path
) -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [1, 0, 1, 0], "target": [0, 1, 0, 1]})
    with pytest.raises(ValueError, match=message):
        MODULE.feature_selection(write_table(frame, tmp_path / "t.csv"), **kwargs)
    assert not out_dir.exists()


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (
            pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": [1, 2, 3], "target": [0, 1, 0]}),
            r"features with missing or infinite values: a \(1\); fill or drop",
        ),
        (
            pd.DataFrame({"a": [1.0, np.inf, 3.0], "target": [0, 1, 0]}),
            r"missing or infinite values: a \(1\)",
        ),
        (
            pd.DataFrame({"city": ["x", "y", "z"], "a": [1, 2, 3], "target": [0, 1, 0]}),
            r"not numeric: city \((str|object)\) \(encode or drop them first\)",
        ),
        (pd.DataFrame({"target": [0, 1, 0]}), r"no feature columns besides the label"),
        (
            pd.DataFrame({"a": [1.0, 2.0, 3.0], "target": [0, np.nan, 1]}),
            r"label 'target' has 1 missing values",
        ),
        (pd.DataFrame({"a": [1.0, 2.0, 3.0], "target": [1, 1, 1]}), r"has a single value"),
    ],
)
def test_unusable_tables_are_refused_clearly(
    frame: pd.DataFrame, message: str, tmp_path: Path, out_dir: Path
) -> None:
    with pytest.raises(ValueError, match=message):
        MODULE.feature_selection(write_table(frame, tmp_path / "table.csv"))


def test_unreadable_inputs(tmp_path: Path, out_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"unsupported suffix '\.xlsx'"):
        MODULE.feature_selection(tmp_path / "t.xlsx")
    with pytest.raises(ValueError, match="table file not found"):
        MODULE.feature_selection(tmp_path / "nowhere.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("a,target\n")
    with pytest.raises(ValueError, match=r"table empty\.csv has no rows"):
        MODULE.feature_selection(empty)


def test_examples_return_the_declared_outputs(
    tmp_path: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = load_manifest(FOLDER)
    assert manifest.ref == "library/feature-selection@1.0.1"
    assert manifest.spec.entrypoint == "feature_selection.py:feature_selection"

    write_table(datasets.load_wine(as_frame=True).frame, tmp_path / "wine.csv")
    monkeypatch.chdir(tmp_path)  # the examples name wine.csv relative to the run
    for out in run_examples(FOLDER, MODULE.feature_selection):
        columns = list(pd.read_csv(out["selected"]).columns)
        assert columns == [*out["features"], "target"]
