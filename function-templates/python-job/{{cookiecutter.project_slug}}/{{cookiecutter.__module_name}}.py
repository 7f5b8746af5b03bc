"""{{ cookiecutter.description.rstrip('.') }}.

An fnhub batch function. The runner calls `{{ cookiecutter.__module_name }}` with the
parameters as Python values and the input table as a `pathlib.Path`, and takes the returned dict
as the outputs declared in function.yaml. The same code runs under `hub run`, in a pipeline
step, in its container and in a venv: it only needs its requirements, not fnhub itself.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

METHODS = ("zscore", "minmax")


def {{ cookiecutter.__module_name }}(
    table: Path, columns: list[str] | None = None, method: str = "zscore"
) -> dict[str, Any]:
    """Scale numeric columns of a CSV table.

    Args:
        table: A CSV file with a header row.
        columns: The columns to scale (default: every numeric column).
        method: zscore (mean 0, standard deviation 1) or minmax (from 0 to 1).

    Returns:
        scaled: The table with the chosen columns scaled, other columns unchanged.
        stats: JSON with each column's center and scale, to scale new data the same way.
        n_rows: The number of rows.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} (one of: {', '.join(METHODS)})")
    table = Path(table)
    frame = pd.read_csv(table)
    if frame.empty:
        raise ValueError(f"{table.name} has no rows")
    chosen = list(frame.select_dtypes("number").columns) if columns is None else list(columns)
    missing = [c for c in chosen if c not in frame.columns]
    if missing:
        raise ValueError(
            f"not in {table.name}: {', '.join(missing)} (columns: {', '.join(frame.columns)})"
        )
    for column in chosen:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise ValueError(f"column {column!r} is not numeric ({frame[column].dtype})")

    stats = {}
    for column in chosen:
        values = frame[column].astype(float)
        if method == "zscore":
            center, scale = values.mean(), values.std(ddof=0)
        else:
            center, scale = values.min(), values.max() - values.min()
        scale = scale or 1.0  # a constant column becomes zeros rather than NaN
        frame[column] = (values - center) / scale
        stats[column] = {"center": float(center), "scale": float(scale)}

    out_dir = output_dir()
    scaled = out_dir / "scaled.csv"
    frame.to_csv(scaled, index=False)
    stats_file = out_dir / "stats.json"
    stats_file.write_text(json.dumps({"method": method, "columns": stats}, indent=2) + "\n")
    return {"scaled": scaled, "stats": stats_file, "n_rows": len(frame)}


def output_dir() -> Path:
    """Where the runner collects artifact outputs (FNHUB_OUTPUT_DIR), else a new temporary
    folder, so the function also works when called as plain Python."""
    configured = os.environ.get("FNHUB_OUTPUT_DIR")
    path = Path(configured or tempfile.mkdtemp(prefix="{{ cookiecutter.__module_name }}-"))
    path.mkdir(parents=True, exist_ok=True)
    return path
