"""Predict a whole table with a trained model, optionally checking for data drift
(fnhub catalog: batch-predict).

The table is read and predicted in chunks, so the predictions of a large file never sit in
memory at once. Models are loaded with skops, trusting only scikit-learn, numpy and scipy
types, so a model file cannot run arbitrary code the way a pickle can.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from scipy.stats import ks_2samp
from sklearn.base import is_classifier

from vendor.models import load_model
from vendor.tables import finite, is_numeric, output_dir, read_table, reader_for, write_atomic

CHUNK_ROWS = 50_000  # rows read, predicted and written at a time
PREDICTION = "prediction"
PROBA_PREFIX = "proba_"
PSI_BINS = 10  # numeric features: deciles of the reference
PSI_FLOOR = 1e-4  # stands in for an empty bin, whose log would be infinite
PSI_DRIFT = 0.25  # the usual "significant shift" level of the population stability index
MAX_CATEGORIES = 50  # text features: rarer reference values are pooled as OTHER
OTHER = "(other)"


def batch_predict(
    model: Path,
    dataset: Path,
    reference: Path | None = None,
    label_column: str = "target",
) -> dict[str, Any]:
    """Write `predictions.csv` (inputs + prediction + class probabilities) and `drift.json`."""
    estimator, meta = load_model(Path(model))
    features: list[str] = meta["features"]
    reference_frame = None
    if reference is not None:
        reference_frame = read_table(Path(reference), "dataset")
        _require(reference_frame, features, "the reference")
    classes = _proba_classes(estimator)

    out_dir = output_dir("batch-predict-")
    predictions_path = out_dir / "predictions.csv"
    current: list[pd.DataFrame] = []  # the dataset's features, kept for drift statistics only
    keep = None if reference_frame is None else current
    n_rows = write_atomic(
        predictions_path,
        lambda path: write_predictions(
            estimator, Path(dataset), features, label_column, classes, path, keep
        ),
    )
    drift: dict[str, Any] = {"computed": False}
    if reference_frame is not None:
        drift = drift_report(reference_frame, pd.concat(current, ignore_index=True), features)
    drift_path = out_dir / "drift.json"
    text = json.dumps(drift, indent=2, allow_nan=False) + "\n"
    write_atomic(drift_path, lambda path: path.write_text(text))
    return {"predictions": predictions_path, "drift": drift_path, "n_rows": n_rows}


def write_predictions(
    estimator: Any,
    dataset: Path,
    features: list[str],
    label_column: str,
    classes: list[Any] | None,
    target: Path,
    keep: list[pd.DataFrame] | None,
) -> int:
    """Append each chunk with its predictions to `target`; collect features into `keep`."""
    n_rows = 0
    for chunk in iter_chunks(dataset):
        if label_column not in features:
            chunk = chunk.drop(columns=[label_column], errors="ignore")
        _require(chunk, features, "the dataset")
        clash = [c for c in chunk.columns if c == PREDICTION or str(c).startswith(PROBA_PREFIX)]
        if clash:
            raise ValueError(
                f"the dataset already has output column(s) {', '.join(map(str, clash))}; "
                "rename or drop them"
            )
        if chunk.empty:
            continue
        predicted = estimator.predict(chunk[features])
        parts = [chunk, pd.DataFrame({PREDICTION: predicted}, index=chunk.index)]
        if classes is not None:
            names = [f"{PROBA_PREFIX}{cls}" for cls in classes]
            proba = estimator.predict_proba(chunk[features])
            parts.append(pd.DataFrame(proba, columns=names, index=chunk.index))
        pd.concat(parts, axis=1).to_csv(target, mode="a", header=n_rows == 0, index=False)
        n_rows += len(chunk)
        if keep is not None:
            keep.append(chunk[features])
    if n_rows == 0:
        raise ValueError("the dataset has no rows")
    return n_rows


def iter_chunks(path: Path) -> Iterator[pd.DataFrame]:
    """The table in chunks of CHUNK_ROWS rows (Parquet by record batch, CSV by rows)."""
    reader_for(path, "dataset")
    try:
        if path.suffix.lower() == ".csv":
            with pd.read_csv(path, chunksize=CHUNK_ROWS) as chunks:
                yield from chunks
        else:
            parquet = pq.ParquetFile(path)
            if parquet.metadata.num_rows == 0:
                yield parquet.schema_arrow.empty_table().to_pandas()
            for batch in parquet.iter_batches(batch_size=CHUNK_ROWS):
                yield batch.to_pandas()
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ValueError(f"cannot read {path.name} as {path.suffix[1:]}: {exc}") from exc


def drift_report(
    reference: pd.DataFrame, current: pd.DataFrame, features: list[str]
) -> dict[str, Any]:
    """Per feature: PSI over reference bins and, for numbers, the two-sample KS test."""
    stats: dict[str, dict[str, Any]] = {}
    for name in features:
        ref, cur = reference[name], current[name]
        numeric = is_numeric(ref) and is_numeric(cur)
        stats[name] = numeric_drift(ref, cur) if numeric else categorical_drift(ref, cur)
        stats[name]["reference_missing"] = float(ref.isna().mean()) if len(ref) else None
        stats[name]["current_missing"] = float(cur.isna().mean()) if len(cur) else None
        psi = stats[name]["psi"]
        stats[name]["drifted"] = psi is not None and psi >= PSI_DRIFT
    return {
        "computed": True,
        "n_reference": len(reference),
        "n_current": len(current),
        "psi_threshold": PSI_DRIFT,
        "drifted_features": [name for name, s in stats.items() if s["drifted"]],
        "features": stats,
    }


def numeric_drift(reference: pd.Series, current: pd.Series) -> dict[str, Any]:
    """PSI over the reference's deciles, KS statistic and p-value, and the two means."""
    ref = reference.dropna().to_numpy(dtype=float)
    cur = current.dropna().to_numpy(dtype=float)
    stats = ("psi", "ks_statistic", "ks_pvalue", "reference_mean", "current_mean")
    result: dict[str, Any] = {"kind": "numeric", **dict.fromkeys(stats)}
    if len(ref) == 0 or len(cur) == 0:
        return result
    cuts = np.unique(np.quantile(ref, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
    bins = len(cuts) + 1
    ref_counts = np.bincount(np.searchsorted(cuts, ref, side="right"), minlength=bins)
    cur_counts = np.bincount(np.searchsorted(cuts, cur, side="right"), minlength=bins)
    test = ks_2samp(ref, cur)
    result.update(
        psi=psi(ref_counts, cur_counts),
        ks_statistic=finite(test.statistic),
        ks_pvalue=finite(test.pvalue),
        reference_mean=finite(ref.mean()),
        current_mean=finite(cur.mean()),
    )
    return result


def categorical_drift(reference: pd.Series, current: pd.Series) -> dict[str, Any]:
    """PSI over the reference's most frequent values; the rest, and new values, pool together."""
    ref = reference.dropna().astype(str)
    cur = current.dropna().astype(str)
    stats = ("psi", "ks_statistic", "ks_pvalue")
    result: dict[str, Any] = {"kind": "categorical", **dict.fromkeys(stats), "new_values": 0}
    if ref.empty or cur.empty:
        return result
    kept = list(ref.value_counts().index[:MAX_CATEGORIES])
    ref_counts = ref.where(ref.isin(kept), OTHER).value_counts()
    cur_counts = cur.where(cur.isin(kept), OTHER).value_counts()
    categories = [*kept, OTHER]
    result["psi"] = psi(
        ref_counts.reindex(categories, fill_value=0).to_numpy(),
        cur_counts.reindex(categories, fill_value=0).to_numpy(),
    )
    result["new_values"] = int((~cur.isin(set(ref))).sum())
    return result


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Population stability index: sum over bins of (cur% - ref%) * ln(cur% / ref%)."""
    ref = np.maximum(reference_counts / reference_counts.sum(), PSI_FLOOR)
    cur = np.maximum(current_counts / current_counts.sum(), PSI_FLOOR)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _proba_classes(estimator: Any) -> list[Any] | None:
    """The classes named in `proba_<class>` columns, or None without predict_proba."""
    if not (is_classifier(estimator) and hasattr(estimator, "predict_proba")):
        return None
    classes = [c.item() if isinstance(c, np.generic) else c for c in estimator.classes_]
    if len({str(c) for c in classes}) != len(classes):
        raise ValueError(f"class names collide as column names: {classes}")
    return classes


def _require(frame: pd.DataFrame, features: list[str], what: str) -> None:
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{what} lacks feature column(s) the model needs: {', '.join(missing)} "
            f"(columns: {', '.join(map(str, frame.columns))})"
        )
