"""Tests for the train catalog function, calling the entrypoint directly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets

from catalog.testing import load_model, load_module, run_examples
from fnhub.core.manifest import load_manifest

FOLDER = Path(__file__).resolve().parents[1]
MODULE = load_module(FOLDER)


@pytest.fixture
def mixed_csv(tmp_path: Path) -> Path:
    """A number, a text column with gaps, a boolean, and text labels."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=240),
            "city": rng.choice(["oslo", "rome", "lima", None], size=240),
            "flag": rng.choice([True, False], size=240),
        }
    )
    frame["label"] = np.where(frame["x"] + 2 * (frame["city"] == "oslo") > 0.5, "yes", "no")
    path = tmp_path / "mixed.csv"
    frame.to_csv(path, index=False)
    return path


def test_iris_random_forest(iris_csv: Path, out_dir: Path) -> None:
    out = MODULE.train(iris_csv)
    assert out["cv_score"] > 0.85
    assert out["model"] == out_dir / "model"
    assert sorted(p.name for p in out["model"].iterdir()) == ["model.json", "model.skops"]

    metrics = json.loads(out["metrics"].read_text())
    assert metrics["task"] == "classification"
    assert (metrics["n_rows"], metrics["n_features"], metrics["n_classes"]) == (150, 4, 3)
    assert metrics["cv_folds"] == 5
    assert metrics["cv_accuracy_mean"] == out["cv_score"]
    assert 0.85 < metrics["cv_f1_macro_mean"] <= 1.0
    assert 0 <= metrics["cv_accuracy_std"] < 0.1
    assert metrics["importance_method"] == "feature_importances"

    importances = pd.read_csv(out["importances"])
    assert list(importances.columns) == ["feature", "importance"]
    assert len(importances) == 4
    assert importances["importance"].sum() == pytest.approx(1.0)
    assert importances["feature"].iloc[0].startswith("petal")  # petals separate the species
    assert importances["importance"].is_monotonic_decreasing

    model, meta = load_model(out["model"])
    frame = pd.read_csv(iris_csv)
    assert meta["estimator"] == "RandomForestClassifier"
    assert meta["task"] == "classification"
    assert meta["features"] == list(frame.columns[:-1])
    assert meta["label_column"] == "target"
    assert meta["classes"] == [0, 1, 2]
    assert meta["params"]["random_state"] == 42
    assert (model.predict(frame[meta["features"]]) == frame["target"]).mean() > 0.95
    assert not [p for p in out_dir.iterdir() if p.name.endswith(".tmp")]


def test_diabetes_ridge_regression(diabetes_csv: Path, out_dir: Path) -> None:
    out = MODULE.train(diabetes_csv, estimator="Ridge", params={"alpha": 1.0})
    assert out["cv_score"] > 0.3
    metrics = json.loads(out["metrics"].read_text())
    assert metrics["task"] == "regression"
    assert "n_classes" not in metrics
    assert metrics["cv_r2_mean"] == out["cv_score"]
    assert 40 < metrics["cv_rmse_mean"] < 70  # the target's std is about 77
    assert metrics["importance_method"] == "abs_coef"
    importances = pd.read_csv(out["importances"])
    assert set(importances["feature"]) == {f"s{i}" for i in range(1, 7)} | {
        "age", "sex", "bmi", "bp"
    }  # fmt: skip
    assert (importances["importance"] >= 0).all()
    _, meta = load_model(out["model"])
    assert "classes" not in meta
    assert meta["params"]["alpha"] == 1.0


def test_permutation_importance_when_the_model_has_none(iris_csv: Path, out_dir: Path) -> None:
    out = MODULE.train(iris_csv, estimator="KNeighborsClassifier", cv=3)
    assert json.loads(out["metrics"].read_text())["importance_method"] == "permutation"
    importances = pd.read_csv(out["importances"]).set_index("feature")["importance"]
    assert len(importances) == 4
    assert importances.max() > 0.05
    assert importances.idxmax().startswith("petal")


def test_text_missing_and_boolean_columns(mixed_csv: Path, out_dir: Path) -> None:
    out = MODULE.train(mixed_csv, label_column="label", estimator="LogisticRegression")
    assert out["cv_score"] > 0.9
    importances = pd.read_csv(out["importances"]).set_index("feature")["importance"]
    assert sorted(importances.index) == ["city", "flag", "x"]  # one-hot summed back per column
    assert importances["flag"] < importances["x"]

    model, meta = load_model(out["model"])
    assert meta["classes"] == ["no", "yes"]
    assert meta["features"] == ["x", "city", "flag"]
    fresh = pd.DataFrame(
        {"x": [3.0, -3.0, np.nan], "city": ["paris", "oslo", None], "flag": [True, False, True]}
    )  # an unseen city and a missing number still predict
    assert list(model.predict(fresh)[:2]) == ["yes", "no"]


def test_params_are_applied_and_unknown_ones_named(iris_csv: Path, out_dir: Path) -> None:
    out = MODULE.train(iris_csv, params={"n_estimators": 7, "max_depth": 2}, cv=0)
    model, meta = load_model(out["model"])
    assert len(model.named_steps["model"].estimators_) == 7
    assert (meta["params"]["n_estimators"], meta["params"]["max_depth"]) == (7, 2)
    with pytest.raises(
        ValueError,
        match=r"unknown parameter\(s\) for RandomForestClassifier: "
        r"'depth', 'trees'; valid: .*n_estimators",
    ):
        MODULE.train(iris_csv, params={"trees": 7, "depth": 2})


def test_cv_zero_skips_cross_validation(iris_csv: Path, out_dir: Path) -> None:
    out = MODULE.train(iris_csv, estimator="DecisionTreeClassifier", cv=0)
    metrics = json.loads(out["metrics"].read_text())
    assert out["cv_score"] is None
    assert metrics["cv_folds"] == 0
    assert metrics["cv_accuracy_mean"] is None and metrics["cv_f1_macro_std"] is None
    assert (out["model"] / "model.skops").is_file()


def test_same_seed_same_result(
    iris_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = []
    for seed, folder in ((7, "a"), (7, "b"), (8, "c")):
        monkeypatch.setenv("FNHUB_OUTPUT_DIR", str(tmp_path / folder))
        out = MODULE.train(iris_csv, estimator="GradientBoostingClassifier",
                           params={"n_estimators": 20}, cv=3, seed=seed)  # fmt: skip
        runs.append((out["cv_score"], out["importances"].read_text()))
    assert runs[0] == runs[1]
    assert runs[0][1] != runs[2][1]


def test_task_must_match_the_estimator(iris_csv: Path, out_dir: Path) -> None:
    assert MODULE.resolve_task(MODULE.ESTIMATORS["Ridge"](), "auto") == "regression"
    with pytest.raises(ValueError, match=r"task 'regression' does not fit RandomForestClassifier"):
        MODULE.train(iris_csv, task="regression")
    with pytest.raises(ValueError, match=r"unknown task 'ranking'"):
        MODULE.train(iris_csv, task="ranking")


def test_bad_inputs_are_named(
    iris_csv: Path, diabetes_csv: Path, mixed_csv: Path, tmp_path: Path, out_dir: Path
) -> None:
    with pytest.raises(
        ValueError,
        match=r"unknown estimator 'XGBClassifier'; choose one of: "
        r"LogisticRegression, RandomForestClassifier",
    ):
        MODULE.train(iris_csv, estimator="XGBClassifier")
    with pytest.raises(ValueError, match=r"unknown label column 'species' \(columns: sepal"):
        MODULE.train(iris_csv, label_column="species")
    with pytest.raises(ValueError, match=r"'target' looks continuous.*use a regressor"):
        MODULE.train(diabetes_csv)
    with pytest.raises(ValueError, match=r"'label' is not numeric.*use a classifier"):
        MODULE.train(mixed_csv, label_column="label", estimator="Ridge")
    with pytest.raises(ValueError, match=r"cv must be 0 .* or at least 2"):
        MODULE.train(iris_csv, cv=1)
    with pytest.raises(ValueError, match=r"cv=60 needs at least 60 rows of every class"):
        MODULE.train(iris_csv, cv=60)
    with pytest.raises(
        ValueError, match=r"training RandomForestClassifier failed: .*'n_estimators'"
    ):
        MODULE.train(iris_csv, params={"n_estimators": -1})
    with pytest.raises(ValueError, match="params must be a mapping"):
        MODULE.train(iris_csv, params=[1, 2])  # type: ignore[arg-type]

    empty = tmp_path / "empty.csv"
    empty.write_text("a,target\n")
    with pytest.raises(ValueError, match="the dataset has no rows"):
        MODULE.train(empty)
    gaps = tmp_path / "gaps.csv"
    pd.DataFrame({"a": [1, 2, 3, 4], "b": [np.nan] * 4, "target": [0, 1, None, 1]}).to_csv(
        gaps, index=False
    )
    with pytest.raises(ValueError, match=r"feature column\(s\) with no values: b"):
        MODULE.train(gaps)
    with pytest.raises(ValueError, match=r"label column 'target' has 1 missing value"):
        MODULE.train(_without(gaps, "b"))
    with pytest.raises(ValueError, match=r"unsupported suffix '\.txt'"):
        MODULE.train(tmp_path / "table.txt")
    assert not out_dir.exists()  # nothing written for bad input


def _without(path: Path, column: str) -> Path:
    target = path.with_name(f"{path.stem}-no-{column}.csv")
    pd.read_csv(path).drop(columns=[column]).to_csv(target, index=False)
    return target


def test_parquet_input(tmp_path: Path, out_dir: Path) -> None:
    path = tmp_path / "wine.parquet"
    datasets.load_wine(as_frame=True).frame.to_parquet(path, index=False)
    out = MODULE.train(path, params={"n_estimators": 30}, cv=3)
    assert out["cv_score"] > 0.85


def test_examples_return_the_declared_outputs(
    iris_csv: Path, diabetes_csv: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = load_manifest(FOLDER)
    assert manifest.ref == "library/train@1.0.1"
    assert manifest.spec.entrypoint == "train.py:train"
    assert manifest.metadata.categories == ["model-training"]
    listed = manifest.input("estimator").description
    assert all(name in listed for name in MODULE.ESTIMATORS)

    monkeypatch.chdir(iris_csv.parent)  # the examples name files relative to the run
    for out in run_examples(FOLDER, MODULE.train):
        assert out["cv_score"] > 0.3
