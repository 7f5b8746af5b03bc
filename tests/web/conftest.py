"""Fixtures for the web catalog tests: in-process hubs (one seeded with the catalog, shared
by the read-only tests of a module; fresh ones for tests that change things), and the
external tools the browser and HTML tests need."""

from __future__ import annotations

import os
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


def require_file(path: Path | None, what: str) -> Path:
    """`path`, or skip the test when it is missing; under CI (`CI=true`) missing is a failure,
    since `.ci/run` installs it."""
    if path is not None and path.is_file():
        return path
    message = f"{what} is not installed ({path or 'no path given'}); .ci/run installs it"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


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
