"""Search hyper-parameters of a scikit-learn model by cross-validation (fnhub catalog: tune).

Every candidate is scored on the same shuffled folds; the best one is refit on all rows and
saved in the same model-directory format as `train` (a skops file, never pickle, holding a
Pipeline of preprocessing and the estimator), so `evaluate` and `batch-predict` read it.
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
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.metrics import get_scorer_names
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    ParameterGrid,
    RandomizedSearchCV,
    StratifiedKFold,
)
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC, SVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils.multiclass import type_of_target

# The same allow-list as `train`: estimators are chosen by name from this table, never imported
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
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {"LogisticRegression": {"max_iter": 1000}}
_FOREST_GRID = {"n_estimators": [100, 300], "max_depth": [None, 8], "min_samples_leaf": [1, 4]}
_BOOSTING_GRID = {"learning_rate": [0.05, 0.1, 0.2], "max_depth": [2, 3]}
_TREE_GRID = {"max_depth": [None, 3, 5, 10], "min_samples_leaf": [1, 5, 20]}
_NEIGHBORS_GRID = {"n_neighbors": [3, 5, 11, 21], "weights": ["uniform", "distance"]}
_SVM_GRID = {"C": [0.1, 1.0, 10.0], "gamma": ["scale", 0.01, 0.1]}
# Small grids used when `param_grid` is not given (documented in the README).
DEFAULT_GRIDS: dict[str, dict[str, list[Any]]] = {
    "LogisticRegression": {"C": [0.01, 0.1, 1.0, 10.0]},
    "RandomForestClassifier": _FOREST_GRID,
    "GradientBoostingClassifier": _BOOSTING_GRID,
    "DecisionTreeClassifier": _TREE_GRID,
    "KNeighborsClassifier": _NEIGHBORS_GRID,
    "SVC": _SVM_GRID,
    "LinearRegression": {"fit_intercept": [True, False]},
    "Ridge": {"alpha": [0.01, 0.1, 1.0, 10.0, 100.0]},
    "Lasso": {"alpha": [0.001, 0.01, 0.1, 1.0, 10.0]},
    "RandomForestRegressor": _FOREST_GRID,
    "GradientBoostingRegressor": _BOOSTING_GRID,
    "DecisionTreeRegressor": _TREE_GRID,
    "KNeighborsRegressor": _NEIGHBORS_GRID,
    "SVR": _SVM_GRID,
}
SEARCHES = ("grid", "random")
MAX_GRID_CANDIDATES = 500  # beyond this an exhaustive search is refused: use search="random"
STEP = "model__"  # the estimator's step in the pipeline, as a parameter prefix
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
MODEL_FILE = "model.skops"
META_FILE = "model.json"


def tune(
    dataset: Path,
    label_column: str = "target",
    estimator: str = "RandomForestClassifier",
    param_grid: dict[str, list[Any]] | None = None,
    search: str = "grid",
    n_iter: int = 10,
    cv: int = 3,
    scoring: str | None = None,
    seed: int = 42,
) -> dict[str, Any]:
    """Cross-validate every candidate of `param_grid`; save the best, refit on all rows."""
    if search not in SEARCHES:
        raise ValueError(f"unknown search {search!r}; choose one of: {', '.join(SEARCHES)}")
    _check_int("n_iter", n_iter, minimum=1)
    _check_int("cv", cv, minimum=2)
    _check_int("seed", seed, minimum=0)
    model_step = make_estimator(estimator, seed)
    grid = check_grid(model_step, estimator, param_grid)
    task = "classification" if is_classifier(model_step) else "regression"
    if scoring is None:
        scoring = "accuracy" if task == "classification" else "r2"
    elif scoring not in get_scorer_names():
        raise ValueError(
            f"unknown scoring {scoring!r}; use a name from sklearn.metrics.get_scorer_names(), "
            "e.g. accuracy, f1_macro, roc_auc_ovr, r2, neg_root_mean_squared_error"
        )
    candidates = len(ParameterGrid(grid))
    if search == "grid" and candidates > MAX_GRID_CANDIDATES:
        raise ValueError(
            f"the grid has {candidates} candidates (at most {MAX_GRID_CANDIDATES} for "
            "search='grid'); use search='random' with n_iter"
        )

    features, labels = split_features(read_table(Path(dataset)), label_column)
    check_labels(labels, label_column, task)
    pipeline = build_pipeline(model_step, features)
    splitter = make_splitter(task, labels, cv, seed)
    prefixed = {STEP + name: values for name, values in grid.items()}
    common = {"scoring": scoring, "cv": splitter, "refit": True, "error_score": "raise"}
    searcher: GridSearchCV | RandomizedSearchCV
    if search == "grid":
        searcher = GridSearchCV(pipeline, prefixed, **common)
    else:
        searcher = RandomizedSearchCV(
            pipeline, prefixed, n_iter=min(n_iter, candidates), random_state=seed, **common
        )
    try:
        searcher.fit(features, labels)
    except ValueError as exc:  # a bad grid value or a scoring that does not fit the task
        raise ValueError(
            f"the search failed for {estimator} with scoring {scoring!r}: {exc}"
        ) from exc

    out_dir = Path(os.environ.get("FNHUB_OUTPUT_DIR") or tempfile.mkdtemp(prefix="tune-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    results = results_table(searcher.cv_results_, list(grid))
    results_path = out_dir / "results.csv"
    _write_atomic(results_path, lambda path: results.to_csv(path, index=False))
    columns = list(features.columns)
    best = searcher.best_estimator_
    model_dir = save_model(best, out_dir / "model", estimator, task, columns, label_column)
    best_params = {
        name.removeprefix(STEP): _json_value(value) for name, value in searcher.best_params_.items()
    }
    return {
        "best_params": best_params,
        "best_score": float(searcher.best_score_),
        "results": results_path,
        "model": model_dir,
    }


def make_estimator(name: str, seed: int) -> BaseEstimator:
    """An allow-listed estimator with the catalog's defaults; `seed` fills `random_state`."""
    if name not in ESTIMATORS:
        raise ValueError(f"unknown estimator {name!r}; choose one of: {', '.join(ESTIMATORS)}")
    model = ESTIMATORS[name]()
    settings = dict(DEFAULT_PARAMS.get(name, {}))
    if "random_state" in model.get_params(deep=False):
        settings["random_state"] = seed
    return model.set_params(**settings)


def check_grid(
    model: BaseEstimator, name: str, param_grid: dict[str, list[Any]] | None
) -> dict[str, list[Any]]:
    """The grid to search: the built-in one, or the caller's with names and lists checked."""
    if param_grid is None:
        return DEFAULT_GRIDS[name]
    if not isinstance(param_grid, dict) or not param_grid:
        raise ValueError(
            f"param_grid must be a non-empty mapping of parameter -> list of values, "
            f"got {param_grid!r}"
        )
    valid = model.get_params(deep=False)
    unknown = sorted(str(key) for key in param_grid if key not in valid)
    if unknown:
        raise ValueError(
            f"unknown parameter(s) for {name}: {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(sorted(valid))}"
        )
    not_lists = [str(k) for k, v in param_grid.items() if not isinstance(v, list) or not v]
    if not_lists:
        raise ValueError(
            f"param_grid values must be non-empty lists of candidates; not so for: "
            f"{', '.join(not_lists)}"
        )
    return param_grid


def results_table(cv_results: dict[str, Any], names: list[str]) -> pd.DataFrame:
    """One row per candidate, best first: rank, mean/std score, one column per parameter."""
    params = [
        {key.removeprefix(STEP): _json_value(value) for key, value in candidate.items()}
        for candidate in cv_results["params"]
    ]
    table = pd.DataFrame(
        {
            "rank_test_score": cv_results["rank_test_score"],
            "mean_test_score": cv_results["mean_test_score"],
            "std_test_score": cv_results["std_test_score"],
            **{f"param_{name}": [p.get(name) for p in params] for name in names},
            "params": [json.dumps(p, sort_keys=True) for p in params],
            "mean_fit_time": cv_results["mean_fit_time"],
        }
    )
    return table.sort_values(["rank_test_score"], kind="stable").reset_index(drop=True)


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
            f"{counts.min()}; lower cv"
        )
    return StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)


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


def _is_temporal(series: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series)


def _is_numeric(series: pd.Series) -> bool:
    """Numbers, not booleans: booleans are encoded like categories."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


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
