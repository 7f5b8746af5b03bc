"""Tests for the tune catalog function, calling the entrypoint directly."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from catalog.testing import load_model, load_module, run_examples
from fnhub.core.manifest import load_manifest

FOLDER = Path(__file__).resolve().parents[1]
EVALUATE_FILE = FOLDER.parent / "evaluate" / "evaluate.py"
MODULE = load_module(FOLDER)


def test_grid_search_of_a_decision_tree_on_iris(iris_csv: Path, out_dir: Path) -> None:
    grid = {"max_depth": [1, 2, 3, 5], "min_samples_leaf": [1, 10]}
    out = MODULE.tune(iris_csv, estimator="DecisionTreeClassifier", param_grid=grid, cv=5)

    assert set(out["best_params"]) == set(grid)
    assert out["best_params"]["max_depth"] in grid["max_depth"]
    assert out["best_params"]["min_samples_leaf"] in grid["min_samples_leaf"]
    assert out["best_params"]["max_depth"] > 1  # one split cannot separate three species
    assert out["best_score"] > 0.85

    results = pd.read_csv(out["results"])
    assert len(results) == 8
    assert list(results.columns) == [
        "rank_test_score", "mean_test_score", "std_test_score", "param_max_depth",
        "param_min_samples_leaf", "params", "mean_fit_time",
    ]  # fmt: skip
    assert results["rank_test_score"].is_monotonic_increasing
    assert results["mean_test_score"].iloc[0] == pytest.approx(out["best_score"])
    assert set(results["param_max_depth"]) == set(grid["max_depth"])
    assert json.loads(results["params"].iloc[0]) == out["best_params"]
    depth_one = results[results["param_max_depth"] == 1]["mean_test_score"]
    assert (depth_one < 0.7).all()

    model, meta = load_model(out["model"])
    assert out["model"] == out_dir / "model"
    assert meta["estimator"] == "DecisionTreeClassifier"
    assert meta["task"] == "classification"
    assert meta["classes"] == [0, 1, 2]
    assert meta["params"]["max_depth"] == out["best_params"]["max_depth"]
    assert meta["params"]["random_state"] == 42
    frame = pd.read_csv(iris_csv)
    assert (model.predict(frame[meta["features"]]) == frame["target"]).mean() > 0.9
    assert not [p for p in out_dir.iterdir() if p.name.endswith(".tmp")]


def test_built_in_grid_is_used_without_param_grid(iris_csv: Path, out_dir: Path) -> None:
    out = MODULE.tune(iris_csv, estimator="KNeighborsClassifier")
    grid = MODULE.DEFAULT_GRIDS["KNeighborsClassifier"]
    assert set(out["best_params"]) == set(grid)
    assert all(out["best_params"][name] in values for name, values in grid.items())
    assert len(pd.read_csv(out["results"])) == 4 * 2
    assert out["best_score"] > 0.9
    assert set(MODULE.DEFAULT_GRIDS) == set(MODULE.ESTIMATORS)
    for name, grid in MODULE.DEFAULT_GRIDS.items():  # every built-in grid names real parameters
        MODULE.check_grid(MODULE.make_estimator(name, 0), name, grid)


def test_random_search_is_reproducible(
    iris_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grid = {"max_depth": [1, 2, 3, 4, 5], "criterion": ["gini", "entropy"]}
    tables = []
    for folder in ("a", "b"):
        monkeypatch.setenv("FNHUB_OUTPUT_DIR", str(tmp_path / folder))
        out = MODULE.tune(
            iris_csv, estimator="DecisionTreeClassifier", param_grid=grid, search="random", n_iter=3
        )
        assert out["best_params"]["max_depth"] in grid["max_depth"]
        assert out["best_params"]["criterion"] in grid["criterion"]
        tables.append(pd.read_csv(out["results"]).drop(columns="mean_fit_time"))
    assert len(tables[0]) == 3
    assert tables[0]["params"].nunique() == 3  # sampled without replacement
    pd.testing.assert_frame_equal(tables[0], tables[1])

    monkeypatch.setenv("FNHUB_OUTPUT_DIR", str(tmp_path / "c"))
    out = MODULE.tune(  # more iterations than candidates: every candidate once
        iris_csv,
        estimator="DecisionTreeClassifier",
        param_grid={"max_depth": [2, 3]},
        search="random",
    )
    assert sorted(pd.read_csv(out["results"])["param_max_depth"]) == [2, 3]


def test_regression_with_a_custom_scorer(diabetes_csv: Path, out_dir: Path) -> None:
    grid = {"alpha": [0.01, 1.0, 100.0]}
    out = MODULE.tune(
        diabetes_csv, estimator="Ridge", param_grid=grid, scoring="neg_root_mean_squared_error"
    )
    assert -70 < out["best_score"] < -40  # negated rmse; the target's std is about 77
    assert out["best_params"]["alpha"] in grid["alpha"]
    _, meta = load_model(out["model"])
    assert meta["task"] == "regression" and "classes" not in meta

    r2 = MODULE.tune(diabetes_csv, estimator="Ridge", param_grid=grid)
    assert r2["best_score"] > 0.3


@pytest.mark.skipif(not EVALUATE_FILE.is_file(), reason="the catalog's evaluate is not beside")
def test_the_tuned_model_is_accepted_by_evaluate(
    iris_csv: Path, tmp_path: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = MODULE.tune(iris_csv, estimator="LogisticRegression", param_grid={"C": [0.1, 1.0]})
    monkeypatch.setenv("FNHUB_OUTPUT_DIR", str(tmp_path / "evaluate-out"))
    evaluate = load_module(EVALUATE_FILE.parent).evaluate
    scored = evaluate(out["model"], iris_csv)
    assert scored["score"] > 0.9


def test_bad_inputs_are_named(iris_csv: Path, diabetes_csv: Path, out_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown estimator 'XGBRegressor'; choose one of"):
        MODULE.tune(iris_csv, estimator="XGBRegressor")
    with pytest.raises(
        ValueError, match=r"unknown parameter\(s\) for Ridge: 'depth'; valid: alpha"
    ):
        MODULE.tune(diabetes_csv, estimator="Ridge", param_grid={"depth": [1], "alpha": [1.0]})
    with pytest.raises(ValueError, match=r"must be non-empty lists of candidates; .*: alpha, tol"):
        MODULE.tune(diabetes_csv, estimator="Ridge", param_grid={"alpha": 1.0, "tol": []})
    with pytest.raises(ValueError, match="param_grid must be a non-empty mapping"):
        MODULE.tune(iris_csv, param_grid={})
    with pytest.raises(ValueError, match=r"unknown search 'bayes'; choose one of: grid, random"):
        MODULE.tune(iris_csv, search="bayes")
    with pytest.raises(ValueError, match=r"unknown scoring 'acc'; use a name from"):
        MODULE.tune(iris_csv, scoring="acc")
    with pytest.raises(ValueError, match=r"cv must be an integer >= 2, got 1"):
        MODULE.tune(iris_csv, cv=1)
    with pytest.raises(ValueError, match=r"n_iter must be an integer >= 1, got 0"):
        MODULE.tune(iris_csv, search="random", n_iter=0)
    huge = {"max_depth": list(range(1, 30)), "min_samples_leaf": list(range(1, 30))}
    with pytest.raises(ValueError, match=r"the grid has 841 candidates .*search='random'"):
        MODULE.tune(iris_csv, estimator="DecisionTreeClassifier", param_grid=huge)
    with pytest.raises(ValueError, match=r"'target' looks continuous"):
        MODULE.tune(diabetes_csv, estimator="DecisionTreeClassifier")
    with pytest.raises(ValueError, match=r"search failed for DecisionTreeClassifier.*max_depth"):
        MODULE.tune(iris_csv, estimator="DecisionTreeClassifier", param_grid={"max_depth": [-1]})
    with pytest.raises(ValueError, match=r"search failed for Ridge with scoring 'accuracy'"):
        MODULE.tune(
            diabetes_csv, estimator="Ridge", param_grid={"alpha": [1.0]}, scoring="accuracy"
        )
    with pytest.raises(ValueError, match=r"unknown label column 'species'"):
        MODULE.tune(iris_csv, label_column="species")
    assert not out_dir.exists()  # nothing written for bad input


def test_examples_return_the_declared_outputs(
    iris_csv: Path, diabetes_csv: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = load_manifest(FOLDER)
    assert manifest.ref == "library/tune@1.0.1"
    assert manifest.spec.entrypoint == "tune.py:tune"
    assert manifest.metadata.categories == ["model-training"]
    listed = manifest.input("estimator").description
    assert all(name in listed for name in MODULE.ESTIMATORS)

    monkeypatch.chdir(iris_csv.parent)  # the examples name files relative to the run
    for example, out in zip(manifest.spec.examples, run_examples(FOLDER, MODULE.tune), strict=True):
        grid = example.inputs["param_grid"]
        assert all(out["best_params"][name] in values for name, values in grid.items())
