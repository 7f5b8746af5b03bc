"""Fixtures for the hub tests: a fresh hub per test, in-process, with a tmp data dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi import FastAPI

from fnhub.hub.app import create_app
from fnhub.hub.context import Hub
from fnhub.hub.settings import ServerSettings
from tests.hub.factories import Publisher, make_client, make_publisher

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


@pytest.fixture
def settings(tmp_path: Path) -> ServerSettings:
    return ServerSettings(data_dir=tmp_path / "data", max_package_size=256 * 1024)


@pytest.fixture
def app(settings: ServerSettings) -> Iterator[FastAPI]:
    app = create_app(settings)
    yield app
    app.state.hub.close()


@pytest.fixture
def hub(app: FastAPI) -> Hub:
    hub: Hub = app.state.hub
    return hub


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return make_client(app)


@pytest.fixture
def admin_token(settings: ServerSettings, app: FastAPI) -> str:
    return (settings.data_dir / "admin-token").read_text().strip()


@pytest.fixture
def alice(client: TestClient, admin_token: str, tmp_path: Path) -> Publisher:
    return make_publisher(client, admin_token, "alice", tmp_path / "work")


@pytest.fixture
def bob(client: TestClient, admin_token: str, tmp_path: Path) -> Publisher:
    return make_publisher(client, admin_token, "bob", tmp_path / "work")
