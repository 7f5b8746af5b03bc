"""Tests for the batch-predict catalog function, calling the entrypoint directly."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC

from catalog.testing import fit_and_save, load_module, run_examples, save_model
from fnhub.core.manifest import load_manifest

FOLDER = Path(__file__).resolve().parents[1]
TRAIN_FILE = FOLDER.parent / "train" / "train.py"
PETAL = "petal length (cm)"
MODULE = load_module(FOLDER)


def test_iris_predictions_with_probabilities(
    iris: pd.DataFrame, iris_csv: Path, tmp_path: Path, out_dir: Path
) -> None:
    model = RandomForestClassifier(n_estimators=30, random_state=0)
    folder = fit_and_save(model, iris, tmp_path / "model")
    out = MODULE.batch_predict(folder, iris_csv)

    assert out["n_rows"] == 150
    assert out["predictions"] == out_dir / "predictions.csv"
    table = pd.read_csv(out["predictions"])
    features = list(iris.columns[:-1])
    assert list(table.columns) == [*features, "prediction", "proba_0", "proba_1", "proba_2"]
    assert len(table) == 150
    pd.testing.assert_frame_equal(table[features], iris[features])
    proba = table[["proba_0", "proba_1", "proba_2"]].to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(table["prediction"], model.predict(iris[features]))
    np.testing.assert_array_equal(table["prediction"], proba.argmax(axis=1))
    assert (table["prediction"] == iris["target"]).mean() > 0.95
    assert json.loads(out["drift"].read_text()) == {"computed": False}
    assert not [p for p in out_dir.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.skipif(not TRAIN_FILE.is_file(), reason="the catalog's train function is not beside")
def test_chained_after_train_with_text_labels(
    tmp_path: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """train's model (a preprocessing pipeline) predicts rows with gaps and unseen values."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {"x": rng.normal(size=300), "colour": rng.choice(["red", "green", "blue"], size=300)}
    )
    frame["kind"] = np.where(frame["x"] + (frame["colour"] == "red") > 0.3, "big", "small")
    train_csv = tmp_path / "train.csv"
    frame.to_csv(train_csv, index=False)
    monkeypatch.setenv("FNHUB_OUTPUT_DIR", str(tmp_path / "train-out"))
    train = load_module(TRAIN_FILE.parent).train
    trained = train(train_csv, label_column="kind", estimator="LogisticRegression", cv=0)

    new = pd.DataFrame({"x": [2.0, -2.0, np.nan], "colour": ["purple", "green", None]})
    new_csv = tmp_path / "new.csv"
    new.to_csv(new_csv, index=False)
    monkeypatch.setenv("FNHUB_OUTPUT_DIR", str(out_dir))
    out = MODULE.batch_predict(trained["model"], new_csv, label_column="kind")
    table = pd.read_csv(out["predictions"])
    assert list(table.columns) == ["x", "colour", "prediction", "proba_big", "proba_small"]
    assert list(table["prediction"][:2]) == ["big", "small"]
    np.testing.assert_allclose(table[["proba_big", "proba_small"]].sum(axis=1), 1.0)


def test_label_is_dropped_and_regressors_have_no_probabilities(
    diabetes: pd.DataFrame, diabetes_csv: Path, tmp_path: Path, out_dir: Path
) -> None:
    model = Ridge()
    folder = fit_and_save(model, diabetes, tmp_path / "model")
    out = MODULE.batch_predict(folder, diabetes_csv)
    table = pd.read_csv(out["predictions"])
    assert list(table.columns) == [*diabetes.columns[:-1], "prediction"]
    assert out["n_rows"] == len(table) == 442
    np.testing.assert_allclose(table["prediction"], model.predict(diabetes.drop(columns="target")))


def test_a_feature_named_like_the_label_is_kept(tmp_path: Path, out_dir: Path) -> None:
    frame = pd.DataFrame({"target": [0.0, 1.0, 2.0, 3.0], "x": [1.0, 0.0, 1.0, 0.0]})
    model = Ridge().fit(frame, [0.0, 1.0, 2.0, 3.0])
    folder = save_model(model, tmp_path / "model", ["target", "x"])
    path = tmp_path / "rows.csv"
    frame.to_csv(path, index=False)
    table = pd.read_csv(MODULE.batch_predict(folder, path)["predictions"])
    assert list(table.columns) == ["target", "x", "prediction"]


def test_classifier_without_probabilities(
    iris: pd.DataFrame, iris_csv: Path, tmp_path: Path, out_dir: Path
) -> None:
    folder = fit_and_save(make_pipeline(StandardScaler(), SVC()), iris, tmp_path / "model")
    table = pd.read_csv(MODULE.batch_predict(folder, iris_csv)["predictions"])
    assert list(table.columns)[-1] == "prediction"
    assert not [c for c in table.columns if c.startswith("proba_")]


def test_chunks_give_the_same_output_for_csv_and_parquet(
    iris: pd.DataFrame,
    iris_csv: Path,
    tmp_path: Path,
    out_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = fit_and_save(LogisticRegression(max_iter=1000), iris, tmp_path / "model")
    whole = pd.read_csv(MODULE.batch_predict(folder, iris_csv)["predictions"])
    parquet = tmp_path / "iris.parquet"
    iris.to_parquet(parquet, index=False)
    monkeypatch.setattr(MODULE, "CHUNK_ROWS", 7)  # 150 rows: 22 chunks, the last one short
    for path in (iris_csv, parquet):
        assert len(list(MODULE.iter_chunks(path))) == 22
        out = MODULE.batch_predict(folder, path)
        assert out["n_rows"] == 150
        pd.testing.assert_frame_equal(pd.read_csv(out["predictions"]), whole)


def test_drift_against_a_reference(
    iris: pd.DataFrame, iris_csv: Path, tmp_path: Path, out_dir: Path
) -> None:
    model = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=1000))
    folder = fit_and_save(model, iris, tmp_path / "model")
    shifted = iris.assign(**{PETAL: iris[PETAL] + 2.0})
    shifted.loc[:14, "sepal width (cm)"] = np.nan  # 10% missing, otherwise unchanged
    current = tmp_path / "shifted.csv"
    shifted.to_csv(current, index=False)

    out = MODULE.batch_predict(folder, current, reference=iris_csv)
    drift = json.loads(out["drift"].read_text())
    assert drift["computed"] is True
    assert (drift["n_reference"], drift["n_current"]) == (150, 150)
    assert drift["drifted_features"] == [PETAL]
    petal = drift["features"][PETAL]
    assert petal["kind"] == "numeric"
    assert petal["psi"] > 1.0 and petal["drifted"] is True
    assert petal["ks_pvalue"] < 1e-10
    assert petal["current_mean"] - petal["reference_mean"] == pytest.approx(2.0)
    same = drift["features"]["sepal length (cm)"]
    assert same["psi"] == pytest.approx(0.0) and same["ks_pvalue"] == pytest.approx(1.0)
    width = drift["features"]["sepal width (cm)"]
    assert width["current_missing"] == pytest.approx(0.1)
    assert width["reference_missing"] == 0.0
    assert width["psi"] < 0.1


def test_text_feature_drift() -> None:
    reference = pd.Series(["a"] * 50 + ["b"] * 50)
    moved = pd.Series(["a"] * 90 + ["b"] * 5 + ["c"] * 5)
    stats = MODULE.categorical_drift(reference, moved)
    assert stats["kind"] == "categorical"
    assert stats["new_values"] == 5
    assert stats["ks_pvalue"] is None
    expected = MODULE.psi(np.array([50, 50, 0]), np.array([90, 5, 5]))
    assert stats["psi"] == pytest.approx(expected)
    assert stats["psi"] > 0.25
    assert MODULE.categorical_drift(reference, reference)["psi"] == pytest.approx(0.0)


def test_psi_matches_the_formula() -> None:
    ref, cur = np.array([25, 25, 50]), np.array([50, 25, 25])
    p, q = ref / 100, cur / 100
    assert MODULE.psi(ref, cur) == pytest.approx(np.sum((q - p) * np.log(q / p)))


def test_bad_inputs_are_named(
    iris: pd.DataFrame, iris_csv: Path, tmp_path: Path, out_dir: Path
) -> None:
    folder = fit_and_save(LogisticRegression(max_iter=1000), iris, tmp_path / "model")
    partial = tmp_path / "partial.csv"
    iris.drop(columns=[PETAL]).to_csv(partial, index=False)
    with pytest.raises(
        ValueError, match=r"the dataset lacks feature column\(s\) the model needs: petal length"
    ):
        MODULE.batch_predict(folder, partial)
    with pytest.raises(
        ValueError, match=r"the reference lacks feature column\(s\) the model needs: petal length"
    ):
        MODULE.batch_predict(folder, iris_csv, reference=partial)

    clashing = tmp_path / "clash.csv"
    iris.assign(prediction=1).to_csv(clashing, index=False)
    with pytest.raises(ValueError, match=r"already has output column\(s\) prediction"):
        MODULE.batch_predict(folder, clashing)
    empty = tmp_path / "empty.csv"
    iris.head(0).to_csv(empty, index=False)
    with pytest.raises(ValueError, match="the dataset has no rows"):
        MODULE.batch_predict(folder, empty)
    with pytest.raises(ValueError, match=r"unsupported suffix '\.json'"):
        MODULE.batch_predict(folder, tmp_path / "rows.json")
    with pytest.raises(ValueError, match="dataset file not found"):
        MODULE.batch_predict(folder, tmp_path / "nowhere.parquet")
    assert not [p for p in out_dir.iterdir() if p.name != "drift.json"]  # no partial output


def test_refuses_a_model_file_with_non_sklearn_types(
    iris_csv: Path, tmp_path: Path, out_dir: Path
) -> None:
    evil = make_pipeline(FunctionTransformer(os.system), LogisticRegression())
    folder = tmp_path / "evil"
    folder.mkdir()
    sio.dump(evil, folder / "model.skops")
    features = list(pd.read_csv(iris_csv).columns[:-1])
    (folder / "model.json").write_text(
        json.dumps({"estimator": "Pipeline", "task": "classification", "features": features})
    )
    with pytest.raises(ValueError, match=rf"refusing to load .*: .*{os.name}\.system"):
        MODULE.batch_predict(folder, iris_csv)
    with pytest.raises(ValueError, match=r"is not a model directory: it needs model\.skops"):
        MODULE.batch_predict(tmp_path, iris_csv)


def test_examples_return_the_declared_outputs(
    iris: pd.DataFrame,
    iris_csv: Path,
    tmp_path: Path,
    out_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifest = load_manifest(FOLDER)
    assert manifest.ref == "library/batch-predict@1.0.1"
    assert manifest.spec.entrypoint == "batch_predict.py:batch_predict"
    assert manifest.metadata.categories == ["model-serving"]

    fit_and_save(LogisticRegression(max_iter=1000), iris, tmp_path / "model")
    iris.sample(40, random_state=0).drop(columns="target").to_csv(
        tmp_path / "iris-new.csv", index=False
    )
    monkeypatch.chdir(tmp_path)  # the example names files relative to the run
    for out in run_examples(FOLDER, MODULE.batch_predict):
        assert out["n_rows"] == 40
        assert json.loads(out["drift"].read_text())["computed"] is True
