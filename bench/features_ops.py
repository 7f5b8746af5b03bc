"""The operations bench/features.py measures, shared by both sides' scripts (plain Python,
pandas and the standard library only: Feast's side runs in Feast's venv, without fnhub).

Each side supplies a `Side` (how to apply, materialize, look up and retrieve); `main` runs one
operation in this fresh process and prints one JSON line of measurements with the peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

FEATURES = [f"f{i}" for i in range(10)]
REFS = [f"stats:{f}" for f in FEATURES]


@dataclass
class Side:
    apply: Callable[[argparse.Namespace], dict[str, float]]
    open: Callable[[argparse.Namespace], Any]  # the side's store object
    materialize: Callable[[Any, dict[str, Any]], None]
    lookup: Callable[[Any, list[dict[str, int]]], object]
    historical: Callable[[Any, pd.DataFrame], pd.DataFrame]
    column: str  # the result column of feature f0


def _timed_lookups(side: Side, store: Any, ids: list[int], n: int, batch: int) -> list[float]:
    times = []
    for i in range(n):
        rows = [{"driver_id": ids[(i * batch + j) % len(ids)]} for j in range(batch)]
        started = time.perf_counter()
        side.lookup(store, rows)
        times.append((time.perf_counter() - started) * 1000)
    return times


def peak_rss_mib() -> float:
    """This process's own peak RSS: VmHWM. Linux's ru_maxrss keeps the high-water mark of the
    memory a process had before its exec, i.e. the parent's when spawned from Python (the
    orchestrator's ~435 MiB after generating the data), so every smaller peak read as that."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(side: Side) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("op", choices=["apply", "materialize", "online", "historical"])
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--online", default="sqlite")
    parser.add_argument("--offline", default="duckdb")
    parser.add_argument("--lookups", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    meta = json.loads((args.data / "meta.json").read_text())
    out: dict[str, float] = {}
    if args.op == "apply":
        out.update(side.apply(args))
    else:
        store = side.open(args)
        if args.op == "materialize":
            started = time.perf_counter()
            side.materialize(store, meta)
            out["seconds"] = time.perf_counter() - started
            out["rows_per_s"] = meta["rows"] / out["seconds"]
        elif args.op == "online":
            side.lookup(store, [{"driver_id": meta["entity_ids"][0]}])  # connect, warm up
            times = _timed_lookups(side, store, meta["entity_ids"], args.lookups, args.batch)
            out["p50_ms"] = statistics.median(times)
            out["p99_ms"] = statistics.quantiles(times, n=100)[98]
        else:
            entity_df = pd.read_parquet(args.data / "entities.parquet")
            started = time.perf_counter()
            result = side.historical(store, entity_df)
            out["seconds"] = time.perf_counter() - started
            out["rows"] = len(result)
            out["matched"] = int(result[side.column].notna().sum())
    out["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(out))
    return 0
