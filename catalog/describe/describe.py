"""Summary statistics and histograms of a table (fnhub catalog: describe).

Plots are drawn with matplotlib's object API on an Agg canvas, never through pyplot, so the
function leaves no global backend or figure state behind when it runs in-process.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    ".csv": pd.read_csv,
    ".parquet": pd.read_parquet,
    ".pq": pd.read_parquet,
}
SUMMARY_COLUMNS = [
    "column", "dtype", "count", "missing", "missing_pct", "mean", "std",
    "min", "25%", "50%", "75%", "max", "unique", "top",
]  # fmt: skip
MAX_GROUPS = 10  # more label values than this are grouped, or the legend becomes unreadable
QUANTILE_GROUPS = 4
SNIFF_BYTES = 64 * 1024


def describe(table: Path, label_column: str | None = None, bins: int = 20) -> dict[str, Any]:
    """Write `summary.csv` and `plots/` (one histogram per numeric column) for `table`."""
    frame = read_table(Path(table))
    if label_column is not None and label_column not in frame.columns:
        raise ValueError(
            f"label column {label_column!r} not found in {Path(table).name} "
            f"(columns: {', '.join(map(str, frame.columns))})"
        )
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")

    out_dir = Path(os.environ.get("FNHUB_OUTPUT_DIR") or tempfile.mkdtemp(prefix="describe-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    summary_path = out_dir / "summary.csv"
    summary = summarize(frame)
    _write_atomic(summary_path, lambda path: summary.to_csv(path, index=False))
    plots_dir = _write_plots(frame, out_dir / "plots", label_column, bins)
    return {
        "summary": summary_path,
        "plots": plots_dir,
        "n_rows": int(frame.shape[0]),
        "n_columns": int(frame.shape[1]),
    }


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file by its suffix, turning every failure into a clear ValueError.

    Empty files and tables without rows are refused too: every statistic of them would be
    empty, which reads like a bug further down rather than a problem with the input.
    """
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise ValueError(
            f"cannot read {path.name}: unsupported suffix {path.suffix or '(none)'!r}; "
            f"use one of: {', '.join(READERS)}"
        )
    if not path.is_file():
        raise ValueError(f"table file not found: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"table {path.name} is empty (0 bytes)")
    kind = "CSV" if reader is pd.read_csv else "Parquet"
    if kind == "CSV" and _looks_binary(path):
        raise ValueError(
            f"could not parse {path.name} as CSV: it holds binary data (NUL bytes), not text"
        )
    try:
        frame = reader(path)
    except pd.errors.EmptyDataError:
        raise ValueError(f"table {path.name} is empty (no columns)") from None
    except Exception as exc:  # pandas/pyarrow raise many unrelated types for a bad file
        raise ValueError(f"could not parse {path.name} as {kind}: {exc}") from exc
    if not len(frame.columns):
        raise ValueError(f"table {path.name} is empty (no columns)")
    if not len(frame):
        raise ValueError(f"table {path.name} is empty (no rows)")
    return frame


def _looks_binary(path: Path) -> bool:
    """Text CSV never holds NUL bytes; images, archives and other binaries nearly always do."""
    with path.open("rb") as handle:
        return b"\x00" in handle.read(SNIFF_BYTES)


def is_numeric(series: pd.Series) -> bool:
    """Numbers, not booleans: pandas treats booleans as categories too."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per column; numeric statistics are left empty for non-numeric columns.

    `top` is the most frequent value (the smallest one on ties), for every column.
    """
    rows = []
    for name in frame.columns:
        series = frame[name]
        missing = int(series.isna().sum())
        modes = series.mode(dropna=True)
        row: dict[str, Any] = {
            "column": name,
            "dtype": str(series.dtype),
            "count": int(series.count()),
            "missing": missing,
            "missing_pct": 100.0 * missing / len(series) if len(series) else 0.0,
            "unique": int(series.nunique(dropna=True)),
            "top": modes.iloc[0] if len(modes) else None,
        }
        if is_numeric(series):
            values = series.astype("float64")
            quartiles = values.quantile([0.25, 0.5, 0.75])
            row |= {
                "mean": values.mean(),
                "std": values.std(),
                "min": values.min(),
                "25%": quartiles[0.25],
                "50%": quartiles[0.5],
                "75%": quartiles[0.75],
                "max": values.max(),
            }
        rows.append(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def label_groups(labels: pd.Series) -> pd.Series:
    """Labels to split histograms by: the values themselves when few, else coarser groups.

    A numeric label with many values (a regression target) is cut into quartiles; any other
    label keeps its most frequent values and pools the rest as "(other)".
    """
    if labels.nunique(dropna=True) <= MAX_GROUPS:
        return labels
    if is_numeric(labels):
        return pd.qcut(labels, QUANTILE_GROUPS, duplicates="drop")  # ordered intervals
    text = labels.astype("string")  # also frees categoricals from their fixed categories
    keep = text.value_counts().index[: MAX_GROUPS - 1]
    return text.where(text.isin(keep) | text.isna(), "(other)")


def _write_plots(frame: pd.DataFrame, target: Path, label_column: str | None, bins: int) -> Path:
    """Draw all histograms into a fresh folder, then swap it in place of any older `plots/`."""
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=".plots-", suffix=".tmp"))
    try:
        groups = label_groups(frame[label_column]) if label_column is not None else None
        used: set[str] = set()
        for name in frame.columns:
            if not is_numeric(frame[name]):
                continue
            split = groups if name != label_column else None
            figure = _histogram(frame[name], split, label_column, bins)
            figure.savefig(work / _file_name(str(name), used), format="png", dpi=100)
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return target


def _histogram(
    series: pd.Series, groups: pd.Series | None, label_column: str | None, bins: int
) -> Figure:
    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    values = series.astype("float64")
    finite = values[np.isfinite(values)]
    axes.set_title(str(series.name))
    axes.set_xlabel(str(series.name))
    axes.set_ylabel("count")
    if finite.empty:
        axes.text(0.5, 0.5, "no finite values", ha="center", va="center",
                  transform=axes.transAxes)  # fmt: skip
        return figure
    edges = np.histogram_bin_edges(finite, bins=bins)  # shared, so the series compare
    if groups is None:
        axes.hist(finite, bins=edges)
        return figure
    for label, part in finite.groupby(groups.loc[finite.index], sort=True, observed=True):
        axes.hist(part, bins=edges, alpha=0.5, histtype="stepfilled", label=str(label))
    axes.legend(title=label_column, fontsize="small")
    return figure


def _file_name(column: str, used: set[str]) -> str:
    """A safe, unique `<column>.png` for any column name (spaces, slashes, unicode...)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", column).strip("._")[:100] or "column"
    name, n = f"{stem}.png", 1
    while name in used:
        n += 1
        name = f"{stem}-{n}.png"
    used.add(name)
    return name


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
