"""Split a table into train, test and validation sets (fnhub catalog: split-dataset).

Stratified by default, so every set keeps the class proportions of the whole table; the sizes
are exact row counts computed from the fractions of the whole table.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from vendor.tables import output_dir, read_table, write_atomic

MAX_SEED = 2**32 - 1  # numpy's RandomState accepts seeds up to this value
ROUNDING_SLACK = 1e-9  # 0.07 * 100 is 7.000000000000001: not 8 rows


def split_dataset(
    table: Path,
    test_size: float = 0.2,
    validation_size: float = 0.0,
    stratify: bool = True,
    label_column: str = "target",
    seed: int = 42,
) -> dict[str, Any]:
    """Write `train.csv`, `test.csv` and `validation.csv` (headers only when not asked for)."""
    path = Path(table)
    frame = read_table(path, require_rows=True)
    _check_fraction("test_size", test_size, allow_zero=False)
    _check_fraction("validation_size", validation_size, allow_zero=True)
    if test_size + validation_size >= 1:
        raise ValueError(
            f"test_size + validation_size must be below 1 to leave rows for training, "
            f"got {test_size} + {validation_size}"
        )
    if not isinstance(stratify, bool):
        raise ValueError(f"stratify must be true or false, got {stratify!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer between 0 and {MAX_SEED}, got {seed!r}")

    n_rows = len(frame)
    n_test = _rows(test_size, n_rows)
    n_validation = _rows(validation_size, n_rows)
    if n_rows - n_test - n_validation < 1:
        raise ValueError(
            f"{path.name} has {n_rows} rows: {n_test} for test and {n_validation} for "
            "validation leave none for training"
        )
    if stratify:
        _check_strata(frame, label_column, path.name, per_class=3 if n_validation else 2)

    rest, test = _split(frame, n_test, stratify, label_column, seed, "test")
    if n_validation:
        train, validation = _split(rest, n_validation, stratify, label_column, seed, "validation")
    else:
        train, validation = rest, frame.iloc[0:0]

    out_dir = output_dir("split-dataset-")
    outputs: dict[str, Any] = {}
    for name, part in [("train", train), ("test", test), ("validation", validation)]:
        target = out_dir / f"{name}.csv"
        write_atomic(target, lambda p, part=part: part.to_csv(p, index=False))
        outputs[name] = target
    outputs["sizes"] = {"train": len(train), "test": len(test), "validation": len(validation)}
    return outputs


def _check_fraction(name: str, value: Any, allow_zero: bool) -> None:
    number = not isinstance(value, bool) and isinstance(value, int | float)
    if not number or not (0 <= value < 1) or (value == 0 and not allow_zero):
        low = "0 <=" if allow_zero else "0 <"
        raise ValueError(f"{name} must be a fraction of the rows ({low} {name} < 1), got {value!r}")


def _rows(fraction: float, n_rows: int) -> int:
    """scikit-learn's rounding (up), without float noise pushing an exact count one higher."""
    return math.ceil(fraction * n_rows - ROUNDING_SLACK) if fraction else 0


def _check_strata(frame: pd.DataFrame, label_column: str, file_name: str, per_class: int) -> None:
    """Refuse up front what stratification cannot do, naming the column or class at fault."""
    if label_column not in frame.columns:
        raise ValueError(
            f"cannot stratify: label_column {label_column!r} is not a column of {file_name}; "
            f"columns: {', '.join(map(str, frame.columns))} (or set stratify=false)"
        )
    labels = frame[label_column]
    missing = int(labels.isna().sum())
    if missing:
        raise ValueError(
            f"cannot stratify by {label_column!r}: {missing} rows have no label "
            "(drop them first, e.g. with clean-data, or set stratify=false)"
        )
    counts = labels.value_counts()
    if counts.min() < per_class:
        sets = "train, test and validation" if per_class == 3 else "train and test"
        raise ValueError(
            f"cannot stratify by {label_column!r}: class {counts.idxmin()!r} has only "
            f"{counts.min()} row(s), and every class needs at least {per_class} to appear in "
            f"{sets} ({len(counts)} classes in all; a continuous label cannot be stratified). "
            "Set stratify=false to split at random"
        )


def _split(
    frame: pd.DataFrame, n_out: int, stratify: bool, label_column: str, seed: int, part: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Take `n_out` rows out of `frame`; scikit-learn's stratification limits are reworded."""
    if not stratify:
        kept, taken = train_test_split(frame, test_size=n_out, random_state=seed)
        return kept, taken
    try:
        kept, taken = train_test_split(
            frame, test_size=n_out, stratify=frame[label_column], random_state=seed
        )
    except ValueError as exc:
        raise ValueError(
            f"cannot stratify the {part} split by {label_column!r}: {exc} "
            f"(use a larger {part}_size, or set stratify=false)"
        ) from None
    return kept, taken
