"""The catalog's model directory: written by train and tune, read by evaluate and batch-predict.

A model directory holds `model.skops` (a fitted scikit-learn estimator or Pipeline, saved with
skops, never pickle) and `model.json` (task, feature columns, label column, classes, params).
Loading trusts only scikit-learn, numpy and scipy types, so a model file cannot run arbitrary
code the way a pickle can. Needs numpy, scikit-learn and skops.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import skops.io as sio
from sklearn.base import is_classifier
from sklearn.pipeline import Pipeline

from .tables import replace_dir

MODEL_FILE = "model.skops"
META_FILE = "model.json"
TASKS = ("classification", "regression")
SAFE_TYPE_PREFIXES = ("sklearn.", "numpy.", "scipy.")


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
        meta["classes"] = [json_value(c) for c in model.classes_]
    meta["params"] = {k: json_value(v) for k, v in model.get_params(deep=False).items()}
    meta["sklearn_version"] = sklearn.__version__

    def write(work: Path) -> None:
        sio.dump(pipeline, work / MODEL_FILE)
        (work / META_FILE).write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n")

    replace_dir(target, write)
    return target


def load_model(folder: Path) -> tuple[Any, dict[str, Any]]:
    """Load a model directory, refusing any type outside scikit-learn, numpy and scipy."""
    model_file, meta_file = folder / MODEL_FILE, folder / META_FILE
    if not (model_file.is_file() and meta_file.is_file()):
        raise ValueError(
            f"{folder} is not a model directory: it needs {MODEL_FILE} and {META_FILE}"
        )
    try:
        meta = json.loads(meta_file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{meta_file} is not valid JSON: {exc}") from None
    features = meta.get("features") if isinstance(meta, dict) else None
    if not isinstance(features, list) or not features or meta.get("task") not in TASKS:
        raise ValueError(
            f"{meta_file} must hold a 'task' ({' or '.join(TASKS)}) and a non-empty 'features' list"
        )
    try:
        untrusted = sio.get_untrusted_types(file=model_file)
    except Exception as exc:  # a corrupt or foreign file fails inside zipfile/json
        raise ValueError(f"{model_file} is not a skops file: {exc}") from None
    refused = sorted(t for t in untrusted if not t.startswith(SAFE_TYPE_PREFIXES))
    if refused:
        raise ValueError(
            f"refusing to load {model_file}: it contains types outside scikit-learn, numpy and "
            f"scipy: {', '.join(refused)}"
        )
    estimator = sio.load(model_file, trusted=untrusted)
    if not hasattr(estimator, "predict"):
        raise ValueError(f"{model_file} holds a {type(estimator).__name__}, not a fitted model")
    if (meta["task"] == "classification") != is_classifier(estimator):
        raise ValueError(
            f"{meta_file} says task {meta['task']!r} but {model_file} holds a "
            f"{type(estimator).__name__} that does not do it"
        )
    return estimator, meta


def json_value(value: Any) -> Any:
    """A JSON-safe copy of a label or hyper-parameter value (objects become their repr)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return repr(value)
