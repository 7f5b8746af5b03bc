"""Train a scikit-learn model on a table, with cross-validation (fnhub catalog: train).

The saved model is a scikit-learn Pipeline: a preprocessing step ("prep": median imputation and
standard scaling for numeric columns, one-hot encoding for the others, where a missing value is
a category of its own) followed by the chosen estimator ("model"). It is written with skops,
never pickle, so loading it cannot run arbitrary code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.inspection import permutation_importance
from sklearn.model_selection import KFold, StratifiedKFold, cross_validate
from sklearn.pipeline import Pipeline

from vendor.models import save_model
from vendor.tables import finite, output_dir, write_atomic
from vendor.training import ESTIMATORS as ESTIMATORS  # re-exported: the card's tests list it
from vendor.training import (
    build_pipeline,
    check_int,
    make_estimator,
    make_splitter,
    read_training_table,
)

TASKS = ("auto", "classification", "regression")
PERMUTATION_ROWS = 2000  # permutation importance runs on at most this many rows
PERMUTATION_REPEATS = 5


def train(
    dataset: Path,
    label_column: str = "target",
    estimator: str = "RandomForestClassifier",
    params: dict[str, Any] | None = None,
    cv: int = 5,
    seed: int = 42,
    task: str = "auto",
) -> dict[str, Any]:
    """Cross-validate, then fit `estimator` on all rows; save model, metrics and importances."""
    check_int("cv", cv, minimum=0)
    if cv == 1:
        raise ValueError("cv must be 0 (no cross-validation) or at least 2, got 1")
    check_int("seed", seed, minimum=0)
    model_step = make_estimator(estimator, seed, params)
    resolved_task = resolve_task(model_step, task)

    features, labels = read_training_table(Path(dataset), label_column, resolved_task)
    pipeline = build_pipeline(model_step, features)
    splitter = (
        make_splitter(resolved_task, labels, cv, seed, remedy="lower cv or set cv=0")
        if cv
        else None
    )

    metrics: dict[str, Any] = {
        "task": resolved_task,
        "estimator": estimator,
        "label_column": label_column,
        "n_rows": len(features),
        "n_features": int(features.shape[1]),
        "cv_folds": int(cv),
    }
    if resolved_task == "classification":
        metrics["n_classes"] = int(labels.nunique())
    try:
        metrics.update(cross_validation(pipeline, features, labels, resolved_task, splitter))
        pipeline.fit(features, labels)
    except ValueError as exc:  # scikit-learn's own check of a hyper-parameter value, mostly
        raise ValueError(f"training {estimator} failed: {exc}") from exc
    importances, method = feature_importances(pipeline, features, labels, resolved_task, seed)
    metrics["importance_method"] = method

    out_dir = output_dir("train-")
    model_dir = save_model(
        pipeline, out_dir / "model", estimator, resolved_task, list(features.columns), label_column
    )
    metrics_path = out_dir / "metrics.json"
    text = json.dumps(metrics, indent=2, allow_nan=False) + "\n"
    write_atomic(metrics_path, lambda path: path.write_text(text))
    importances_path = out_dir / "importances.csv"
    write_atomic(importances_path, lambda path: importances.to_csv(path, index=False))
    main_metric = "cv_accuracy_mean" if resolved_task == "classification" else "cv_r2_mean"
    return {
        "model": model_dir,
        "metrics": metrics_path,
        "importances": importances_path,
        "cv_score": metrics[main_metric],
    }


def resolve_task(model: BaseEstimator, task: str) -> str:
    """The estimator decides the task; an explicit `task` must agree with it."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")
    actual = "classification" if is_classifier(model) else "regression"
    if task not in ("auto", actual):
        raise ValueError(
            f"task {task!r} does not fit {type(model).__name__}, which does {actual}; "
            f"pick a {task} estimator or task='auto'"
        )
    return actual


def cross_validation(
    pipeline: Pipeline,
    features: pd.DataFrame,
    labels: pd.Series,
    task: str,
    splitter: KFold | StratifiedKFold | None,
) -> dict[str, float | None]:
    """Mean and std over folds of accuracy/f1_macro or r2/rmse; all None without folds."""
    scorers = (
        {"accuracy": "accuracy", "f1_macro": "f1_macro"}
        if task == "classification"
        else {"r2": "r2", "rmse": "neg_root_mean_squared_error"}
    )
    if splitter is None:
        return {f"cv_{name}_{stat}": None for name in scorers for stat in ("mean", "std")}
    scores = cross_validate(
        pipeline, features, labels, cv=splitter, scoring=scorers, error_score="raise"
    )
    result: dict[str, float | None] = {}
    for name in scorers:
        values = np.abs(scores[f"test_{name}"]) if name == "rmse" else scores[f"test_{name}"]
        result[f"cv_{name}_mean"] = finite(np.mean(values))
        result[f"cv_{name}_std"] = finite(np.std(values))
    return result


def feature_importances(
    pipeline: Pipeline, features: pd.DataFrame, labels: pd.Series, task: str, seed: int
) -> tuple[pd.DataFrame, str]:
    """Per input column: the model's own importances, else |coef_|, else permutation importance.

    One-hot columns are summed back into the column they came from.
    """
    model = pipeline.named_steps["model"]
    prep: ColumnTransformer = pipeline.named_steps["prep"]
    raw: np.ndarray | None = None
    if hasattr(model, "feature_importances_"):
        raw, method = np.asarray(model.feature_importances_, dtype=float), "feature_importances"
    elif _has_coef(model):
        coef = np.abs(np.asarray(model.coef_, dtype=float))
        raw, method = (coef.mean(axis=0) if coef.ndim == 2 else coef), "abs_coef"
    if raw is not None:
        names: list[Any] = []
        values: list[float] = []
        for name, _, columns in prep.transformers_:
            if name == "remainder":
                continue
            block = raw[prep.output_indices_[name]]
            names += list(columns)
            values += [float(v) for v in block] if name == "num" else [float(block.sum())]
    else:
        method = "permutation"
        sample = features.sample(n=min(len(features), PERMUTATION_ROWS), random_state=seed)
        result = permutation_importance(
            pipeline,
            sample,
            labels.loc[sample.index],
            n_repeats=PERMUTATION_REPEATS,
            random_state=seed,
            scoring="accuracy" if task == "classification" else "r2",
        )
        names, values = list(features.columns), list(result.importances_mean)
    table = pd.DataFrame({"feature": [str(n) for n in names], "importance": values})
    return table.sort_values("importance", ascending=False, kind="stable"), method


def _has_coef(model: BaseEstimator) -> bool:
    """`coef_` exists only for linear models (an RBF SVC raises AttributeError on access)."""
    try:
        return model.coef_ is not None
    except AttributeError:
        return False
