"""The feature store side by side with Feast 0.67: online lookups (HTTP and in-process),
point-in-time training data, and materialization, on the same generated data.

    .venv/bin/python bench/features.py [--small | --full] [--rounds 3] [--only historical]
                                       [--json OUT]

Sizes: `--small` 100k feature rows over 10k entities, 20k entity rows (a quick check);
the default (`make bench-features`, about 20 minutes here) 2M rows over 100k entities and
200k entity rows; `--full` the issue's 10M rows over 100k entities and 1M entity rows (about
11 minutes here with `--rounds 1`; Feast's file store stops at the memory limit). 10 float
features, ttl 2 days, a `created` column. Each measurement runs under `--limit-minutes` and
`--limit-gib`; one that does not finish becomes a row saying so.

Feast runs in its own venv (.bench-venvs/feast, made on first use) with its local provider:
the DuckDB and the file (Dask) offline stores, SQLite and Redis online stores, `feast serve`.
fnhub runs through `fnhub.FeatureStore` and `hub features serve`. Every measurement runs in a
fresh process (bench/features_feast.py, bench/features_fnhub.py) so peak RSS is its own, the
two sides alternate, and the table shows medians and fnhub/Feast ratios with the goals of the
issue; the exit code is 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import evict_libraries

# before this process maps them: a library a process has mapped stays in the page cache as it is
evict_libraries(Path(sys.prefix))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from bench.common import (  # noqa: E402
    Incomplete,
    Row,
    alternate,
    bench_venv,
    format_row,
    median,
    process,
    report,
    run_bounded,
    wrk,
)
from bench.features_ops import FEATURES, REFS  # noqa: E402
from tests.helpers import HUB_BIN, free_port  # noqa: E402

HERE = Path(__file__).resolve().parent
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
DAYS = 30
BATCH = 1_000_000


@dataclass(frozen=True)
class Size:
    rows: int
    entities: int
    entity_rows: int
    lookups: int


SIZES = {"small": Size(100_000, 10_000, 20_000, 300),
         "default": Size(2_000_000, 100_000, 200_000, 1000),
         "full": Size(10_000_000, 100_000, 1_000_000, 1000)}


def generate(data: Path, size: Size, seed: int = 7) -> None:
    """features.parquet and entities.parquet, written in batches (bounded memory)."""
    rng = np.random.default_rng(seed)
    span = DAYS * 86_400 * 1_000_000  # microseconds
    t0 = int(T0.timestamp() * 1_000_000)
    schema = pa.schema([("driver_id", pa.int64()),
                        ("event_timestamp", pa.timestamp("us", tz="UTC")),
                        ("created", pa.timestamp("us", tz="UTC")),
                        *[(f, pa.float64()) for f in FEATURES]])
    with pq.ParquetWriter(data / "features.parquet", schema) as writer:
        for start in range(0, size.rows, BATCH):
            n = min(BATCH, size.rows - start)
            event = t0 + rng.integers(0, span, n)
            columns = [rng.integers(1, size.entities + 1, n), event,
                       event + rng.integers(0, 3_600_000_000, n),
                       *[rng.random(n) for _ in FEATURES]]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
    # Entity rows: 5% of them ask for entities that have no features (null results).
    ids = rng.integers(1, int(size.entities * 1.05) + 1, size.entity_rows)
    times = t0 + 86_400_000_000 + rng.integers(0, span, size.entity_rows)
    pq.write_table(pa.table({"driver_id": pa.array(ids, pa.int64()),
                             "event_timestamp": pa.array(times, pa.timestamp("us", tz="UTC"))}),
                   data / "entities.parquet")
    end = T0 + timedelta(days=DAYS, seconds=1)
    (data / "meta.json").write_text(json.dumps({
        "start": (T0 - timedelta(days=1)).isoformat(), "end": end.isoformat(),
        "rows": size.rows,
        "entity_ids": [int(i) for i in rng.permutation(size.entities)[:10_000] + 1]}))


class Sides:
    """Runs one op of one side in a fresh process and returns its JSON line."""

    def __init__(self, feast_bin: Path, data: Path, root: Path, *, seconds: float,
                 max_rss_mib: float) -> None:
        self.python = {"feast": str(feast_bin / "python"), "fnhub": sys.executable}
        self.feast_bin, self.data, self.root = feast_bin, data, root
        self.seconds, self.max_rss_mib = seconds, max_rss_mib
        self.count = 0

    def repo(self, side: str, online: str, offline: str = "duckdb") -> Path:
        self.count += 1
        return self.root / f"{side}-{online}-{offline}-{self.count}"

    def run(self, side: str, op: str, repo: Path, online: str, offline: str = "duckdb",
            **extra: int) -> dict[str, float]:
        args = [self.python[side], str(HERE / f"features_{side}.py"), op, "--repo", str(repo),
                "--data", str(self.data), "--online", online, "--offline", offline,
                *[f"--{k}={v}" for k, v in extra.items()]]
        what = f"{side} {op} ({online}, {offline})"
        try:
            stdout = run_bounded(args, seconds=self.seconds, max_rss_mib=self.max_rss_mib)
        except Incomplete as e:
            log(f"{what}: {e.reason} after {e.seconds:.0f} s, {e.peak_rss_mib:,.0f} MiB")
            raise
        result: dict[str, float] = json.loads(stdout.strip().splitlines()[-1])
        log(f"{what}: {json.dumps(result)}")
        return result


def log(message: str) -> None:
    """Progress on stderr, so a long run shows where it is (and what it had measured)."""
    print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {message}",
          file=sys.stderr, flush=True)


def flush_redis(db: int) -> None:
    import redis

    redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--small", action="store_true")
    group.add_argument("--full", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--json", type=Path, dest="json_out")
    parser.add_argument("--limit-minutes", type=float, default=30,
                        help="stop one measurement (one side, one op) after this long")
    parser.add_argument("--limit-gib", type=float, default=12,
                        help="stop one measurement when its processes hold this much memory")
    parser.add_argument("--only", choices=["historical"],
                        help="run only this part (historical: minutes instead of 20 at the "
                             "default size)")
    args = parser.parse_args()
    size = SIZES["small" if args.small else "full" if args.full else "default"]
    feast_bin = bench_venv("feast", ["feast[redis,duckdb]==0.67.*"])
    evict_libraries(feast_bin.parent)  # peak RSS as in a settled venv (fnhub's: at the top)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="fnhub-bench-features-") as tmp:
        root = Path(tmp)
        data = root / "data"
        data.mkdir()
        generate(data, size)
        log(f"generated {size.rows:,} feature rows, {size.entity_rows:,} entity rows")
        meta = json.loads((data / "meta.json").read_text())
        sides = Sides(feast_bin, data, root, seconds=args.limit_minutes * 60,
                      max_rss_mib=args.limit_gib * 1024)
        for online in () if args.only else ("sqlite", "redis"):
            done = len(rows)
            try:
                online_rows(rows, sides, size, online, meta, args)
            except Incomplete as e:
                rows.append(unfinished(f"{online} online store", e))
            for row in rows[done:]:
                log(format_row(row))
        done = len(rows)
        try:
            rows += historical_rows(sides, size, args.rounds)
        except Incomplete as e:
            rows.append(unfinished("historical", e))
        for row in rows[done:]:
            log(format_row(row))
    return report(f"feature store vs Feast 0.67 ({size.rows:,} rows)", rows, args.json_out)


def online_rows(rows: list[Row], sides: Sides, size: Size, online: str, meta: dict,
                args: argparse.Namespace) -> None:
    """Materialize into `online`, then in-process and HTTP lookups from it; appends each row
    to `rows` as it is measured, so a later step that does not finish keeps the earlier."""
    repos: dict[str, Path] = {}

    def materialize(side: str, online: str = online, repos: dict = repos) -> dict:
        """A fresh store for `side`: apply (fnhub also ingests), then materialize."""
        if online == "redis":
            flush_redis(14 if side == "feast" else 15)
        repos[side] = sides.repo(side, online)
        sides.run(side, "apply", repos[side], online)
        return sides.run(side, "materialize", repos[side], online)

    runs = alternate(args.rounds, {side: partial(materialize, side)
                                   for side in ("feast", "fnhub")})
    ours = median([r["rows_per_s"] for r in runs["fnhub"]])
    theirs = median([r["rows_per_s"] for r in runs["feast"]])
    rss = median([r["peak_rss_mib"] for r in runs["fnhub"]])
    rows += [Row(f"materialize {size.rows:,} rows, {online}", ours, theirs, "rows/s",
                 ">= 3x", ours >= 3 * theirs),
             Row(f"materialize peak RSS, {online}", rss,
                 median([r["peak_rss_mib"] for r in runs["feast"]]), "MiB",
                 "< 1024 MiB", rss < 1024)]
    for batch in (1, 100):
        runs = alternate(args.rounds, {
            side: partial(sides.run, side, "online", repos[side], online,
                          lookups=size.lookups, batch=batch)
            for side in ("feast", "fnhub")})
        ours = median([r["p50_ms"] for r in runs["fnhub"]])
        theirs = median([r["p50_ms"] for r in runs["feast"]])
        rows.append(Row(f"in-process lookup p50, {batch} entities, {online}", ours,
                        theirs, "ms", "<= 0.5x" if batch == 100 else "(informative)",
                        ours <= 0.5 * theirs if batch == 100 else True))
    rows += http_rows(sides, repos, online, meta, args)


def unfinished(what: str, e: Incomplete) -> Row:
    """The row for a step that did not finish (which side and op: the log line before)."""
    return Row(f"{what}: did not finish", float("nan"), None,
               f"{e.reason} after {e.seconds:.0f} s at {e.peak_rss_mib:,.0f} MiB", "-", False)


def http_rows(sides: Sides, repos: dict[str, Path], online: str, meta: dict,
              args: argparse.Namespace) -> list[Row]:
    """Both feature servers up at once; wrk alternates between them."""
    ids = meta["entity_ids"]
    feast_port, fnhub_port = free_port(), free_port()
    feast_url, fnhub_url = f"http://127.0.0.1:{feast_port}", f"http://127.0.0.1:{fnhub_port}"
    env_fnhub = {"FNHUB_FEATURES_OFFLINE": str(repos["fnhub"] / "offline"),
                 "FNHUB_FEATURES_ONLINE": (str(repos["fnhub"] / "online.db") if online == "sqlite"
                                           else "redis://127.0.0.1:6379/15")}
    # Feast at its best settings: two workers like ours, no access log, no worker recycling
    # (its default recycling made clients see errors under load).
    with process([str(sides.feast_bin / "feast"), "-c", str(repos["feast"]), "serve", "-h",
                  "127.0.0.1", "-p", str(feast_port), "--workers", "2", "--no-access-log",
                  "--max-requests", "1000000000"], feast_url + "/health",
                 sides.root / f"feast-serve-{online}.log"), \
         process([HUB_BIN, "features", "serve", "--port", str(fnhub_port), "--workers", "2"],
                 fnhub_url + "/healthz", sides.root / f"fnhub-serve-{online}.log",
                 env={**os.environ, **env_fnhub}):
        out = []
        for batch in (1, 100):
            bodies = [json.dumps({"features": REFS, "entities": {
                "driver_id": [ids[(i * batch + j) % len(ids)] for j in range(batch)]}})
                for i in range(200)]
            for clients in (1, 16):
                load = partial(wrk, bodies=bodies, connections=clients, seconds=args.seconds)
                runs = alternate(args.rounds, {
                    "feast": partial(load, feast_url, ["/get-online-features"] * len(bodies)),
                    "fnhub": partial(load, fnhub_url, ["/features/v1/online"] * len(bodies))})
                errors = sum(r.errors for r in runs["fnhub"])
                if clients == 1:
                    metric, pick = ("p99", lambda r: r.p99_ms) if batch == 1 else (
                        "p50", lambda r: r.p50_ms)
                    ours = median([pick(r) for r in runs["fnhub"]])
                    theirs = median([pick(r) for r in runs["feast"]])
                    out.append(Row(f"HTTP {metric}, {batch} entities, 1 client, {online}", ours,
                                   theirs, "ms", "<= 0.5x", ours <= 0.5 * theirs and not errors))
                else:
                    ours = median([r.rps for r in runs["fnhub"]])
                    theirs = max(r.rps for r in runs["feast"])
                    out.append(Row(f"HTTP req/s, {batch} entities, 16 clients, {online}", ours,
                                   theirs, "req/s; peer = Feast's best", ">= 2x, no errors",
                                   ours >= 2 * theirs and not errors))
    return out


def historical_rows(sides: Sides, size: Size, rounds: int) -> list[Row]:
    repos = {"fnhub": sides.repo("fnhub", "sqlite"), "duckdb": sides.repo("feast", "sqlite"),
             "file": sides.repo("feast", "sqlite", "file")}
    sides.run("fnhub", "apply", repos["fnhub"], "sqlite")
    sides.run("feast", "apply", repos["duckdb"], "sqlite", "duckdb")
    sides.run("feast", "apply", repos["file"], "sqlite", "file")
    def feast(store: str) -> dict[str, float]:
        """Feast's run, or what it reached when it did not finish (Feast's file store may
        not at the full size): its time then is a lower bound, and it returned no rows."""
        try:
            return sides.run("feast", "historical", repos[store], "sqlite", store)
        except Incomplete as e:
            return {"seconds": e.seconds, "peak_rss_mib": e.peak_rss_mib, "rows": 0,
                    "unfinished": e.reason}

    runs = alternate(rounds, {
        "fnhub": partial(sides.run, "fnhub", "historical", repos["fnhub"], "sqlite"),
        "duckdb": partial(feast, "duckdb"), "file": partial(feast, "file")})
    ours = median([r["seconds"] for r in runs["fnhub"]])
    complete = all(r["rows"] == size.entity_rows for r in runs["fnhub"])
    rss = median([r["peak_rss_mib"] for r in runs["fnhub"]])
    out = []
    for store, factor in (("duckdb", 2), ("file", 5)):
        theirs = median([r["seconds"] for r in runs[store]])
        stopped = [r["unfinished"] for r in runs[store] if "unfinished" in r]
        # the same question on both sides (Feast with filter_by_created_timestamp), so the
        # rows with values should match
        note = (f"s; Feast did not finish ({stopped[0]}): its time is a lower bound"
                if stopped else f"s; rows with values: fnhub {runs['fnhub'][0]['matched']:,.0f}, "
                f"Feast {runs[store][0]['matched']:,.0f} of {runs[store][0]['rows']:,.0f}")
        out.append(Row(f"historical {size.entity_rows:,} rows vs Feast {store} (s)", ours,
                       theirs, note, f"<= 1/{factor}x, all rows",
                       ours * factor <= theirs and complete))
    feast_rss = min(median([r["peak_rss_mib"] for r in runs[s]]) for s in ("duckdb", "file"))
    out.append(Row("historical peak RSS", rss, feast_rss, "MiB; peer = Feast's smaller",
                   "<= 0.5x", rss <= 0.5 * feast_rss))
    return out


if __name__ == "__main__":
    sys.exit(main())
