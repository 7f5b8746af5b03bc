"""Helpers the catalog's tests share (their fixtures are in `catalog/conftest.py`).

A plain module, not the conftest, because the test files import these by name and pytest does
not mean conftest files to be imported. The functions' own code never uses it (the contract test
keeps fnhub out of it); their tests do, so they run from this repository, not from an unpacked
package alone.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import skops.io as sio
from sklearn.base import BaseEstimator, is_classifier

from fnhub.core.manifest import load_manifest
from fnhub.runtime import encode_outputs, load_callable

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SAFE_PREFIXES = ("sklearn.", "numpy.", "scipy.")


def load_module(folder: Path) -> ModuleType:
    """The module of the folder's entrypoint, imported the way the runner imports it, so that
    tests reach its helpers and constants as well as the function."""
    entrypoint = load_callable(folder, load_manifest(folder).spec.entrypoint)
    return sys.modules[entrypoint.__module__]


def assert_outputs_match_manifest(folder: Path, result: dict[str, Any]) -> None:
    """A call returns exactly the declared outputs, each of its declared type: the contract test
    checks the signature against the manifest, but only a call shows what comes back."""
    outputs = load_manifest(folder).spec.outputs
    assert set(result) == {port.name for port in outputs}
    encode_outputs(result, [{"name": port.name, "type": port.type} for port in outputs])


def run_examples(folder: Path, function: Callable[..., Any]) -> Iterator[dict[str, Any]]:
    """Call `function` with each example of the folder's manifest, artifact inputs as paths the
    way the runner passes them, and yield each checked result before the next call (examples
    may write to the same output files)."""
    manifest = load_manifest(folder)
    artifacts = {port.name for port in manifest.spec.inputs if port.is_artifact}
    for example in manifest.spec.examples:
        inputs = {
            name: Path(value) if name in artifacts and value is not None else value
            for name, value in example.inputs.items()
        }
        result = function(**inputs)
        assert_outputs_match_manifest(folder, result)
        yield result


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """Parquet for a `.parquet` path (it keeps dtypes a CSV reader would reparse), else CSV."""
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def save_model(estimator: BaseEstimator, folder: Path, features: list[str]) -> Path:
    """A model directory in the catalog format, written the way any other producer could."""
    folder.mkdir(parents=True)
    sio.dump(estimator, folder / "model.skops")
    meta: dict[str, Any] = {
        "estimator": type(estimator).__name__,
        "task": "classification" if is_classifier(estimator) else "regression",
        "features": features,
        "label_column": "target",
        "params": {},
    }
    if is_classifier(estimator):
        meta["classes"] = estimator.classes_.tolist()
    (folder / "model.json").write_text(json.dumps(meta))
    return folder


def fit_and_save(estimator: BaseEstimator, data: pd.DataFrame | Path, folder: Path) -> Path:
    """Fit on every column but `target` of a table (or a CSV file) and save as `save_model`."""
    frame = data if isinstance(data, pd.DataFrame) else pd.read_csv(data)
    features = [c for c in frame.columns if c != "target"]
    estimator.fit(frame[features], frame["target"])
    return save_model(estimator, folder, features)


def load_model(model_dir: Path) -> tuple[Any, dict[str, Any]]:
    """Load the way the conventions prescribe: only sklearn/numpy/scipy types trusted."""
    untrusted = sio.get_untrusted_types(file=model_dir / "model.skops")
    assert all(name.startswith(SAFE_PREFIXES) for name in untrusted), untrusted
    meta = json.loads((model_dir / "model.json").read_text())
    return sio.load(model_dir / "model.skops", trusted=untrusted), meta


def pngs(folder: Path) -> dict[str, bytes]:
    """The files of a plots folder by name, to compare their names and bytes."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
