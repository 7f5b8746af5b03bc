"""Source tables for ingest: a DataFrame, a Parquet file or folder (local or s3://) or a CSV
file, read as a stream of record batches, or split into parts for a distributed ingest."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as pads

from fnhub.core.errors import InvalidInput
from fnhub.core.featureset import FeatureSetSpec
from fnhub.features.schema import ARROW_TYPES
from fnhub.features.storage import PARQUET, open_location

BATCH_ROWS = 64 * 1024


def batches(source: Any, spec: FeatureSetSpec) -> Iterator[pa.RecordBatch]:
    """A source table as a stream of record batches: a DataFrame, a Parquet file or folder,
    or a CSV file (read with the set's types; timestamps as they are written)."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas comes with the features extra
        pd = None
    if pd is not None and isinstance(source, pd.DataFrame):
        yield from pa.Table.from_pandas(source, preserve_index=False).to_batches(BATCH_ROWS)
        return
    text = os.fspath(source)
    if text.endswith(".csv"):
        types = {c: ARROW_TYPES[t] for c, t in spec.columns().items() if t != "timestamp"}
        try:
            reader = pacsv.open_csv(text, convert_options=pacsv.ConvertOptions(
                column_types=types))
        except (OSError, pa.ArrowInvalid) as exc:
            raise InvalidInput(f"cannot read {text}: {exc}") from None
        yield from reader
        return
    try:
        # One batch read ahead: ingest is slower than reading, so more only holds more
        # decoded row groups in memory (16 by default: a third of a 1 GB file here).
        yield from parquet_source(text).to_batches(batch_size=BATCH_ROWS, batch_readahead=1,
                                                   fragment_readahead=1)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InvalidInput(f"cannot read {text} as Parquet: {exc}") from None


def parquet_source(text: str) -> pads.Dataset:
    """A Parquet file or folder, local or s3://, as a dataset."""
    try:
        if text.startswith("s3://"):
            location = open_location(text.rsplit("/", 1)[0])
            return pads.dataset(text.removeprefix("s3://"), format=PARQUET,
                                filesystem=location.fs)
        if not Path(text).exists():
            raise InvalidInput(f"source {text} does not exist")
        return pads.dataset(text, format=PARQUET)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InvalidInput(f"cannot read {text} as Parquet: {exc}") from None


def source_parts(source: Any, count: int) -> list[tuple[Any, int]]:
    """A source split for a distributed ingest, in row order: (part, its rows). A DataFrame
    in `count` slices, a Parquet dataset by file; a CSV file stays one part."""
    if hasattr(source, "iloc"):
        step = max(1, -(-len(source) // count))
        return [(source.iloc[i:i + step], len(source.iloc[i:i + step]))
                for i in range(0, len(source), step)]
    text = os.fspath(source)
    if text.endswith(".csv"):
        return [(text, 0)]
    prefix = "s3://" if text.startswith("s3://") else ""
    return [(prefix + f.path, f.count_rows()) for f in parquet_source(text).get_fragments()]
