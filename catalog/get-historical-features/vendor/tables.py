"""Reading input tables and writing outputs the way every catalog function does.

Inputs: CSV or Parquet chosen by suffix, every failure turned into one clear ValueError.
Outputs: into FNHUB_OUTPUT_DIR, each file or folder written aside and swapped in, so a reader
never sees half an output. Needs pandas only (pyarrow when a Parquet file is read).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pandas as pd

T = TypeVar("T")
READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    ".csv": pd.read_csv,
    ".parquet": pd.read_parquet,
    ".pq": pd.read_parquet,
}
SNIFF_BYTES = 64 * 1024


def reader_for(path: Path, what: str = "table") -> Callable[[Path], pd.DataFrame]:
    """The reader of `path`'s suffix, once the file is known to exist (`what` names it)."""
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise ValueError(
            f"cannot read {path.name}: unsupported suffix {path.suffix or '(none)'!r}; "
            f"use one of: {', '.join(READERS)}"
        )
    if not path.is_file():
        raise ValueError(f"{what} file not found: {path}")
    return reader


def read_table(path: Path, what: str = "table", *, require_rows: bool = False) -> pd.DataFrame:
    """Read a CSV or Parquet file by its suffix, turning every failure into a clear ValueError.

    With `require_rows`, a table without rows is refused here; otherwise the caller says why
    it needs rows, in its own words.
    """
    reader = reader_for(path, what)
    try:
        frame = reader(path)
    except Exception as exc:  # pandas/pyarrow raise many unrelated types for a bad file
        raise ValueError(f"cannot read {path.name} as {path.suffix[1:]}: {exc}") from exc
    if require_rows and frame.empty:
        raise ValueError(f"{what} {path.name} has no rows")
    return frame


def read_table_strictly(path: Path) -> pd.DataFrame:
    """`read_table` for functions that report on a table's content (describe, drift-detect).

    Empty files, binary files named .csv and tables without columns or rows are refused with
    their own message: every statistic of them would be empty, which reads like a bug further
    down rather than a problem with the input.
    """
    reader = reader_for(path, "table")
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
    """Numbers, not booleans: a boolean column is treated like a category."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def finite(value: float) -> float | None:
    """JSON has no NaN: an undefined number becomes null."""
    number = float(value)
    return number if math.isfinite(number) else None


def output_dir(prefix: str) -> Path:
    """Where the runner wants outputs (FNHUB_OUTPUT_DIR), else a new temporary folder."""
    out = Path(os.environ.get("FNHUB_OUTPUT_DIR") or tempfile.mkdtemp(prefix=prefix))
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_atomic(target: Path, write: Callable[[Path], T]) -> T:
    """Write through a temp file in the same folder, so readers never see half a file."""
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        result = write(tmp)
        os.replace(tmp, target)
        return result
    finally:
        tmp.unlink(missing_ok=True)


def replace_dir(target: Path, fill: Callable[[Path], T]) -> T:
    """Fill a fresh folder beside `target`, then swap it in place of any older `target`."""
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-", suffix=".tmp"))
    try:
        result = fill(work)
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
        return result
    finally:
        if work.exists():
            shutil.rmtree(work)
