"""pandas DataFrames in and out of a function call, for notebooks.

A DataFrame given for a `dataset` input is written to Parquet in the run folder and the function
gets that file's path, as it would from `hub run`; with `as_frames=True` dataset outputs are read
back as DataFrames. pandas is never imported here unless the caller already did (a frame can
only exist once pandas is loaded), so plain runs pay nothing for this.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from fnhub.core.errors import InvalidInput, MissingRequirements
from fnhub.core.manifest import Manifest

# the suffixes `read_frame` reads, and pandas' reader for each
_READERS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def is_frame(value: Any) -> bool:
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)


def _require_pyarrow(why: str) -> None:
    if importlib.util.find_spec("pyarrow") is None:
        raise MissingRequirements(f"{why} needs pyarrow, which is not installed",
                                  hint="pip install pyarrow")


def frame_inputs(manifest: Manifest, inputs: dict[str, Any]) -> dict[str, Any]:
    """The inputs given as DataFrames; only a declared `dataset` input may take one."""
    frames = {name: value for name, value in inputs.items() if is_frame(value)}
    for name in frames:
        port = manifest.input(name)
        if port is not None and port.type != "dataset":
            raise InvalidInput(f"input {name!r} is a {port.type}: only a dataset input "
                               "takes a pandas DataFrame")
    if frames:
        _require_pyarrow("passing a DataFrame (written to Parquet)")
    return frames


def write_frames(frames: dict[str, Any], folder: Path) -> dict[str, Path]:
    """Each frame as `folder/NAME.parquet` (written under a temporary name, then renamed)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, frame in frames.items():
        path = folder / f"{name}.parquet"
        partial = folder / f".{name}.parquet.partial"
        try:
            frame.to_parquet(partial)
        except (ValueError, TypeError) as exc:  # e.g. mixed-type object columns
            partial.unlink(missing_ok=True)
            raise InvalidInput(f"input {name!r}: the DataFrame cannot be written to Parquet: "
                               f"{exc}") from None
        os.replace(partial, path)
        paths[name] = path
    return paths


def read_frame(name: str, path: Path) -> Any:
    """A dataset output as a DataFrame: a .csv/.tsv/.parquet file or a folder of Parquet files."""
    try:
        import pandas
    except ImportError:
        raise MissingRequirements("reading outputs as DataFrames needs pandas",
                                  hint="pip install pandas pyarrow") from None
    reader = "parquet" if path.is_dir() else _READERS.get(path.suffix.lower())
    if reader is None:
        raise InvalidInput(
            f"output {name!r} ({path.name}) is not a table pandas can read here "
            f"(one of: {', '.join(_READERS)}, or a folder of Parquet files)",
            hint="call without as_frames=True to get its path")
    if reader == "csv":
        return pandas.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
    _require_pyarrow(f"reading output {name!r} as a DataFrame")
    return pandas.read_parquet(path)


def outputs_as_frames(manifest: Manifest, outputs: dict[str, Any]) -> dict[str, Any]:
    """`outputs` with every dataset output read as a DataFrame; the others unchanged."""
    datasets = {p.name for p in manifest.spec.outputs if p.type == "dataset"}
    return {name: read_frame(name, Path(value)) if name in datasets and value is not None
            else value for name, value in outputs.items()}
