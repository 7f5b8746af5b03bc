"""fnhub's half of bench/features.py, through `fnhub.FeatureStore` (see bench/features_ops.py
for the ops)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from features_ops import FEATURES, REFS, Side, main

import fnhub

REDIS_DB = 15
FEATURESET = """apiVersion: fnhub/v1
kind: FeatureSet
metadata: {name: stats, namespace: bench, version: 1.0.0, description: the bench's features}
spec:
  entities: [{name: driver_id, type: int}]
  timestamp: event_timestamp
  created: created
  ttl: 2d
  features: [%s]
  online: true
"""


def _open(args: argparse.Namespace) -> fnhub.FeatureStore:
    online = (str(args.repo / "online.db") if args.online == "sqlite"
              else f"redis://127.0.0.1:6379/{REDIS_DB}")
    return fnhub.FeatureStore(offline=str(args.repo / "offline"), online=online)


def apply(args: argparse.Namespace) -> dict[str, float]:
    """Apply the set from its folder and ingest the table into the offline store."""
    store = _open(args)
    folder = args.repo / "stats"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "featureset.yaml").write_text(
        FEATURESET % ", ".join(f"{{name: {f}, type: float}}" for f in FEATURES))
    store.apply(str(folder))
    started = time.perf_counter()
    store.ingest("stats", source=str(args.data / "features.parquet"))
    return {"ingest_seconds": time.perf_counter() - started}


if __name__ == "__main__":
    sys.exit(main(Side(
        apply=apply,
        open=_open,
        materialize=lambda store, meta: store.materialize(end=meta["end"]),
        lookup=lambda store, rows: store.get_online_features(REFS, rows),
        historical=lambda store, df: store.get_historical_features(df, REFS),
        column="stats:f0")))
