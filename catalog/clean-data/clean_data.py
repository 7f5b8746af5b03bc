"""Impute, de-duplicate and tidy a table, reporting every change (fnhub catalog: clean-data).

Each step is recorded in `report.json`, so a pipeline run shows exactly what cleaning did to
the data instead of leaving it to be guessed from the output.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from vendor.tables import is_numeric, output_dir, read_table, write_atomic

STATISTICS = ("mean", "median", "most_frequent")
NUMERIC_ONLY = ("mean", "median")  # on other columns these fall back to most_frequent
CHOICES = "mean, median, most_frequent, constant:<value>, drop"


class Strategy(NamedTuple):
    """A parsed strategy: a statistic, `constant` with its text value, or `drop` (the rows)."""

    kind: str
    value: str | None = None

    @property
    def label(self) -> str:
        return f"constant:{self.value}" if self.kind == "constant" else self.kind


def clean_data(
    table: Path,
    strategies: dict | None = None,
    default_strategy: str = "median",
    drop_constant: bool = True,
    drop_duplicates: bool = True,
    coerce_types: bool = True,
    label_column: str | None = "target",
) -> dict[str, Any]:
    """Write `cleaned.csv` and `report.json` (every change made) for `table`."""
    path = Path(table)
    frame = read_table(path, require_rows=True)
    flags = {
        "drop_constant": drop_constant,
        "drop_duplicates": drop_duplicates,
        "coerce_types": coerce_types,
    }
    for name, flag in flags.items():
        if not isinstance(flag, bool):
            raise ValueError(f"{name} must be true or false, got {flag!r}")
    if label_column is not None and label_column not in frame.columns:
        raise ValueError(
            f"label_column {label_column!r} is not a column of {path.name}; columns: "
            f"{_names(frame.columns)} (use label_column=null for a table without labels)"
        )
    default = parse_strategy(default_strategy, "default_strategy")
    plan = _column_strategies(frame, strategies, default, label_column)

    report: dict[str, Any] = {
        "input": {"file": path.name, "rows": int(frame.shape[0]), "columns": int(frame.shape[1])},
        "label_column": label_column,
        "default_strategy": default.label,
        "coerced_columns": [],
        "rows_dropped_missing_label": 0,
        "duplicate_rows_removed": 0,
        "rows_dropped_missing": [],
        "imputed": [],
        "dropped_columns": [],
    }
    if coerce_types:
        frame = _coerce(frame, label_column, report)
    if label_column is not None:
        missing_label = frame[label_column].isna()
        report["rows_dropped_missing_label"] = int(missing_label.sum())
        if missing_label.any():
            frame = frame[~missing_label].copy()
            _check_rows_left(frame, f"dropping rows with a missing {label_column!r}")
            label = frame[label_column]
            frame[label_column] = _restore_integers(label)
            if frame[label_column].dtype != label.dtype:
                report["coerced_columns"].append(
                    {"column": label_column, "from": str(label.dtype), "to": "int64"}
                )
    if drop_duplicates:
        duplicated = frame.duplicated()
        report["duplicate_rows_removed"] = int(duplicated.sum())
        frame = frame[~duplicated]
    for column, strategy in plan.items():
        if strategy.kind == "drop":
            missing = frame[column].isna()
            if missing.any():
                report["rows_dropped_missing"].append(
                    {"column": str(column), "rows": int(missing.sum())}
                )
                frame = frame[~missing]
                _check_rows_left(frame, f"dropping rows with a missing {column!r}")
    frame = _impute(frame.copy(), plan, report)
    if drop_constant:
        frame = _drop_constant(frame, label_column, report)
    frame = frame.reset_index(drop=True)
    report["output"] = {"rows": int(frame.shape[0]), "columns": int(frame.shape[1])}

    out_dir = output_dir("clean-data-")
    cleaned_path, report_path = out_dir / "cleaned.csv", out_dir / "report.json"
    write_atomic(cleaned_path, lambda p: frame.to_csv(p, index=False))
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    write_atomic(report_path, lambda p: p.write_text(text, encoding="utf-8"))
    return {"cleaned": cleaned_path, "report": report_path, "n_rows": int(frame.shape[0])}


def parse_strategy(text: Any, where: str) -> Strategy:
    """`mean`, `median`, `most_frequent`, `drop` or `constant:<value>` (value not empty)."""
    if not isinstance(text, str):
        raise ValueError(f"{where}: a strategy must be a string ({CHOICES}), got {text!r}")
    kind, sep, value = text.partition(":")
    if kind == "constant" and sep:
        if not value:
            raise ValueError(f"{where}: 'constant:' needs a value, as in constant:0")
        return Strategy("constant", value)
    if sep or kind not in (*STATISTICS, "drop"):
        raise ValueError(f"{where}: unknown strategy {text!r} (choices: {CHOICES})")
    return Strategy(kind)


def _column_strategies(
    frame: pd.DataFrame, strategies: Any, default: Strategy, label_column: str | None
) -> dict[Any, Strategy]:
    """The strategy of every column but the label: its own from `strategies`, else the default."""
    if strategies is None:
        strategies = {}
    if not isinstance(strategies, dict):
        raise ValueError(f"strategies must be a mapping of column to strategy, got {strategies!r}")
    for column in strategies:
        if column not in frame.columns:
            raise ValueError(
                f"strategies: unknown column {column!r} (columns: {_names(frame.columns)})"
            )
        if column == label_column:
            raise ValueError(
                f"strategies: {column!r} is the label column, which is never imputed; "
                "rows with a missing label are dropped"
            )
    return {
        column: parse_strategy(strategies[column], f"strategies[{column!r}]")
        if column in strategies
        else default
        for column in frame.columns
        if column != label_column
    }


def _coerce(frame: pd.DataFrame, label_column: str | None, report: dict[str, Any]) -> pd.DataFrame:
    """Text columns whose every present value reads as a number become numeric columns."""
    for column in frame.columns:
        series = frame[column]
        if column == label_column or is_numeric(series) or pd.api.types.is_bool_dtype(series):
            continue
        present = series.dropna()
        if present.empty:
            continue
        numbers = pd.to_numeric(present.astype(str).str.strip(), errors="coerce")
        if numbers.isna().any():
            continue
        numbers = numbers.astype("float64")
        whole = bool(np.isfinite(numbers).all() and (numbers % 1 == 0).all())
        if whole and len(present) == len(series):
            numbers = numbers.astype("int64")
        frame[column] = numbers.reindex(series.index)
        report["coerced_columns"].append(
            {"column": str(column), "from": str(series.dtype), "to": str(frame[column].dtype)}
        )
    return frame


def _impute(frame: pd.DataFrame, plan: dict[Any, Strategy], report: dict[str, Any]) -> pd.DataFrame:
    """Fill each column's gaps; a column with no value at all gives no statistic to fill with."""
    for column, strategy in plan.items():
        series = frame[column]
        missing = int(series.isna().sum())
        if missing == 0:  # also every "drop" column: its gaps went with their rows
            continue
        if missing == len(series) and strategy.kind != "constant":
            frame = frame.drop(columns=column)
            reason = f"all values missing (no {strategy.label} to fill with)"
            report["dropped_columns"].append({"column": str(column), "reason": reason})
            continue
        applied = strategy.kind
        if applied in NUMERIC_ONLY and not is_numeric(series):
            applied = "most_frequent"
        series = _fillable(series)
        value = _fill_value(series, applied, strategy, column)
        frame[column] = series.fillna(value)
        report["imputed"].append(
            {
                "column": str(column),
                "strategy": strategy.label if applied == "constant" else applied,
                "requested": strategy.label,
                "count": missing,
                "value": _plain(value),
            }
        )
    return frame


def _fillable(series: pd.Series) -> pd.Series:
    """A dtype any fill value fits: nullable integers (from Parquet) may need a fraction, and
    categories or nullable booleans may be given a constant outside their values."""
    if is_numeric(series) and pd.api.types.is_extension_array_dtype(series):
        return series.astype("float64")
    if isinstance(series.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(series):
        return series.astype(object)
    return series


def _fill_value(series: pd.Series, applied: str, strategy: Strategy, column: Any) -> Any:
    if applied == "mean":
        return float(series.mean())
    if applied == "median":
        return float(series.median())
    if applied == "most_frequent":
        return series.mode(dropna=True).iloc[0]  # the smallest value on ties
    assert strategy.value is not None  # parse_strategy guarantees a constant has its value
    if not is_numeric(series):
        return strategy.value
    try:
        return float(strategy.value)
    except ValueError:
        raise ValueError(
            f"constant value {strategy.value!r} for column {column!r} is not a number, "
            "but the column is numeric"
        ) from None


def _drop_constant(
    frame: pd.DataFrame, label_column: str | None, report: dict[str, Any]
) -> pd.DataFrame:
    """Columns with one value in every row carry no information (skipped for a one-row table)."""
    if len(frame) < 2:
        return frame
    constant = [
        column
        for column in frame.columns
        if column != label_column and frame[column].nunique(dropna=False) <= 1
    ]
    for column in constant:
        value = _plain(frame[column].iloc[0])
        report["dropped_columns"].append(
            {"column": str(column), "reason": f"constant: every row holds {value!r}"}
        )
    return frame.drop(columns=constant)


def _restore_integers(label: pd.Series) -> pd.Series:
    """Integer classes that were read as floats only because some were missing."""
    whole = pd.api.types.is_float_dtype(label) and bool(
        np.isfinite(label).all() and (label % 1 == 0).all()
    )
    return label.astype("int64") if whole else label


def _check_rows_left(frame: pd.DataFrame, step: str) -> None:
    if frame.empty:
        raise ValueError(f"no rows left after {step}")


def _plain(value: Any) -> Any:
    """A JSON-ready value: numpy scalars unwrapped, NaN as null, anything exotic as text."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _names(columns: pd.Index) -> str:
    return ", ".join(map(str, columns))
