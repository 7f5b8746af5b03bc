"""Feast's half of bench/features.py; runs in Feast's own venv (.bench-venvs/feast), with
Feast's local provider configured as its docs show. See bench/features_ops.py for the ops."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from features_ops import FEATURES, REFS, Side, main

REDIS_DB = 14


def apply(args: argparse.Namespace) -> dict[str, float]:
    """Write the feature repo and `feast apply` it, as Feast's users do."""
    repo, data = args.repo, args.data
    repo.mkdir(parents=True, exist_ok=True)
    online = (f"  type: sqlite\n  path: {repo / 'online.db'}\n" if args.online == "sqlite" else
              f"  type: redis\n  connection_string: \"127.0.0.1:6379,db={REDIS_DB}\"\n")
    (repo / "feature_store.yaml").write_text(
        f"project: bench\nregistry: {repo / 'registry.db'}\nprovider: local\n"
        f"online_store:\n{online}offline_store:\n  type: {args.offline}\n"
        "entity_key_serialization_version: 3\n")
    fields = ", ".join(f'Field(name="{f}", dtype=Float64)' for f in FEATURES)
    (repo / "definitions.py").write_text(
        "from datetime import timedelta\n"
        "from feast import Entity, FeatureView, Field, FileSource\n"
        "from feast.types import Float64\n"
        'driver = Entity(name="driver", join_keys=["driver_id"])\n'
        f'source = FileSource(path="{data / "features.parquet"}", '
        'timestamp_field="event_timestamp", created_timestamp_column="created")\n'
        'stats = FeatureView(name="stats", entities=[driver], ttl=timedelta(days=2), '
        f"online=True, schema=[{fields}], source=source)\n")
    subprocess.run([str(Path(sys.executable).with_name("feast")), "-c", str(repo), "apply"],
                   check=True, capture_output=True)
    return {}


def _open(args: argparse.Namespace) -> Any:
    from feast import FeatureStore

    return FeatureStore(repo_path=str(args.repo))


if __name__ == "__main__":
    sys.exit(main(Side(
        apply=apply,
        open=_open,
        materialize=lambda store, meta: store.materialize(
            pd.Timestamp(meta["start"]).to_pydatetime(), pd.Timestamp(meta["end"]).to_pydatetime()),
        lookup=lambda store, rows: store.get_online_features(
            features=REFS, entity_rows=rows).to_dict(),
        # asked fnhub's question: by default Feast also serves a row written after the
        # entity row's time (bench/README.md, "rows with values")
        historical=lambda store, df: store.get_historical_features(
            entity_df=df, features=REFS, filter_by_created_timestamp=True).to_df(),
        column="f0")))
