"""Write one of scikit-learn's bundled toy datasets as a table (fnhub catalog: load-dataset).

The loaders read files shipped inside scikit-learn, so nothing is downloaded at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from sklearn import datasets

from vendor.tables import output_dir, write_atomic

LOADERS: dict[str, Callable[..., Any]] = {
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
    "breast_cancer": datasets.load_breast_cancer,
    "diabetes": datasets.load_diabetes,
    "digits": datasets.load_digits,
}
FORMATS = ("csv", "parquet")
TARGET = "target"


def load_dataset(name: str = "iris", format: str = "csv") -> dict[str, Any]:
    """Write dataset `name` as `<name>.<format>` (features + `target`) into the output folder."""
    if name not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(LOADERS)}")
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; choose one of: {', '.join(FORMATS)}")

    frame: pd.DataFrame = LOADERS[name](as_frame=True).frame
    out_dir = output_dir("load-dataset-")
    target = out_dir / f"{name}.{format}"
    if format == "csv":
        write_atomic(target, lambda path: frame.to_csv(path, index=False))
    else:
        write_atomic(target, lambda path: frame.to_parquet(path, index=False))
    return {
        "dataset": target,
        "n_rows": int(frame.shape[0]),
        "n_features": int(frame.shape[1] - 1),
    }
