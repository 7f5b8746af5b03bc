"""Score the features of a table and keep the best ones (fnhub catalog: feature-selection).

Every feature gets a score and a rank in `scores.csv`, not only the selected ones, so the choice
can be checked and a different cut made without running the scoring again.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.feature_selection import (
    chi2,
    f_classif,
    f_regression,
    mutual_info_classif,
    mutual_info_regression,
)

from vendor.tables import output_dir, read_table, write_atomic

METHODS = ("variance", "mutual_info", "chi2", "f_test", "model")
TASKS = ("auto", "classification", "regression")
MAX_AUTO_CLASSES = 20  # a whole-number label with more distinct values is taken as a quantity
MAX_SEED = 2**32 - 1  # numpy's RandomState accepts seeds up to this value
N_TREES = 100


def feature_selection(
    table: Path,
    label_column: str | None = "target",
    method: str = "mutual_info",
    k: int = 5,
    task: str = "auto",
    threshold: float | None = None,
    seed: int = 42,
) -> dict[str, Any]:
    """Write `selected.csv` (kept features + label) and `scores.csv` (every feature, ranked)."""
    path = Path(table)
    frame = read_table(path, require_rows=True)
    _check_parameters(method, k, task, threshold, seed)
    if label_column is None and method != "variance":
        raise ValueError(
            f"method {method!r} scores features against a label: give label_column "
            "(only method 'variance' works without one)"
        )
    if label_column is not None and label_column not in frame.columns:
        raise ValueError(
            f"label_column {label_column!r} is not a column of {path.name}; "
            f"columns: {', '.join(map(str, frame.columns))}"
        )

    features = feature_matrix(frame.drop(columns=[label_column] if label_column else []))
    if method == "variance":
        scores = features.var(ddof=0).to_numpy()
    else:
        scores = _supervised_scores(features, frame[label_column], method, task, seed)

    ranking = rank(scores)
    chosen = ranking <= k if threshold is None else _above(scores, threshold, method)
    kept = [column for column, keep in zip(features.columns, chosen, strict=True) if keep]
    selected = frame[kept + ([label_column] if label_column else [])]
    score_table = pd.DataFrame(
        {
            "feature": [str(name) for name in features.columns],
            "score": scores,
            "selected": chosen,
            "rank": ranking,
        }
    ).sort_values("rank")

    out_dir = output_dir("feature-selection-")
    selected_path, scores_path = out_dir / "selected.csv", out_dir / "scores.csv"
    write_atomic(selected_path, lambda p: selected.to_csv(p, index=False))
    write_atomic(scores_path, lambda p: score_table.to_csv(p, index=False))
    return {
        "selected": selected_path,
        "scores": scores_path,
        "features": [str(column) for column in kept],
    }


def _check_parameters(method: Any, k: Any, task: Any, threshold: Any, seed: Any) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if threshold is not None and (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not math.isfinite(threshold)
    ):
        raise ValueError(f"threshold must be a number or null, got {threshold!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer between 0 and {MAX_SEED}, got {seed!r}")


def _above(scores: np.ndarray, threshold: float, method: str) -> np.ndarray:
    """Features scoring strictly above `threshold` (as VarianceThreshold); none is an error."""
    chosen = np.nan_to_num(scores, nan=-np.inf) > threshold
    if not chosen.any():
        best = (
            "no score" if np.isnan(scores).all() else f"the highest score is {np.nanmax(scores):g}"
        )
        raise ValueError(
            f"no feature scores above threshold {threshold} with method {method!r} ({best})"
        )
    return chosen


def feature_matrix(features: pd.DataFrame) -> pd.DataFrame:
    """The feature columns as floats; text columns and gaps are refused, naming the columns."""
    if features.shape[1] == 0:
        raise ValueError("the table has no feature columns besides the label")
    text = [
        f"{name} ({features[name].dtype})"
        for name in features.columns
        if not (
            pd.api.types.is_numeric_dtype(features[name])
            or pd.api.types.is_bool_dtype(features[name])
        )
    ]
    if text:
        raise ValueError(
            f"feature columns must be numeric or boolean; not numeric: {', '.join(text)} "
            "(encode or drop them first)"
        )
    values = features.astype("float64")
    bad = ~np.isfinite(values)
    if bad.any().any():
        counts = bad.sum()
        listed = ", ".join(f"{name} ({n})" for name, n in counts[counts > 0].items())
        raise ValueError(
            f"features with missing or infinite values: {listed}; "
            "fill or drop them first (for example with clean-data)"
        )
    return values


def resolve_task(label: pd.Series, task: str) -> str:
    """`auto`: classification for a text or boolean label, or few whole-number values.

    A numeric label is taken as classes when every value is a whole number and there are at
    most MAX_AUTO_CLASSES of them (0/1, 0..9, 1.0/2.0); otherwise it is a quantity (regression).
    """
    numeric = pd.api.types.is_numeric_dtype(label) and not pd.api.types.is_bool_dtype(label)
    if task == "regression" and not numeric:
        raise ValueError(
            f"task 'regression' needs a numeric label; {label.name!r} is {label.dtype}"
        )
    if task != "auto":
        return task
    if not numeric:
        return "classification"
    values = label.astype("float64")
    few_whole = label.nunique() <= MAX_AUTO_CLASSES and bool((values % 1 == 0).all())
    return "classification" if few_whole else "regression"


def rank(scores: np.ndarray) -> np.ndarray:
    """1 for the highest score; missing scores last; ties keep the table's column order."""
    order = sorted(range(len(scores)), key=lambda i: (np.isnan(scores[i]), -scores[i], i))
    ranks = np.empty(len(scores), dtype="int64")
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks


def _supervised_scores(
    features: pd.DataFrame, label: pd.Series, method: str, task: str, seed: int
) -> np.ndarray:
    missing = int(label.isna().sum())
    if missing:
        raise ValueError(
            f"label {label.name!r} has {missing} missing values; "
            "drop those rows first (for example with clean-data)"
        )
    if label.nunique() < 2:
        raise ValueError(
            f"label {label.name!r} has a single value; there is nothing to score features against"
        )
    task = resolve_task(label, task)
    classify = task == "classification"
    target = pd.factorize(label)[0] if classify else label.astype("float64").to_numpy()
    values = features.to_numpy()
    if method == "mutual_info":
        score = mutual_info_classif if classify else mutual_info_regression
        return score(values, target, random_state=seed)
    if method == "model":
        forest = RandomForestClassifier if classify else RandomForestRegressor
        model = forest(n_estimators=N_TREES, random_state=seed).fit(values, target)
        return model.feature_importances_
    if method == "chi2":
        if not classify:
            raise ValueError(
                f"method 'chi2' scores a classification label, but {label.name!r} is taken as "
                "a regression target (set task=classification, or use f_test or mutual_info)"
            )
        negative = [str(name) for name in features.columns if (features[name] < 0).any()]
        if negative:
            raise ValueError(
                f"method 'chi2' needs non-negative features (counts, frequencies, 0/1); "
                f"negative values in: {', '.join(negative)} (use f_test or mutual_info, "
                "or scale the features to [0, 1] first)"
            )
    with warnings.catch_warnings():  # constant features: NaN scores, reported as such
        warnings.simplefilter("ignore", category=RuntimeWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        if method == "chi2":
            return chi2(values, target)[0]
        return (f_classif if classify else f_regression)(values, target)[0]
