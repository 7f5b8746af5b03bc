"""Tests for the evaluate catalog function, calling the entrypoint directly."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn import datasets
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import mean_squared_error, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC

from catalog.testing import (
    PNG_SIGNATURE,
    fit_and_save,
    load_module,
    pngs,
    run_examples,
    save_model,
)
from fnhub.core.manifest import load_manifest

FOLDER = Path(__file__).resolve().parents[1]
TRAIN_FILE = FOLDER.parent / "train" / "train.py"
CLASSIFICATION_PLOTS = ["confusion_matrix.png", "pr_curve.png", "roc_curve.png"]
MODULE = load_module(FOLDER)


def _split(frame: pd.DataFrame, tmp_path: Path, name: str, stratify: bool) -> tuple[Path, Path]:
    train, test = train_test_split(
        frame, test_size=0.3, random_state=0, stratify=frame["target"] if stratify else None
    )
    paths = tmp_path / f"{name}-train.csv", tmp_path / f"{name}-test.csv"
    train.to_csv(paths[0], index=False)
    test.to_csv(paths[1], index=False)
    return paths


@pytest.mark.skipif(not TRAIN_FILE.is_file(), reason="the catalog's train function is not beside")
def test_chained_after_train_on_held_out_iris(
    iris: pd.DataFrame, tmp_path: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train_csv, test_csv = _split(iris, tmp_path, "iris", True)
    monkeypatch.setenv("FNHUB_OUTPUT_DIR", str(tmp_path / "train-out"))
    train = load_module(TRAIN_FILE.parent).train
    trained = train(train_csv, params={"n_estimators": 50}, cv=0)
    monkeypatch.setenv("FNHUB_OUTPUT_DIR", str(out_dir))

    out = MODULE.evaluate(trained["model"], test_csv)
    assert out["score"] > 0.85
    metrics = json.loads(out["metrics"].read_text())
    assert metrics["accuracy"] == out["score"]
    assert metrics["n_rows"] == 45
    assert metrics["task"] == "classification"
    assert metrics["estimator"] == "RandomForestClassifier"
    for name in ("precision_macro", "recall_macro", "f1_macro"):
        assert 0.85 < metrics[name] <= 1.0
    assert metrics["roc_auc"] > 0.95  # one-vs-rest macro: the forest gives probabilities
    assert 0 < metrics["log_loss"] < 0.5
    assert metrics["notes"] == {}
    matrix = np.array(metrics["confusion_matrix"]["matrix"])
    assert metrics["confusion_matrix"]["labels"] == [0, 1, 2]
    assert matrix.sum() == 45
    assert matrix.trace() / 45 == pytest.approx(out["score"])

    plots = pngs(out["plots"])
    assert out["plots"] == out_dir / "plots"
    assert sorted(plots) == CLASSIFICATION_PLOTS
    assert all(data.startswith(PNG_SIGNATURE) for data in plots.values())
    assert not [p for p in out_dir.iterdir() if p.name.endswith(".tmp")]


def test_binary_probabilities_on_breast_cancer(tmp_path: Path, out_dir: Path) -> None:
    frame = datasets.load_breast_cancer(as_frame=True).frame
    train_csv, test_csv = _split(frame, tmp_path, "cancer", True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    folder = fit_and_save(model, train_csv, tmp_path / "model")

    out = MODULE.evaluate(folder, test_csv)
    metrics = json.loads(out["metrics"].read_text())
    test = pd.read_csv(test_csv)
    expected_auc = roc_auc_score(
        test["target"], model.predict_proba(test.drop(columns="target"))[:, 1]
    )
    assert metrics["roc_auc"] == pytest.approx(expected_auc)
    assert metrics["roc_auc"] > 0.95
    assert out["score"] > 0.9
    assert metrics["log_loss"] < 0.3
    assert sorted(pngs(out["plots"])) == CLASSIFICATION_PLOTS


def test_decision_values_give_roc_auc_without_probabilities(tmp_path: Path, out_dir: Path) -> None:
    frame = datasets.load_breast_cancer(as_frame=True).frame
    train_csv, test_csv = _split(frame, tmp_path, "cancer", True)
    folder = fit_and_save(make_pipeline(StandardScaler(), SVC()), train_csv, tmp_path / "model")
    metrics = json.loads(MODULE.evaluate(folder, test_csv)["metrics"].read_text())
    assert metrics["roc_auc"] > 0.95
    assert metrics["log_loss"] is None
    assert metrics["notes"] == {"log_loss": "the model gives no probabilities"}


def test_regression_on_held_out_diabetes(
    diabetes: pd.DataFrame, tmp_path: Path, out_dir: Path
) -> None:
    train_csv, test_csv = _split(diabetes, tmp_path, "diabetes", False)
    model = Ridge(alpha=0.1)
    folder = fit_and_save(model, train_csv, tmp_path / "model")

    out = MODULE.evaluate(folder, test_csv)
    metrics = json.loads(out["metrics"].read_text())
    test = pd.read_csv(test_csv)
    predicted = model.predict(test.drop(columns="target"))
    assert out["score"] == metrics["r2"]
    assert metrics["r2"] > 0.3
    assert metrics["rmse"] == pytest.approx(
        math.sqrt(mean_squared_error(test["target"], predicted))
    )
    assert metrics["mae"] == pytest.approx(np.abs(test["target"] - predicted).mean())
    assert metrics["n_rows"] == len(test)
    assert "accuracy" not in metrics

    plots = pngs(out["plots"])
    assert sorted(plots) == ["predicted_vs_actual.png", "residuals.png"]
    assert all(data.startswith(PNG_SIGNATURE) for data in plots.values())


def test_absent_and_unseen_classes_are_explained(
    iris: pd.DataFrame, tmp_path: Path, out_dir: Path
) -> None:
    folder = fit_and_save(LogisticRegression(max_iter=1000), iris, tmp_path / "model")

    two_classes = tmp_path / "two.csv"
    iris[iris["target"] < 2].to_csv(two_classes, index=False)
    metrics = json.loads(MODULE.evaluate(folder, two_classes)["metrics"].read_text())
    assert metrics["roc_auc"] is None
    assert metrics["notes"]["roc_auc"] == "some classes are absent from the dataset"
    assert metrics["log_loss"] is not None  # defined with the model's classes as labels

    renamed = iris.head(20).assign(target=[3] * 10 + [0] * 10)
    unseen = tmp_path / "unseen.csv"
    renamed.to_csv(unseen, index=False)
    out = MODULE.evaluate(folder, unseen)
    metrics = json.loads(out["metrics"].read_text())
    assert metrics["confusion_matrix"]["labels"] == [0, 1, 2, 3]
    assert metrics["roc_auc"] is None and metrics["log_loss"] is None
    assert metrics["notes"]["roc_auc"] == "labels the model never saw: 3"
    assert out["score"] == pytest.approx(0.5)
    assert sorted(pngs(out["plots"])) == CLASSIFICATION_PLOTS


def test_text_classes_match_labels_read_back_as_numbers(
    iris: pd.DataFrame, iris_csv: Path, tmp_path: Path, out_dir: Path
) -> None:
    """Trained on "0"/"1"/"2" (say from Parquet), scored on a CSV where they read as 0/1/2."""
    model = LogisticRegression(max_iter=1000)
    features = list(iris.columns[:-1])
    model.fit(iris[features], iris["target"].astype(str))
    folder = save_model(model, tmp_path / "model", features)
    out = MODULE.evaluate(folder, iris_csv)
    metrics = json.loads(out["metrics"].read_text())
    assert out["score"] > 0.9
    assert metrics["confusion_matrix"]["labels"] == ["0", "1", "2"]
    assert metrics["roc_auc"] > 0.95


def test_regressor_needs_a_numeric_label(
    diabetes: pd.DataFrame, tmp_path: Path, out_dir: Path
) -> None:
    folder = fit_and_save(Ridge(), _split(diabetes, tmp_path, "d", False)[0], tmp_path / "model")
    path = tmp_path / "text.csv"
    diabetes.assign(target="high").to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"label column 'target' is not numeric .* a regressor"):
        MODULE.evaluate(folder, path)


def test_missing_columns_are_named(
    iris: pd.DataFrame, iris_csv: Path, tmp_path: Path, out_dir: Path
) -> None:
    folder = fit_and_save(LogisticRegression(max_iter=1000), iris, tmp_path / "model")
    partial = tmp_path / "partial.csv"
    iris.drop(columns=["petal width (cm)", "target"]).to_csv(partial, index=False)
    with pytest.raises(
        ValueError, match=r"lacks column\(s\) the evaluation needs: petal width \(cm\), target"
    ):
        MODULE.evaluate(folder, partial)
    with pytest.raises(ValueError, match=r"lacks column\(s\) the evaluation needs: species"):
        MODULE.evaluate(folder, iris_csv, label_column="species")
    assert not out_dir.exists()


def test_refuses_a_model_file_with_non_sklearn_types(
    iris: pd.DataFrame, iris_csv: Path, tmp_path: Path, out_dir: Path
) -> None:
    """A skops file that references os.system is refused before anything is rebuilt."""
    features = list(iris.columns[:-1])
    evil = make_pipeline(FunctionTransformer(os.system), LogisticRegression())
    folder = tmp_path / "evil"
    folder.mkdir()
    sio.dump(evil, folder / "model.skops")
    assert sio.get_untrusted_types(file=folder / "model.skops") == [f"{os.name}.system"]
    (folder / "model.json").write_text(
        json.dumps({"estimator": "Pipeline", "task": "classification", "features": features})
    )
    with pytest.raises(
        ValueError,
        match=rf"refusing to load .*model\.skops: it contains types outside scikit-learn, "
        rf"numpy and scipy: {os.name}\.system",
    ):
        MODULE.evaluate(folder, iris_csv)
    assert not out_dir.exists()


def test_broken_model_directories(
    iris: pd.DataFrame, iris_csv: Path, tmp_path: Path, out_dir: Path
) -> None:
    with pytest.raises(ValueError, match=r"is not a model directory: it needs model\.skops"):
        MODULE.evaluate(tmp_path, iris_csv)

    folder = fit_and_save(LogisticRegression(max_iter=1000), iris, tmp_path / "model")
    meta = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**meta, "task": "regression"}))
    with pytest.raises(ValueError, match=r"says task 'regression' but .* LogisticRegression"):
        MODULE.evaluate(folder, iris_csv)
    (folder / "model.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"model\.json is not valid JSON"):
        MODULE.evaluate(folder, iris_csv)
    (folder / "model.json").write_text(json.dumps({"task": "classification"}))
    with pytest.raises(ValueError, match="non-empty 'features' list"):
        MODULE.evaluate(folder, iris_csv)
    (folder / "model.json").write_text(json.dumps(meta))
    (folder / "model.skops").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"model\.skops is not a skops file"):
        MODULE.evaluate(folder, iris_csv)


def test_examples_return_the_declared_outputs(
    iris: pd.DataFrame, tmp_path: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = load_manifest(FOLDER)
    assert manifest.ref == "library/evaluate@1.0.1"
    assert manifest.spec.entrypoint == "evaluate.py:evaluate"
    assert manifest.metadata.categories == ["model-evaluation"]

    # The example names a model directory and a test split relative to the run.
    train_csv, _ = _split(iris, tmp_path, "iris", True)
    fit_and_save(LogisticRegression(max_iter=1000), train_csv, tmp_path / "model")
    monkeypatch.chdir(tmp_path)
    for out in run_examples(FOLDER, MODULE.evaluate):
        assert out["score"] > 0.85
