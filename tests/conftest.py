"""Shared fixtures: a clean environment for every test, real hub processes, PostgreSQL, S3."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi import FastAPI

from fnhub.hub.app import create_app
from fnhub.hub.context import Hub
from fnhub.hub.settings import ServerSettings
from tests.helpers import ENV_VARS
from tests.hub.factories import make_client

if TYPE_CHECKING:
    from fastapi.testclient import TestClient
from tests.postgres import START_HINT, PostgresServer, find_server
from tests.s3 import AWS_ENV, Backend, S3Server, s3_env


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees the developer's hub, token, cache or keys."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    root = tmp_path_factory.mktemp("client")
    monkeypatch.setenv("FNHUB_HOME", str(root / "home"))
    monkeypatch.setenv("FNHUB_CONFIG_DIR", str(root / "config"))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The machine's PostgreSQL; this session's databases are dropped at its end."""
    server = find_server()
    if server is None:
        pytest.fail(f"PostgreSQL does not answer at 127.0.0.1:5432; start it: {START_HINT}")
    yield server
    server.drop_all()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database_url(request: pytest.FixtureRequest) -> str:
    """A test's own empty database on each backend: "" (the SQLite default in the data dir),
    then a new PostgreSQL database."""
    if request.param == "sqlite":
        return ""
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """A real S3 endpoint (moto's server) for this session, with dummy AWS_* credentials
    in the environment for the tests and the hubs they start."""
    server = S3Server()
    with pytest.MonkeyPatch.context() as patch:
        for key, value in AWS_ENV.items():
            patch.setenv(key, value)
        yield server
    server.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "postgresql+s3"])
def hub_backend(request: pytest.FixtureRequest) -> Backend:
    """Run a module's hub on each production shape: SQLite and blob folder, PostgreSQL and
    blob folder, PostgreSQL and an S3 bucket of its own."""
    if request.param == "sqlite":
        return Backend("sqlite")
    server: PostgresServer = request.getfixturevalue("postgres")
    if request.param == "postgresql":
        return Backend("postgresql", server.create_database())
    bucket_server: S3Server = request.getfixturevalue("s3")
    return Backend("postgresql+s3", server.create_database(),
                   s3_env(bucket_server, bucket_server.create_bucket()))


# -- an in-process hub per test (folders override `settings` or `client` where they differ) --

@pytest.fixture
def settings(tmp_path: Path) -> ServerSettings:
    return ServerSettings(data_dir=tmp_path / "data")


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
def admin_token(hub: Hub) -> str:
    return (hub.settings.data_dir / "admin-token").read_text().strip()
