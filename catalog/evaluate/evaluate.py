"""Score a trained model on held-out data and draw its diagnostic plots (fnhub catalog: evaluate).

Models are loaded with skops, trusting only scikit-learn, numpy and scipy types, so a model file
cannot run arbitrary code the way a pickle can. Plots are drawn with matplotlib's object API on
an Agg canvas, never through pyplot, so no global backend or figure state is left behind.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import (
    accuracy_score,
    auc,
    average_precision_score,
    confusion_matrix,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_curve,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from vendor.models import load_model
from vendor.tables import finite, is_numeric, output_dir, read_table, replace_dir, write_atomic

MAX_ANNOTATED_CLASSES = 20  # beyond this the confusion matrix cells are too small for numbers
MAX_CURVES = 10  # one-vs-rest curves drawn per plot; more would be unreadable


def evaluate(model: Path, dataset: Path, label_column: str = "target") -> dict[str, Any]:
    """Score `model` on `dataset`: write `metrics.json` and `plots/`, return the main score."""
    estimator, meta = load_model(Path(model))
    table = read_table(Path(dataset), "dataset")
    features, labels = select_columns(table, meta["features"], label_column)
    predictions = estimator.predict(features)
    if meta["task"] == "classification":
        labels = align_labels(labels, estimator.classes_)
        metrics, draw = classification_report(estimator, features, labels, predictions)
        score = metrics["accuracy"]
    else:
        if not is_numeric(labels):
            raise ValueError(
                f"label column {label_column!r} is not numeric ({labels.dtype}), "
                "but the model is a regressor"
            )
        metrics, draw = regression_report(labels, predictions)
        score = metrics["r2"]
    metrics = {
        "task": meta["task"],
        "estimator": meta.get("estimator"),
        "label_column": label_column,
        "n_rows": len(features),
        **metrics,
    }

    out_dir = output_dir("evaluate-")
    metrics_path = out_dir / "metrics.json"
    text = json.dumps(metrics, indent=2, allow_nan=False) + "\n"
    write_atomic(metrics_path, lambda path: path.write_text(text))
    plots_dir = _write_plots(out_dir / "plots", draw)
    return {"metrics": metrics_path, "plots": plots_dir, "score": score}


def select_columns(
    frame: pd.DataFrame, features: list[str], label_column: str
) -> tuple[pd.DataFrame, pd.Series]:
    """The model's feature columns, in its order, and the labels; name whatever is missing."""
    missing = [c for c in [*features, label_column] if c not in frame.columns]
    if missing:
        raise ValueError(
            f"the dataset lacks column(s) the evaluation needs: {', '.join(missing)} "
            f"(columns: {', '.join(map(str, frame.columns))})"
        )
    if frame.empty:
        raise ValueError("the dataset has no rows")
    labels = frame[label_column]
    if labels.isna().any():
        raise ValueError(
            f"label column {label_column!r} has {int(labels.isna().sum())} missing value(s)"
        )
    return frame[features], labels


def align_labels(labels: pd.Series, classes: np.ndarray) -> pd.Series:
    """Text class names read back as numbers ("1" -> 1) are compared as text again."""
    if classes.dtype.kind in "OUS" and not pd.api.types.is_string_dtype(labels):
        return labels.astype(str)
    return labels


def classification_report(
    estimator: Any, features: pd.DataFrame, labels: pd.Series, predictions: np.ndarray
) -> tuple[dict[str, Any], dict[str, Callable[[Figure], None]]]:
    """Accuracy, macro precision/recall/f1, ROC AUC and log loss, with the plots that go along."""
    classes = list(estimator.classes_)
    seen = set(labels)
    unknown = sorted(seen - set(classes), key=str)
    matrix_labels = classes + unknown
    proba = estimator.predict_proba(features) if hasattr(estimator, "predict_proba") else None
    notes: dict[str, str] = {}
    metrics: dict[str, Any] = {
        "accuracy": float(accuracy_score(labels, predictions)),
        "precision_macro": float(
            precision_score(labels, predictions, average="macro", zero_division=0)
        ),
        "recall_macro": float(recall_score(labels, predictions, average="macro", zero_division=0)),
        "f1_macro": float(f1_score(labels, predictions, average="macro", zero_division=0)),
    }

    # Per class, the score a ROC/PR curve ranks by: probabilities, or decision values (binary).
    scores: dict[Any, np.ndarray] = {}
    if unknown:
        reason = f"labels the model never saw: {', '.join(map(str, unknown))}"
        notes["roc_auc"] = notes["log_loss"] = reason
    elif len(classes) == 2:
        if proba is not None:
            scores[classes[1]] = proba[:, 1]
        elif hasattr(estimator, "decision_function"):
            scores[classes[1]] = np.asarray(estimator.decision_function(features))
        if len(seen) < 2:
            notes["roc_auc"] = "the dataset holds a single class"
        elif not scores:
            notes["roc_auc"] = "the model gives no probabilities or decision values"
        else:
            metrics["roc_auc"] = float(roc_auc_score(labels == classes[1], scores[classes[1]]))
    elif proba is None:
        notes["roc_auc"] = "the model gives no probabilities"
    else:
        scores = {c: proba[:, i] for i, c in enumerate(classes) if c in seen}
        if seen != set(classes):
            notes["roc_auc"] = "some classes are absent from the dataset"
        else:
            metrics["roc_auc"] = float(
                roc_auc_score(labels, proba, multi_class="ovr", average="macro", labels=classes)
            )
    if proba is None:
        notes.setdefault("log_loss", "the model gives no probabilities")
    elif "log_loss" not in notes:
        metrics["log_loss"] = finite(log_loss(labels, proba, labels=classes))
    metrics.setdefault("roc_auc", None)
    metrics.setdefault("log_loss", None)
    matrix = confusion_matrix(labels, predictions, labels=matrix_labels)
    metrics["confusion_matrix"] = {
        "labels": [_json_value(c) for c in matrix_labels],
        "matrix": matrix.tolist(),
    }
    metrics["notes"] = notes

    draw = {
        "confusion_matrix.png": lambda fig: _draw_confusion(fig, matrix, matrix_labels),
        "roc_curve.png": lambda fig: _draw_curves(fig, "roc", labels, scores, notes.get("roc_auc")),
        "pr_curve.png": lambda fig: _draw_curves(fig, "pr", labels, scores, notes.get("roc_auc")),
    }
    return metrics, draw


def regression_report(
    labels: pd.Series, predictions: np.ndarray
) -> tuple[dict[str, Any], dict[str, Callable[[Figure], None]]]:
    """r2, rmse and mae, with predicted-vs-actual and residual plots."""
    actual = labels.to_numpy(dtype=float)
    predicted = np.asarray(predictions, dtype=float)
    metrics = {
        "r2": finite(r2_score(actual, predicted)) if len(actual) > 1 else None,
        "rmse": float(math.sqrt(mean_squared_error(actual, predicted))),
        "mae": float(mean_absolute_error(actual, predicted)),
    }
    draw = {
        "predicted_vs_actual.png": lambda fig: _draw_predicted(fig, actual, predicted),
        "residuals.png": lambda fig: _draw_residuals(fig, actual, predicted),
    }
    return metrics, draw


def _draw_confusion(figure: Figure, matrix: np.ndarray, labels: list[Any]) -> None:
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes)
    ticks = range(len(labels))
    axes.set_xticks(ticks, [str(label) for label in labels], rotation=45, ha="right")
    axes.set_yticks(ticks, [str(label) for label in labels])
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    axes.set_title("Confusion matrix")
    if len(labels) <= MAX_ANNOTATED_CLASSES:
        threshold = matrix.max() / 2 if matrix.size else 0
        for (row, col), count in np.ndenumerate(matrix):
            color = "white" if count > threshold else "black"
            axes.text(col, row, str(count), ha="center", va="center", color=color)


def _draw_curves(
    figure: Figure,
    kind: str,
    labels: pd.Series,
    scores: dict[Any, np.ndarray],
    problem: str | None,
) -> None:
    """One-vs-rest ROC or precision-recall curves, one per class that has a score."""
    axes = figure.add_subplot()
    title = "ROC curve" if kind == "roc" else "Precision-recall curve"
    axes.set_title(title)
    drawable = {c: s for c, s in scores.items() if 0 < (labels == c).sum() < len(labels)}
    if not drawable:
        reason = problem or "the dataset holds a single class"
        message = f"{title} not available:\n{reason}"
        axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
        return
    for cls, score in list(drawable.items())[:MAX_CURVES]:
        truth = (labels == cls).to_numpy()
        if kind == "roc":
            fpr, tpr, _ = roc_curve(truth, score)
            axes.plot(fpr, tpr, label=f"{cls} (AUC {auc(fpr, tpr):.3f})")
        else:
            precision, recall, _ = precision_recall_curve(truth, score)
            ap = average_precision_score(truth, score)
            axes.plot(recall, precision, label=f"{cls} (AP {ap:.3f})")
    if kind == "roc":
        axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
        axes.set_xlabel("false positive rate")
        axes.set_ylabel("true positive rate")
    else:
        axes.set_xlabel("recall")
        axes.set_ylabel("precision")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.legend(title="class", fontsize="small", loc="lower right" if kind == "roc" else "best")


def _draw_predicted(figure: Figure, actual: np.ndarray, predicted: np.ndarray) -> None:
    axes = figure.add_subplot()
    axes.scatter(actual, predicted, s=10, alpha=0.6)
    low = float(min(actual.min(), predicted.min()))
    high = float(max(actual.max(), predicted.max()))
    axes.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1)
    axes.set_xlabel("actual")
    axes.set_ylabel("predicted")
    axes.set_title("Predicted vs actual")


def _draw_residuals(figure: Figure, actual: np.ndarray, predicted: np.ndarray) -> None:
    axes = figure.add_subplot()
    axes.scatter(predicted, actual - predicted, s=10, alpha=0.6)
    axes.axhline(0, linestyle="--", color="grey", linewidth=1)
    axes.set_xlabel("predicted")
    axes.set_ylabel("residual (actual - predicted)")
    axes.set_title("Residuals")


def _write_plots(target: Path, draw: dict[str, Callable[[Figure], None]]) -> Path:
    """Draw every plot into a fresh folder, then swap it in place of any older `plots/`."""

    def draw_all(work: Path) -> None:
        for name, paint in draw.items():
            figure = Figure(figsize=(6.4, 4.8), layout="constrained")
            FigureCanvasAgg(figure)
            paint(figure)
            figure.savefig(work / name, format="png", dpi=100)

    replace_dir(target, draw_all)
    return target


def _json_value(value: Any) -> Any:
    """A class label as a plain JSON value."""
    if isinstance(value, np.generic):
        value = value.item()
    return value if value is None or isinstance(value, (str, bool, int, float)) else str(value)
