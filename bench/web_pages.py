"""Server-side time of each web catalog page on a hub of 10,000 functions.

    .venv/bin/python bench/web_pages.py [--functions 10000] [--repeat 30]

Builds a throw-away hub (the catalog seeded for real, then N generated functions spread over
200 namespaces and one function with 300 versions, inserted straight through the models),
then requests every kind of page in-process and prints, per page, the server's own time
(the `Server-Timing` header: queries, view model and template), the time of the whole
request, and the number of SQL queries. The target is under 50 ms server-side per page.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the population helper lives with the tests

from fnhub.hub.app import create_app  # noqa: E402
from fnhub.hub.services.seed import seed_catalog  # noqa: E402
from fnhub.hub.settings import ServerSettings  # noqa: E402
from fnhub.hub.web.readme import readmes  # noqa: E402
from tests.hub.factories import make_client  # noqa: E402
from tests.web.population import Population  # noqa: E402
from tests.web.test_queries import counting  # noqa: E402

TARGET_MS = 50.0


def _server_ms(header: str) -> float:
    return float(header.partition("dur=")[2])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fnhub-bench-") as tmp:
        root = Path(tmp)
        app = create_app(ServerSettings(data_dir=root / "data"))
        hub = app.state.hub
        started = time.perf_counter()
        seed_catalog(hub, ROOT / "catalog")
        population = Population(hub, root)
        population.add(functions=args.functions, namespaces=200)
        [(deep_ns, deep_name)] = population.add(functions=1, versions=300, namespaces=1,
                                                 prefix="deep")
        print(f"hub of {args.functions + 13:,} functions built in "
              f"{time.perf_counter() - started:.1f} s\n")

        pages = {
            "home": "/",
            "search 'data'": "/?q=data",
            "category filter": "/?category=data-preparation&sort=downloads",
            "deep page, by update": "/?sort=updated&page=400",
            "namespace (library)": "/library",
            "namespace (50 fns)": "/gen14",
            "function (describe)": "/library/describe",
            "version (describe)": "/library/describe/1.1.0",
            "function (300 versions)": f"/{deep_ns}/{deep_name}",
            "not found, near name": "/library/describ",
            "not found, no namespace": "/nobody/describe",
        }
        client = make_client(app)
        print(f"{'page':<26}{'server p50':>12}{'server p95':>12}{'request p50':>13}"
              f"{'queries':>9}")
        slow = []
        for label, url in pages.items():
            client.get(url)
            server, whole = [], []
            for _ in range(args.repeat):
                with counting(hub) as statements:
                    t0 = time.perf_counter()
                    response = client.get(url)
                    whole.append((time.perf_counter() - t0) * 1000)
                server.append(_server_ms(response.headers["server-timing"]))
            p95 = statistics.quantiles(server, n=20)[-1] if len(server) > 1 else server[0]
            p50 = statistics.median(server)
            if p50 > TARGET_MS:
                slow.append(label)
            print(f"{label:<26}{p50:>10.1f}ms{p95:>10.1f}ms{statistics.median(whole):>11.1f}ms"
                  f"{len(statements):>9}")
        readmes.clear()
        cold = client.get("/library/describe").headers["server-timing"]
        print(f"\nfunction (describe) with its README not yet cached: {_server_ms(cold):.1f} ms")
        print(f"target: under {TARGET_MS:.0f} ms server-side per page: "
              + ("met by every page" if not slow else f"MISSED by {', '.join(slow)}"))
        hub.close()
    return 1 if slow else 0  # a missed target fails the run


if __name__ == "__main__":
    sys.exit(main())
