"""Point-in-time training data from the feature store (fnhub catalog).

A training pipeline's bridge from features to a model: a feature-set step ingests, this
function joins the features as they were known at each row's event_timestamp (the store's
point-in-time rules, design §10: no future value, ttl, created), and `train` takes the table.
It reads the store through fnhub's own `FeatureStore`, so it needs fnhub (a requirement of
this function, unlike the rest of the catalog).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from fnhub.core.errors import FnhubError
from fnhub.features.store import FeatureStore

from vendor.tables import output_dir, read_table, write_atomic

TIME = "event_timestamp"


def _names(value: Any, what: str, *, required: bool) -> list[str]:
    if value is None and not required:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value) \
            or (required and not value):
        raise ValueError(f"{what} must be a {'non-empty ' if required else ''}list of names, "
                         f"got {value!r}")
    return value


def _entities(path: Path) -> pd.DataFrame:
    frame = read_table(Path(path), "entities", require_rows=True)
    if TIME not in frame.columns:
        raise ValueError(f"entities lacks the column {TIME}")
    if not pd.api.types.is_datetime64_any_dtype(frame[TIME]):  # CSV text
        try:
            frame[TIME] = pd.to_datetime(frame[TIME], format="ISO8601")
        except (ValueError, TypeError) as exc:
            raise ValueError(f"entities column {TIME} is not ISO-8601 time: {exc}") from None
    return frame


def get_historical_features(entities: Path, features: list, offline: str | None = None,
                            snapshot: str | None = None,
                            drop_columns: list | None = None) -> dict[str, Any]:
    """Write `training.parquet`: `entities` with one column per `SET:FEATURE`, point in time."""
    wanted = _names(features, "features", required=True)
    dropped = _names(drop_columns, "drop_columns", required=False)
    frame = _entities(entities)
    try:
        with FeatureStore(offline=offline) as store:
            table = store.get_historical_features(frame, wanted)
    except FnhubError as exc:
        raise ValueError(exc.message) from None
    missing = [c for c in dropped if c not in table.columns]
    if missing:
        raise ValueError(f"drop_columns names column(s) the table lacks: {', '.join(missing)}")
    table = table.drop(columns=dropped)

    target = output_dir("get-historical-features-") / "training.parquet"
    write_atomic(target, lambda path: table.to_parquet(path, index=False))
    return {"dataset": target, "n_rows": len(table)}
