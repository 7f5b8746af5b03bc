"""Fixtures for the web catalog tests: in-process hubs (one seeded with the catalog, shared
by the read-only tests of a module; fresh ones for tests that change things), and the
external tools the browser and HTML tests need."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi import FastAPI

from fnhub.hub.app import create_app
from fnhub.hub.services.seed import seed_catalog
from fnhub.hub.settings import ServerSettings
from fnhub.hub.web.readme import readmes
from tests.helpers import ROOT
from tests.hub.factories import Publisher, make_client, make_publisher

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def browser_client(app: FastAPI) -> TestClient:
    """A client that asks for HTML, as browsers do (error pages are HTML only for them)."""
    client = make_client(app)
    client.headers["Accept"] = BROWSER_ACCEPT
    return client


@pytest.fixture(autouse=True)
def _fresh_readmes() -> None:
    """Each test sees READMEs as its own hub stores them, not as an earlier test cached them."""
    readmes.clear()


@pytest.fixture(scope="module")
def catalog_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """A hub seeded with the curated catalog; tests using it must not change it."""
    app = create_app(ServerSettings(data_dir=tmp_path_factory.mktemp("catalog") / "data"))
    seed_catalog(app.state.hub, ROOT / "catalog")
    yield app
    app.state.hub.close()


@pytest.fixture
def catalog(catalog_app: FastAPI) -> TestClient:
    return browser_client(catalog_app)






@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return browser_client(app)




@pytest.fixture
def alice(client: TestClient, admin_token: str, tmp_path: Path) -> Publisher:
    return make_publisher(client, admin_token, "alice", tmp_path / "work")
