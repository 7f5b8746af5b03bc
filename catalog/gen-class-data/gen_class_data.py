"""Synthetic classification data from scikit-learn's make_classification (fnhub catalog).

The generator is seeded, so the same inputs always give the same table: handy for tests,
benchmarks and teaching pipelines without downloading anything.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from sklearn.datasets import make_classification

from vendor.checks import check_int
from vendor.tables import output_dir, write_atomic

TARGET = "target"
MAX_CELLS = 50_000_000  # n_samples * n_features; about 400 MB of float64 before the CSV
MAX_SEED = 2**32 - 1  # numpy's RandomState accepts seeds up to this value
MAX_REDUNDANT = 2  # scikit-learn's default number of redundant (linear-combination) features
WEIGHT_TOLERANCE = 1e-6


def gen_class_data(
    n_samples: int = 500,
    n_features: int = 10,
    n_informative: int = 5,
    n_classes: int = 2,
    weights: list | None = None,
    seed: int = 42,
) -> dict[str, Any]:
    """Write `classification.csv` (columns f0..fN-1 and `target`) into the output folder."""
    check_int("n_samples", n_samples, minimum=1)
    check_int("n_features", n_features, minimum=1)
    check_int("n_informative", n_informative, minimum=1)
    check_int("n_classes", n_classes, minimum=2)
    check_int("seed", seed, minimum=0, maximum=MAX_SEED)
    if n_informative > n_features:
        raise ValueError(
            f"n_informative ({n_informative}) must not exceed n_features ({n_features})"
        )
    if n_samples < n_classes:
        raise ValueError(f"n_samples ({n_samples}) must be at least n_classes ({n_classes})")
    if n_samples * n_features > MAX_CELLS:
        raise ValueError(
            f"n_samples * n_features = {n_samples * n_features:,} is over the limit of "
            f"{MAX_CELLS:,} values; generate fewer rows or features"
        )
    class_weights = check_weights(weights, n_classes)
    clusters = clusters_per_class(n_informative, n_classes)

    features, labels = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=n_informative,
        n_redundant=min(MAX_REDUNDANT, n_features - n_informative),
        n_classes=n_classes,
        n_clusters_per_class=clusters,
        weights=class_weights,
        random_state=seed,
    )
    frame = pd.DataFrame(features, columns=[f"f{i}" for i in range(n_features)])
    frame[TARGET] = labels

    out_dir = output_dir("gen-class-data-")
    target = out_dir / "classification.csv"
    write_atomic(target, lambda path: frame.to_csv(path, index=False))
    return {"dataset": target, "n_rows": int(frame.shape[0])}


def check_weights(weights: Any, n_classes: int) -> list[float] | None:
    """Class proportions as scikit-learn takes them, refusing what it would silently misuse.

    Either one positive weight per class summing to 1, or one per class but the last (their
    sum below 1; the last class gets the rest).
    """
    if weights is None:
        return None
    if not isinstance(weights, list | tuple):
        raise ValueError(f"weights must be a list of class proportions, got {weights!r}")
    if any(isinstance(w, bool) or not isinstance(w, int | float) for w in weights):
        raise ValueError(f"weights must all be numbers, got {weights!r}")
    values = [float(w) for w in weights]
    if not all(math.isfinite(w) and w > 0 for w in values):
        raise ValueError(f"weights must all be positive, got {weights!r}")
    total = math.fsum(values)
    if len(values) == n_classes:
        if abs(total - 1.0) > WEIGHT_TOLERANCE:
            raise ValueError(f"weights must sum to 1, got {weights!r} (sum {total:g})")
        return values
    if len(values) == n_classes - 1:
        if total >= 1.0:
            raise ValueError(
                f"{len(values)} weights for {n_classes} classes leave nothing for the last "
                f"class: their sum is {total:g}, it must be below 1"
            )
        return [*values, 1.0 - total]
    raise ValueError(
        f"weights has {len(values)} values; give one per class ({n_classes}) "
        f"or one per class but the last ({n_classes - 1})"
    )


def clusters_per_class(n_informative: int, n_classes: int) -> int:
    """Two clusters per class (scikit-learn's default) when they fit, else one.

    make_classification places clusters on the vertices of a hypercube in the informative
    dimensions, so it needs n_classes * clusters <= 2 ** n_informative.
    """
    vertices = 2**n_informative
    if n_classes * 2 <= vertices:
        return 2
    if n_classes <= vertices:
        return 1
    needed = math.ceil(math.log2(n_classes))
    raise ValueError(
        f"n_classes ({n_classes}) needs n_informative >= {needed} "
        f"(2 ** n_informative must be at least n_classes), got {n_informative}"
    )
