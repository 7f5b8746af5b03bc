"""Which entity rows fnhub's and Feast's `get_historical_features` answer differently, and why.

    .venv/bin/python bench/features_pitdiff.py [--rows 2000000] [--entities 20000]
                                               [--entity-rows 200000]

bench/features.py's data (same generator and seed; the defaults have `--full`'s 100 feature
rows per entity at a fifth of its size, about 2 minutes here), both sides' historical op as
bench/features.py runs it (Feast's DuckDB store), then a row-by-row comparison: each
differing entity row is classified by the feature rows each side returned (found by their
values) against the entity row's time `t`: event after `t`, event at `t`, at or beyond the
ttl edge, created after `t`, a tie on event time, or a missing value.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_venv
from bench.features import Sides, Size, generate
from bench.features_ops import FEATURES

TTL = pd.Timedelta(days=2)  # the bench's feature sets' ttl
KEY = ["driver_id", "event_timestamp"]


def tags(side: str, row: pd.Series | None, t: pd.Timestamp, rows: pd.DataFrame) -> list[str]:
    """What is particular about the feature row `side` returned for an entity row at `t`."""
    if row is None:
        return [f"{side}: no value"]
    checks = {"event after t": row.event_timestamp > t, "event at t": row.event_timestamp == t,
              "event at t - ttl": row.event_timestamp == t - TTL,
              "event before t - ttl": row.event_timestamp < t - TTL,
              "created after t": row.created > t,
              "tie on event": (rows.event_timestamp == row.event_timestamp).sum() > 1}
    hits = [f"{side}: {what}" for what, hit in checks.items() if hit]
    return hits or [f"{side}: nothing particular"]


def classify(data: Path, fnhub: pd.DataFrame, feast: pd.DataFrame) -> Counter[str]:
    """Entity rows whose features differ, counted by the tags of both sides' rows."""
    fnhub = fnhub.rename(columns=lambda c: c.removeprefix("stats:"))
    both = fnhub.drop_duplicates(KEY).merge(feast.drop_duplicates(KEY), on=KEY,
                                            suffixes=("_fnhub", "_feast"), validate="1:1")
    same = pd.Series(True, index=both.index)
    for f in FEATURES:
        a, b = both[f"{f}_fnhub"], both[f"{f}_feast"]
        same &= (a == b) | (a.isna() & b.isna())
    differ = both[~same]
    feats = pd.read_parquet(data / "features.parquet", filters=[
        ("driver_id", "in", sorted(set(differ.driver_id.tolist())))])
    by_id = dict(tuple(feats.groupby("driver_id")))
    repeats = fnhub.groupby(KEY).size()  # entity rows asked more than once count each time
    counts: Counter[str] = Counter()
    for r in differ.itertuples(index=False):
        rows = by_id.get(r.driver_id, feats.iloc[:0])
        picked = {side: None if pd.isna(v) else rows[rows.f0 == v].iloc[0]
                  for side, v in (("fnhub", r.f0_fnhub), ("Feast", r.f0_feast))}
        what = [tag for side, row in picked.items()
                for tag in tags(side, row, r.event_timestamp, rows)]
        counts["; ".join(what)] += int(repeats[(r.driver_id, r.event_timestamp)])
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--entity-rows", type=int, default=200_000)
    args = parser.parse_args()
    feast_bin = bench_venv("feast", ["feast[redis,duckdb]==0.67.*"])
    with tempfile.TemporaryDirectory(prefix="fnhub-bench-pitdiff-") as tmp:
        root = Path(tmp)
        data = root / "data"
        data.mkdir()
        generate(data, Size(args.rows, args.entities, args.entity_rows, 0))
        sides = Sides(feast_bin, data, root, seconds=30 * 60, max_rss_mib=12 * 1024)
        results = {}
        for side in ("fnhub", "feast"):
            repo = sides.repo(side, "sqlite")
            sides.run(side, "apply", repo, "sqlite")
            sides.run(side, "historical", repo, "sqlite", out=root / f"{side}.parquet")
            results[side] = pd.read_parquet(root / f"{side}.parquet")
        counts = classify(data, results["fnhub"], results["feast"])
    print(f"{args.rows:,} feature rows over {args.entities:,} entities, {args.entity_rows:,} "
          f"entity rows; rows with values: fnhub {results['fnhub']['stats:f0'].notna().sum():,},"
          f" Feast {results['feast']['f0'].notna().sum():,}; "
          f"differing: {sum(counts.values()):,}")
    for what, n in counts.most_common():
        print(f"{n:9,}  {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
