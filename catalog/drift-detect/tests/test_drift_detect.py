"""Tests for the drift-detect catalog function, calling the entrypoint directly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from catalog.testing import load_module, run_examples, write_table
from fnhub.core.manifest import load_manifest

FOLDER = Path(__file__).resolve().parents[1]
MODULE = load_module(FOLDER)


def _sample(
    rng: np.random.Generator, n: int, shift: float = 0.0, colours: list[float] | None = None
) -> pd.DataFrame:
    """Two numeric features, one categorical, and a label; `shift` moves `income` only."""
    return pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.lognormal(10 + shift, 0.5, n),
            "colour": rng.choice(["red", "green", "blue"], n, p=colours or [0.5, 0.3, 0.2]),
            "target": rng.integers(0, 2, n),
        }
    )


def test_same_distribution_does_not_drift(tmp_path: Path, out_dir: Path) -> None:
    rng = np.random.default_rng(7)
    ref = write_table(_sample(rng, 3000), tmp_path / "ref.csv")
    cur = write_table(_sample(rng, 3000), tmp_path / "cur.csv")
    out = MODULE.drift_detect(ref, cur, label_column="target")

    assert set(out) == {"report", "summary", "drifted", "html"}
    assert out["drifted"] is False
    report = pd.read_csv(out["report"])
    assert list(report.columns) == MODULE.REPORT_COLUMNS
    assert list(report["feature"]) == ["age", "income", "colour"]  # the label is left out
    assert list(report["kind"]) == ["numeric", "numeric", "categorical"]
    assert (report["psi"] < 0.02).all()
    assert (report.loc[:1, "ks_p"] > 0.05).all() and report.loc[:1, "chi2_p"].isna().all()
    assert report.loc[2, "chi2_p"] > 0.05 and np.isnan(report.loc[2, "ks_p"])
    assert not report["drifted"].any()
    summary = json.loads(out["summary"].read_text())
    assert summary["n_features"] == 3 and summary["n_drifted"] == 0
    assert summary["drifted_features"] == [] and summary["share"] == 0.0
    assert summary["ignored_columns"] == []
    assert (summary["psi_threshold"], summary["p_value"], summary["bins"]) == (0.2, 0.05, 10)
    assert {p.name for p in out_dir.iterdir()} == {"report.csv", "summary.json", "report.html"}


def test_shifted_features_drift_and_others_do_not(tmp_path: Path, out_dir: Path) -> None:
    rng = np.random.default_rng(11)
    ref_frame = _sample(rng, 2000)
    cur_frame = _sample(rng, 2000, shift=0.5, colours=[0.2, 0.3, 0.5])
    ref = write_table(ref_frame, tmp_path / "ref.parquet")
    cur = write_table(cur_frame, tmp_path / "cur.csv")  # formats may differ
    out = MODULE.drift_detect(ref, cur, label_column="target", bins=5)

    assert out["drifted"] is True
    report = pd.read_csv(out["report"]).set_index("feature")
    assert list(report["drifted"]) == [False, True, True]
    assert report.loc["income", "psi"] > 0.5 and report.loc["colour", "psi"] > 0.2
    assert report.loc["age", "psi"] < 0.05
    expected = stats.ks_2samp(ref_frame["income"], cur_frame["income"])
    assert report.loc["income", "ks_stat"] == pytest.approx(expected.statistic)
    assert report.loc["income", "ks_p"] < 1e-10 and report.loc["colour", "chi2_p"] < 1e-10
    summary = json.loads(out["summary"].read_text())
    assert summary["drifted_features"] == ["income", "colour"]
    assert summary["share"] == pytest.approx(2 / 3)
    assert summary["drifted"] is True and summary["bins"] == 5


def test_psi_formula_and_quantile_bins() -> None:
    # Shares 0.5/0.5 against 0.9/0.1, plus an empty missing-value bin on both sides.
    value = MODULE.psi(np.array([50.0, 50.0, 0.0]), np.array([90.0, 10.0, 0.0]))
    shares = np.array([0.5, 0.5, 1e-4]) / 1.0001, np.array([0.9, 0.1, 1e-4]) / 1.0001
    assert value == pytest.approx(np.sum((shares[1] - shares[0]) * np.log(shares[1] / shares[0])))
    assert value == pytest.approx(0.4 * math.log(1.8) + (-0.4) * math.log(0.2), rel=1e-3)
    assert MODULE.psi(np.array([3.0, 7.0]), np.array([30.0, 70.0])) == pytest.approx(0.0)

    ref = pd.Series(np.arange(100, dtype="float64"))
    cur = pd.Series([-50.0, 5.0, 95.0, 500.0, np.nan])
    ref_counts, cur_counts = MODULE.numeric_bin_counts(ref, cur, 4)
    assert list(ref_counts) == [25, 25, 25, 25, 0]  # quartile bins, empty missing bin
    assert list(cur_counts) == [2, 0, 0, 2, 1]  # values out of range land in the open ends

    # Few distinct values: the nine deciles collapse to the edges 0, 0.2 and 1.
    ref_counts, _ = MODULE.numeric_bin_counts(pd.Series([0.0] * 80 + [1.0] * 20), cur, 10)
    assert list(ref_counts) == [0, 80, 0, 20, 0]


def test_missing_values_and_new_categories_count_as_drift(tmp_path: Path, out_dir: Path) -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(size=1000)
    ref = write_table(pd.DataFrame({"x": base, "c": ["a", "b"] * 500}), tmp_path / "ref.csv")
    gaps = base.copy()
    gaps[::2] = np.nan  # same values, but half of them are now missing
    current = pd.DataFrame({"x": gaps, "c": ["a", "b", "z", "z"] * 250})
    cur = write_table(current, tmp_path / "cur.csv")
    report = pd.read_csv(MODULE.drift_detect(ref, cur)["report"]).set_index("feature")
    assert report.loc["x", "psi"] > 1 and report.loc["x", "ks_p"] > 0.05
    assert report.loc["c", "psi"] > 1 and report.loc["c", "chi2_p"] < 1e-10
    assert report["drifted"].all()


def test_iris_classes_drift_on_petals(iris: pd.DataFrame, tmp_path: Path, out_dir: Path) -> None:
    ref = write_table(iris[iris["target"] == 0], tmp_path / "setosa.csv")
    cur = write_table(iris[iris["target"] == 2], tmp_path / "virginica.csv")
    out = MODULE.drift_detect(ref, cur, label_column="target")
    report = pd.read_csv(out["report"]).set_index("feature")
    assert "target" not in report.index
    assert report.loc[["petal length (cm)", "petal width (cm)"], "drifted"].all()
    assert report.loc["petal length (cm)", "ks_stat"] == pytest.approx(1.0)
    assert out["drifted"] is True


def test_column_numeric_on_one_side_only_is_categorical(tmp_path: Path, out_dir: Path) -> None:
    ref = write_table(pd.DataFrame({"code": [1, 2, 3, 1] * 25}), tmp_path / "ref.csv")
    cur = write_table(pd.DataFrame({"code": ["1", "2", "3", "other"] * 25}), tmp_path / "cur.csv")
    report = pd.read_csv(MODULE.drift_detect(ref, cur)["report"])
    assert report.loc[0, "kind"] == "categorical"
    assert report.loc[0, "drifted"]  # "other" is new


def test_html_report_is_escaped_and_self_contained(tmp_path: Path, out_dir: Path) -> None:
    evil = "<script>alert('x')</script>"
    ref = write_table(pd.DataFrame({evil: np.arange(50.0), "ok": 1.0}), tmp_path / "a&b.csv")
    cur = write_table(pd.DataFrame({evil: np.arange(50.0) + 100, "ok": 1.0}), tmp_path / "cur.csv")
    page = MODULE.drift_detect(ref, cur)["html"].read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert evil not in page and "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "a&amp;b.csv" in page and "Drift detected in 1 of 2 features" in page
    assert 'class="drift"' in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere


def test_reference_columns_missing_from_current_are_named(tmp_path: Path, out_dir: Path) -> None:
    ref = write_table(pd.DataFrame({"a": [1], "b": [2], "c": [3]}), tmp_path / "ref.csv")
    cur = write_table(pd.DataFrame({"a": [1], "d": [4]}), tmp_path / "cur.csv")
    with pytest.raises(ValueError, match=r"current lacks column\(s\) of the reference: b, c$"):
        MODULE.drift_detect(ref, cur)
    with pytest.raises(ValueError, match=r"current lacks column\(s\) of the reference: c$"):
        MODULE.drift_detect(ref, cur, label_column="b")  # only the label may be missing
    assert not out_dir.exists()


def test_columns_only_in_current_are_ignored_and_listed(tmp_path: Path, out_dir: Path) -> None:
    """A scored batch: the label is gone, prediction and probability columns were added."""
    rng = np.random.default_rng(13)
    ref = write_table(_sample(rng, 1000), tmp_path / "ref.csv")
    scored = _sample(rng, 1000, shift=1.0).drop(columns="target")
    scored["prediction"] = rng.integers(0, 2, 1000)
    scored["proba_<1>"] = rng.random(1000)
    cur = write_table(scored, tmp_path / "cur.csv")
    out = MODULE.drift_detect(ref, cur, label_column="target")

    report = pd.read_csv(out["report"])
    assert list(report["feature"]) == ["age", "income", "colour"]
    summary = json.loads(out["summary"].read_text())
    assert summary["ignored_columns"] == ["prediction", "proba_<1>"]
    assert summary["n_features"] == 3 and summary["drifted_features"] == ["income"]
    page = out["html"].read_text(encoding="utf-8")
    assert "not compared: <code>prediction</code>, <code>proba_&lt;1&gt;</code>." in page

    same = MODULE.drift_detect(ref, ref, label_column="target")
    assert json.loads(same["summary"].read_text())["ignored_columns"] == []
    assert "not compared" not in same["html"].read_text(encoding="utf-8")


def test_bad_label_column_and_parameters(tmp_path: Path, out_dir: Path) -> None:
    ref = write_table(pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}), tmp_path / "ref.csv")
    with pytest.raises(
        ValueError, match=r"label column 'y' not found in the reference \(columns: a, b\)"
    ):
        MODULE.drift_detect(ref, ref, label_column="y")
    only_label = write_table(pd.DataFrame({"y": [1, 2]}), tmp_path / "y.csv")
    with pytest.raises(ValueError, match="no feature columns"):
        MODULE.drift_detect(only_label, only_label, label_column="y")
    bad = [
        ({"psi_threshold": 0}, "psi_threshold must be positive"),
        ({"psi_threshold": "high"}, "psi_threshold must be a finite number"),
        ({"p_value": 1.5}, "p_value must be between 0 and 1"),
        ({"p_value": math.nan}, "p_value must be a finite number"),
        ({"psi_threshold": math.inf}, "psi_threshold must be a finite number"),
        ({"bins": 1}, "bins must be an integer of at least 2"),
        ({"bins": True}, "bins must be an integer"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ValueError, match=message):
            MODULE.drift_detect(ref, ref, **kwargs)
    assert not out_dir.exists()


def test_unreadable_tables_are_named(tmp_path: Path, out_dir: Path) -> None:
    good = write_table(pd.DataFrame({"a": [1.0]}), tmp_path / "good.csv")
    header = tmp_path / "header.csv"
    header.write_text("a\n")
    zero = tmp_path / "zero.csv"
    zero.touch()
    image = tmp_path / "image.csv"
    image.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    cases = [
        (header, r"table header\.csv is empty \(no rows\)"),
        (zero, r"table zero\.csv is empty \(0 bytes\)"),
        (image, r"could not parse image\.csv as CSV"),
        (tmp_path / "gone.csv", "table file not found"),
        (tmp_path / "data.xlsx", r"unsupported suffix '\.xlsx'"),
    ]
    for path, message in cases:
        with pytest.raises(ValueError, match=message):
            MODULE.drift_detect(good, path)
    assert not out_dir.exists()


def test_examples_return_the_declared_outputs(
    tmp_path: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = load_manifest(FOLDER)
    assert manifest.ref == "library/drift-detect@1.1.1"
    assert manifest.spec.entrypoint == "drift_detect.py:drift_detect"
    assert manifest.metadata.categories == ["monitoring"]

    rng = np.random.default_rng(5)
    write_table(_sample(rng, 500), tmp_path / "train.csv")
    write_table(_sample(rng, 500, shift=1.0), tmp_path / "current.csv")
    monkeypatch.chdir(tmp_path)  # the example names its tables relative to the run
    for out in run_examples(FOLDER, MODULE.drift_detect):
        assert out["drifted"] is True
        assert out["report"].is_file() and out["summary"].is_file() and out["html"].is_file()
