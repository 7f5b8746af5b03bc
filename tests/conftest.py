"""Shared fixtures: a clean environment for every test, real hub processes, PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import ENV_VARS
from tests.postgres import START_HINT, PostgresServer, find_server


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


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def hub_database_url(request: pytest.FixtureRequest) -> str | None:
    """Run a module's hub on each backend: None (SQLite in the data dir), then a fresh
    PostgreSQL database."""
    if request.param == "sqlite":
        return None
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database_url(request: pytest.FixtureRequest) -> str:
    """A test's own empty database on each backend: "" (the SQLite default in the data dir),
    then a new PostgreSQL database."""
    if request.param == "sqlite":
        return ""
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()
