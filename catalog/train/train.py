"""Train a scikit-learn model on a table, with cross-validation (fnhub catalog: train).

The saved model is a scikit-learn Pipeline: a preprocessing step ("prep": median imputation and
standard scaling for numeric columns, one-hot encoding for the others, where a missing value is
a category of its own) followed by the chosen estimator ("model"). It is written with skops,
never pickle, so loading it cannot run arbitrary code.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
import skops.io as sio
from sklearn.base import BaseEstimator, is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.inspection import permutation_importance
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_validate
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC, SVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils.multiclass import type_of_target

# The only estimators this function builds: chosen by name from this table, never imported
# from a user-supplied string.
ESTIMATORS: dict[str, type[BaseEstimator]] = {
    cls.__name__: cls
    for cls in (
        LogisticRegression, RandomForestClassifier, GradientBoostingClassifier,
        DecisionTreeClassifier, KNeighborsClassifier, SVC,
        LinearRegression, Ridge, Lasso, RandomForestRegressor, GradientBoostingRegressor,
        DecisionTreeRegressor, KNeighborsRegressor, SVR,
    )
}  # fmt: skip
# Better starting points than scikit-learn's defaults; `params` still override them.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {"LogisticRegression": {"max_iter": 1000}}
TASKS = ("auto", "classification", "regression")
READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    ".csv": pd.read_csv,
    ".parquet": pd.read_parquet,
    ".pq": pd.read_parquet,
}
MAX_CATEGORIES = 50  # one-hot columns per text column; rarer values share one column
MISSING = "(missing)"  # the category of a missing text value
# A numeric label with more distinct values than both of these is taken for a regression target.
CONTINUOUS_MIN_DISTINCT = 20
CONTINUOUS_RATIO = 0.2
PERMUTATION_ROWS = 2000  # permutation importance runs on at most this many rows
PERMUTATION_REPEATS = 5
MODEL_FILE = "model.skops"
META_FILE = "model.json"


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
    _check_int("cv", cv, minimum=0)
    if cv == 1:
        raise ValueError("cv must be 0 (no cross-validation) or at least 2, got 1")
    _check_int("seed", seed, minimum=0)
    model_step = make_estimator(estimator, params, seed)
    resolved_task = resolve_task(model_step, task)

    features, labels = split_features(read_table(Path(dataset)), label_column)
    check_labels(labels, label_column, resolved_task)
    pipeline = build_pipeline(model_step, features)
    splitter = make_splitter(resolved_task, labels, cv, seed) if cv else None

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

    out_dir = Path(os.environ.get("FNHUB_OUTPUT_DIR") or tempfile.mkdtemp(prefix="train-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    model_dir = save_model(
        pipeline, out_dir / "model", estimator, resolved_task, list(features.columns), label_column
    )
    metrics_path = out_dir / "metrics.json"
    text = json.dumps(metrics, indent=2, allow_nan=False) + "\n"
    _write_atomic(metrics_path, lambda path: path.write_text(text))
    importances_path = out_dir / "importances.csv"
    _write_atomic(importances_path, lambda path: importances.to_csv(path, index=False))
    main_metric = "cv_accuracy_mean" if resolved_task == "classification" else "cv_r2_mean"
    return {
        "model": model_dir,
        "metrics": metrics_path,
        "importances": importances_path,
        "cv_score": metrics[main_metric],
    }


def make_estimator(name: str, params: dict[str, Any] | None, seed: int) -> BaseEstimator:
    """An allow-listed estimator with checked hyper-parameters; `seed` fills `random_state`."""
    if name not in ESTIMATORS:
        raise ValueError(f"unknown estimator {name!r}; choose one of: {', '.join(ESTIMATORS)}")
    if params is not None and not isinstance(params, dict):
        raise ValueError(f"params must be a mapping of hyper-parameters, got {params!r}")
    model = ESTIMATORS[name]()
    valid = model.get_params(deep=False)
    unknown = sorted(str(key) for key in (params or {}) if key not in valid)
    if unknown:
        raise ValueError(
            f"unknown parameter(s) for {name}: {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(sorted(valid))}"
        )
    settings = {**DEFAULT_PARAMS.get(name, {}), **(params or {})}
    if "random_state" in valid and "random_state" not in settings:
        settings["random_state"] = seed
    return model.set_params(**settings)


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


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file by its suffix, turning every failure into a clear ValueError."""
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise ValueError(
            f"cannot read {path.name}: unsupported suffix {path.suffix or '(none)'!r}; "
            f"use one of: {', '.join(READERS)}"
        )
    if not path.is_file():
        raise ValueError(f"dataset file not found: {path}")
    try:
        return reader(path)
    except Exception as exc:  # pandas/pyarrow raise many unrelated types for a bad file
        raise ValueError(f"cannot read {path.name} as {path.suffix[1:]}: {exc}") from exc


def split_features(frame: pd.DataFrame, label_column: str) -> tuple[pd.DataFrame, pd.Series]:
    """Features and labels, refusing tables a model cannot learn from."""
    if label_column not in frame.columns:
        raise ValueError(
            f"unknown label column {label_column!r} (columns: {', '.join(map(str, frame.columns))})"
        )
    if frame.empty:
        raise ValueError("the dataset has no rows")
    features = frame.drop(columns=[label_column])
    if features.shape[1] == 0:
        raise ValueError(f"the dataset has no feature columns besides {label_column!r}")
    empty = [str(c) for c in features.columns if features[c].isna().all()]
    if empty:
        raise ValueError(f"feature column(s) with no values: {', '.join(empty)}; drop them")
    dated = [str(c) for c in features.columns if _is_temporal(features[c])]
    if dated:
        raise ValueError(f"date/time column(s) {', '.join(dated)}: convert them to numbers first")
    labels = frame[label_column]
    missing = int(labels.isna().sum())
    if missing:
        raise ValueError(f"label column {label_column!r} has {missing} missing value(s)")
    return features, labels


def check_labels(labels: pd.Series, label_column: str, task: str) -> None:
    """Catch a regressor on text labels or a classifier on a continuous target early."""
    if task == "regression":
        if not _is_numeric(labels):
            raise ValueError(
                f"label column {label_column!r} is not numeric ({labels.dtype}); "
                "use a classifier for class labels"
            )
        return
    distinct = labels.nunique()
    many = (
        _is_numeric(labels)
        and distinct > CONTINUOUS_MIN_DISTINCT
        and distinct > CONTINUOUS_RATIO * len(labels)
    )  # whole numbers stored as floats (diabetes' target) are not "continuous" to sklearn
    if many or type_of_target(labels.to_numpy()) == "continuous":
        raise ValueError(
            f"label column {label_column!r} looks continuous ({distinct} distinct values in "
            f"{len(labels)} rows); use a regressor (e.g. RandomForestRegressor)"
        )
    if distinct < 2:
        raise ValueError(f"label column {label_column!r} has a single class; need at least two")


def build_pipeline(model: BaseEstimator, features: pd.DataFrame) -> Pipeline:
    """Impute and scale numbers, one-hot encode everything else, then `model`.

    Missing text values become their own "(missing)" category. Each non-numeric column gets its
    own encoder so that importances can be summed back to it.
    """
    numeric = [c for c in features.columns if _is_numeric(features[c])]
    steps: list[tuple[str, Any, list[Any]]] = []
    if numeric:
        impute = SimpleImputer(strategy="median")
        steps.append(("num", Pipeline([("impute", impute), ("scale", StandardScaler())]), numeric))
    for i, column in enumerate(c for c in features.columns if c not in numeric):
        encoder = OneHotEncoder(
            handle_unknown="infrequent_if_exist", max_categories=MAX_CATEGORIES, sparse_output=False
        )
        if pd.api.types.is_bool_dtype(features[column]):
            steps.append((f"cat{i}", encoder, [column]))  # SimpleImputer refuses booleans
            continue
        kinds = {type(v).__name__ for v in features[column].dropna()}
        if len(kinds) > 1:
            raise ValueError(
                f"column {column!r} mixes value types ({', '.join(sorted(kinds))}); "
                "make it all numbers or all text"
            )
        impute = SimpleImputer(strategy="constant", fill_value=MISSING)
        steps.append((f"cat{i}", Pipeline([("impute", impute), ("encode", encoder)]), [column]))
    prep = ColumnTransformer(steps, sparse_threshold=0.0)
    return Pipeline([("prep", prep), ("model", model)])


def make_splitter(task: str, labels: pd.Series, cv: int, seed: int) -> KFold | StratifiedKFold:
    """Shuffled folds (stratified for classes), checked to be feasible for this table."""
    if cv > len(labels):
        raise ValueError(f"cv={cv} folds need at least {cv} rows; the dataset has {len(labels)}")
    if task == "regression":
        return KFold(n_splits=cv, shuffle=True, random_state=seed)
    counts = labels.value_counts()
    if counts.min() < cv:
        raise ValueError(
            f"cv={cv} needs at least {cv} rows of every class; class {counts.idxmin()!r} has "
            f"{counts.min()}; lower cv or set cv=0"
        )
    return StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)


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
        result[f"cv_{name}_mean"] = _finite(np.mean(values))
        result[f"cv_{name}_std"] = _finite(np.std(values))
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


def save_model(
    pipeline: Pipeline,
    target: Path,
    estimator: str,
    task: str,
    features: list[Any],
    label_column: str,
) -> Path:
    """Write the model directory (model.skops + model.json) and swap it in place atomically."""
    model = pipeline.named_steps["model"]
    meta: dict[str, Any] = {
        "estimator": estimator,
        "task": task,
        "features": [str(f) for f in features],
        "label_column": label_column,
    }
    if task == "classification":
        meta["classes"] = [_json_value(c) for c in model.classes_]
    meta["params"] = {k: _json_value(v) for k, v in model.get_params(deep=False).items()}
    meta["sklearn_version"] = sklearn.__version__
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-", suffix=".tmp"))
    try:
        sio.dump(pipeline, work / MODEL_FILE)
        (work / META_FILE).write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return target


def _has_coef(model: BaseEstimator) -> bool:
    """`coef_` exists only for linear models (an RBF SVC raises AttributeError on access)."""
    try:
        return model.coef_ is not None
    except AttributeError:
        return False


def _is_temporal(series: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series)


def _is_numeric(series: pd.Series) -> bool:
    """Numbers, not booleans: booleans are encoded like categories."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _finite(value: float) -> float | None:
    """JSON has no NaN: an undefined score becomes null."""
    number = float(value)
    return number if math.isfinite(number) else None


def _json_value(value: Any) -> Any:
    """A JSON-safe copy of a label or hyper-parameter value (objects become their repr)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return repr(value)


def _write_atomic(target: Path, write: Callable[[Path], object]) -> None:
    """Write through a temp file in the same folder, so readers never see half a file."""
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
