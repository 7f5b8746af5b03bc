"""Search hyper-parameters of a scikit-learn model by cross-validation (fnhub catalog: tune).

Every candidate is scored on the same shuffled folds; the best one is refit on all rows and
saved in the same model-directory format as `train` (a skops file, never pickle, holding a
Pipeline of preprocessing and the estimator), so `evaluate` and `batch-predict` read it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.base import BaseEstimator, is_classifier
from sklearn.metrics import get_scorer_names
from sklearn.model_selection import GridSearchCV, ParameterGrid, RandomizedSearchCV

from vendor.models import json_value, save_model
from vendor.tables import output_dir, write_atomic
from vendor.training import ESTIMATORS as ESTIMATORS  # re-exported: the card's tests list it
from vendor.training import (
    build_pipeline,
    check_int,
    check_param_names,
    make_estimator,
    make_splitter,
    read_training_table,
)

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
    check_int("n_iter", n_iter, minimum=1)
    check_int("cv", cv, minimum=2)
    check_int("seed", seed, minimum=0)
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

    features, labels = read_training_table(Path(dataset), label_column, task)
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

    out_dir = output_dir("tune-")
    results = results_table(searcher.cv_results_, list(grid))
    results_path = out_dir / "results.csv"
    write_atomic(results_path, lambda path: results.to_csv(path, index=False))
    columns = list(features.columns)
    best = searcher.best_estimator_
    model_dir = save_model(best, out_dir / "model", estimator, task, columns, label_column)
    best_params = {
        name.removeprefix(STEP): json_value(value) for name, value in searcher.best_params_.items()
    }
    return {
        "best_params": best_params,
        "best_score": float(searcher.best_score_),
        "results": results_path,
        "model": model_dir,
    }


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
    check_param_names(model, name, param_grid)
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
        {key.removeprefix(STEP): json_value(value) for key, value in candidate.items()}
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
