"""What train and tune share: the estimator allow-list, the checks a training table must pass,
the preprocessing pipeline and the cross-validation folds. Needs pandas and scikit-learn.

The saved model is a scikit-learn Pipeline: a preprocessing step ("prep": median imputation and
standard scaling for numeric columns, one-hot encoding for the others, where a missing value is
a category of its own) followed by the chosen estimator ("model").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC, SVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils.multiclass import type_of_target

from .tables import is_numeric, read_table

# The only estimators train and tune build: chosen by name from this table, never imported
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
# Better starting points than scikit-learn's defaults; explicit parameters still override them.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {"LogisticRegression": {"max_iter": 1000}}
MAX_CATEGORIES = 50  # one-hot columns per text column; rarer values share one column
MISSING = "(missing)"  # the category of a missing text value
# A numeric label with more distinct values than both of these is taken for a regression target.
CONTINUOUS_MIN_DISTINCT = 20
CONTINUOUS_RATIO = 0.2


def make_estimator(name: str, seed: int, params: dict[str, Any] | None = None) -> BaseEstimator:
    """An allow-listed estimator with checked hyper-parameters; `seed` fills `random_state`
    unless `params` sets it."""
    if name not in ESTIMATORS:
        raise ValueError(f"unknown estimator {name!r}; choose one of: {', '.join(ESTIMATORS)}")
    if params is not None and not isinstance(params, dict):
        raise ValueError(f"params must be a mapping of hyper-parameters, got {params!r}")
    model = ESTIMATORS[name]()
    check_param_names(model, name, params or {})
    settings = {**DEFAULT_PARAMS.get(name, {}), **(params or {})}
    if "random_state" in model.get_params(deep=False) and "random_state" not in settings:
        settings["random_state"] = seed
    return model.set_params(**settings)


def check_param_names(model: BaseEstimator, name: str, params: dict[str, Any]) -> None:
    """Refuse hyper-parameters `model` (the estimator `name`) does not have, listing its own."""
    valid = model.get_params(deep=False)
    unknown = sorted(str(key) for key in params if key not in valid)
    if unknown:
        raise ValueError(
            f"unknown parameter(s) for {name}: {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(sorted(valid))}"
        )


def read_training_table(
    path: Path, label_column: str, task: str
) -> tuple[pd.DataFrame, pd.Series]:
    """The features and labels of the table at `path`, checked to be learnable for `task`."""
    features, labels = split_features(read_table(path, "dataset"), label_column)
    check_labels(labels, label_column, task)
    return features, labels


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
        if not is_numeric(labels):
            raise ValueError(
                f"label column {label_column!r} is not numeric ({labels.dtype}); "
                "use a classifier for class labels"
            )
        return
    distinct = labels.nunique()
    many = (
        is_numeric(labels)
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
    numeric = [c for c in features.columns if is_numeric(features[c])]
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


def make_splitter(
    task: str, labels: pd.Series, cv: int, seed: int, remedy: str = "lower cv"
) -> KFold | StratifiedKFold:
    """Shuffled folds (stratified for classes), checked to be feasible for this table.

    `remedy` ends the message when a class has fewer rows than folds.
    """
    if cv > len(labels):
        raise ValueError(f"cv={cv} folds need at least {cv} rows; the dataset has {len(labels)}")
    if task == "regression":
        return KFold(n_splits=cv, shuffle=True, random_state=seed)
    counts = labels.value_counts()
    if counts.min() < cv:
        raise ValueError(
            f"cv={cv} needs at least {cv} rows of every class; class {counts.idxmin()!r} has "
            f"{counts.min()}; {remedy}"
        )
    return StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)


def check_int(name: str, value: Any, minimum: int) -> None:
    """An integer (not a boolean) of at least `minimum`, else a ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _is_temporal(series: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series)
