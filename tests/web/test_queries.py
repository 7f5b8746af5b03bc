"""Acceptance 3: each page costs a few SQL queries, the same for 30 functions as for 10,000.

The hub is measured twice: small (30 functions, one with 3 versions), then after 10,000
more functions and a function with 300 versions are added. Every page must issue exactly
as many statements at both sizes (no query per result, version, tag or key), and few.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI

from fnhub.hub.app import create_app
from fnhub.hub.context import Hub
from fnhub.hub.services import search
from fnhub.hub.settings import ServerSettings
from fnhub.hub.web.readme import readmes
from tests.helpers import sql_statements
from tests.hub.factories import make_client
from tests.web.population import Population

MAX_QUERIES = 6
LARGE = 10_000


def _pages(refs: dict[str, tuple[str, str]]) -> dict[str, str]:
    ns, name = refs["many"]
    one_ns, one_name = refs["one"]
    return {
        "home": "/",
        "search": "/?q=table",
        "category": "/?category=monitoring&sort=downloads",
        "kind and page 2": "/?kind=job&sort=updated&page=2",
        "namespace": f"/{ns}",
        "function (many versions)": f"/{ns}/{name}",
        "version (many versions)": f"/{ns}/{name}/1.1.0",
        "function (one version)": f"/{one_ns}/{one_name}",
    }


def _measure(app: FastAPI, pages: dict[str, str]) -> dict[str, int]:
    client = make_client(app)
    hub: Hub = app.state.hub
    counts = {}
    for label, url in pages.items():
        assert client.get(url).status_code == 200, url  # warm: pool, caches
        with sql_statements(hub.db.engine) as recorded:
            response = client.get(url)
        assert response.status_code == 200, (url, response.text[:500])
        statements = [statement for statement, _ in recorded]
        assert all(s.lstrip().upper().startswith("SELECT") for s in statements), statements
        counts[label] = len(statements)
    return counts


@dataclass
class Measured:
    app: FastAPI
    small: dict[str, int]
    large: dict[str, int]
    deep: str  # the URL of the function with 300 versions


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Measured]:
    root = tmp_path_factory.mktemp("queries")
    app = create_app(ServerSettings(data_dir=root / "data"))
    population = Population(app.state.hub, root)
    [many] = population.add(functions=1, versions=3, namespaces=1, prefix="small")
    [one, *_] = population.add(functions=29, namespaces=3, prefix="small")
    pages = _pages({"many": many, "one": one})
    small = _measure(app, pages)

    population.add(functions=LARGE, namespaces=200)
    [(ns, name)] = population.add(functions=1, versions=300, namespaces=1, prefix="deep")
    readmes.clear()
    deep = f"/{ns}/{name}"
    large = _measure(app, {**pages, "function (300 versions)": deep})
    yield Measured(app, small, large, deep)
    app.state.hub.close()


def test_queries_per_page_are_few_and_do_not_grow(measured: Measured) -> None:
    small, large = measured.small, measured.large
    assert max(large.values()) <= MAX_QUERIES, large
    assert {k: large[k] for k in small} == small, (small, large)
    assert large["function (300 versions)"] == small["function (many versions)"]


def test_large_hub_pages_show_the_right_rows(measured: Measured) -> None:
    """The hub measured above really holds 10,000 functions: totals, pages and badges."""
    client = make_client(measured.app)
    home = client.get("/").text
    assert LARGE + 31 > search.TOTAL_CAP  # counted up to the bound, then "or more"
    assert f"{search.TOTAL_CAP:,}+ functions" in home
    assert home.count('class="badge ok"') == 20  # a full page, every result verified
    deep = client.get(measured.deep).text
    assert "100 of 300 versions are listed here" in deep
    assert ">1.299.0<" in deep and ">1.0.0<" not in deep
    old = client.get(f"{measured.deep}/1.0.0").text  # older than the 100 listed: still there
    assert '<option value="1.0.0" selected>1.0.0</option>' in old
    assert 'aria-current="page">1.0.0</a></th>' in old
