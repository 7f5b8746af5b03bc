"""Search latency on a large hub: 100k functions with 1 client, 10k functions with 16.

    .venv/bin/python bench/search.py [--large 100000] [--small 10000] [--requests 400]
        [--json OUT]          # FNHUB_BENCH_PG=postgresql+psycopg://... runs on PostgreSQL

Each hub is filled straight through the models (tests/web/population.py: real rows, real
search-index entries, real signed envelopes), then served by a real `hub serve` process. The
queries rotate over words, two-word phrases, a category filter and every sort. The hub's own
`/healthz` in the same run is the floor (the peer column). Goals: p95 under 20 ms with one
client at 100k, under 100 ms with 16 clients at 10k (absolute: judge them on an idle machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BENCH_LIMITS, Row, report, wrk
from fnhub.hub.context import Hub
from fnhub.hub.settings import ServerSettings
from tests.helpers import start_hub
from tests.postgres import PostgresServer
from tests.web.population import CATEGORIES, WORDS, Population

SORTS = ("relevance", "downloads", "updated", "name")


def queries() -> list[str]:
    paths = []
    for i, word in enumerate(WORDS):
        sort = SORTS[i % len(SORTS)]
        paths += [f"/api/v1/functions?q={word}&sort={sort}",
                  f"/api/v1/functions?q={word}+{WORDS[(i + 5) % len(WORDS)]}",
                  f"/api/v1/functions?category={CATEGORIES[i % len(CATEGORIES)]}&sort={sort}",
                  f"/api/v1/functions?q={word[:3]}&kind=job"]
    return paths


def build(root: Path, functions: int, database_url: str | None) -> tuple[Path, str | None]:
    data = root / f"data-{functions}"
    settings = ServerSettings(data_dir=data, **({"database_url": database_url}
                                                if database_url else {}))
    hub = Hub.open(settings)
    try:
        started = time.perf_counter()
        population = Population(hub, root)
        for _ in range(functions // 10_000 or 1):
            population.add(functions=min(functions, 10_000), namespaces=50)
        print(f"{functions:,} functions inserted in {time.perf_counter() - started:.0f} s")
        if database_url:  # the statistics autovacuum would gather on a hub that ran a while
            with hub.db.engine.connect() as connection:
                connection.execute(text("ANALYZE"))
                connection.commit()
    finally:
        hub.close()
    return data, database_url


def one_client(url: str, paths: list[str], n: int) -> list[float]:
    times = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(n):
            started = time.perf_counter()
            client.get(paths[i % len(paths)]).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return times


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--json", type=Path, dest="json_out")
    args = parser.parse_args()
    pg_url = os.environ.get("FNHUB_BENCH_PG")
    pg = PostgresServer(pg_url) if pg_url else None
    backend = "PostgreSQL" if pg else "SQLite"
    paths = queries()
    rows = []
    with tempfile.TemporaryDirectory(prefix="fnhub-bench-") as tmp:
        root = Path(tmp)
        try:
            for size, clients in ((args.large, 1), (args.small, 16)):
                data, db = build(root, size, pg.create_database() if pg else None)
                hub = start_hub(data, database_url=db, extra_env=BENCH_LIMITS)
                try:
                    one_client(hub.url, paths, 20)  # warm caches
                    if clients == 1:
                        fnhub_p95 = p95(one_client(hub.url, paths, args.requests))
                        floor = p95(one_client(hub.url, ["/healthz"], args.requests))
                        goal_ms = 20.0
                    else:
                        fnhub_p95 = wrk(hub.url, paths, connections=16,
                                        seconds=args.seconds).p95_ms
                        floor = wrk(hub.url, ["/healthz"], connections=16,
                                    seconds=args.seconds).p95_ms
                        goal_ms = 100.0
                finally:
                    hub.stop()
                rows.append(Row(f"search p95, {size:,} functions, {clients} client(s)",
                                fnhub_p95, floor, "ms; peer = /healthz", f"< {goal_ms:.0f} ms",
                                fnhub_p95 < goal_ms))
        finally:
            if pg:
                pg.drop_all()
    return report(f"search on {backend}", rows, args.json_out)


if __name__ == "__main__":
    sys.exit(main())
