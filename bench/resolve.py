"""Registry reads under load: `resolve?version=^1` and `/versions/{v}` of a function with 100
versions, against pypiserver's `/simple/<project>/` for a project with 100 files.

    .venv/bin/python bench/resolve.py [--rounds 3] [--seconds 5] [--clients 32] [--json OUT]

Both servers run as processes on loopback (the hub with its embedded defaults; pypiserver 2.4
in its own venv, whose "auto" server picks waitress); wrk drives each with the same number of
keep-alive clients, alternating, and the medians of requests per second are compared. Goal:
fnhub at least 1.5x the peer on both paths.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BENCH_LIMITS,
    Row,
    alternate,
    median,
    pypiserver,
    report,
    wrk,
)
from tests.helpers import start_hub
from tests.hub.factories import make_publisher

VERSIONS = [f"1.{i // 10}.{i % 10}" for i in range(100)]
GOAL = 1.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--json", type=Path, dest="json_out")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fnhub-bench-") as tmp:
        root = Path(tmp)
        packages = root / "packages"
        packages.mkdir()
        for version in VERSIONS:  # pypiserver lists files by name; their content is not read
            (packages / f"bench_fn-{version}.tar.gz").write_bytes(gzip.compress(b""))
        hub = start_hub(root / "data", extra_env=BENCH_LIMITS)
        try:
            with httpx.Client(base_url=hub.url, timeout=60) as client:
                publisher = make_publisher(client, hub.admin_token, "bench", root / "fns")
                for version in VERSIONS:
                    publisher.publish("fn", version)
            fn = "/api/v1/functions/bench/fn"
            with pypiserver(packages, root / "pypiserver.log") as peer_url:
                def load(url: str, paths: list[str]) -> float:
                    result = wrk(url, paths, connections=args.clients, seconds=args.seconds)
                    if result.errors:
                        raise SystemExit(f"{url}: {result.errors} errors under load")
                    return result.rps

                runs = alternate(args.rounds, {
                    "resolve": lambda: load(hub.url, [f"{fn}/resolve?version=%5E1"]),
                    "version": lambda: load(hub.url, [f"{fn}/versions/1.9.9"]),
                    "peer": lambda: load(peer_url, ["/simple/bench-fn/"]),
                })
        finally:
            hub.stop()
    peer = median(runs["peer"])
    rows = [Row(f"{name} ({args.clients} clients)", median(runs[key]), peer, "req/s",
                f">= {GOAL}x", median(runs[key]) >= GOAL * peer)
            for name, key in (("resolve?version=^1, 100 versions", "resolve"),
                              ("/versions/{v}", "version"))]
    return report("registry reads vs pypiserver /simple/", rows, args.json_out)


if __name__ == "__main__":
    sys.exit(main())
