"""Fixtures for the hub tests: a fresh hub per test, in-process, with a tmp data dir."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from fnhub.hub.settings import ServerSettings
from tests.hub.factories import Publisher, make_publisher

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


@pytest.fixture
def settings(tmp_path: Path) -> ServerSettings:
    return ServerSettings(data_dir=tmp_path / "data", max_package_size=256 * 1024)










@pytest.fixture
def alice(client: TestClient, admin_token: str, tmp_path: Path) -> Publisher:
    return make_publisher(client, admin_token, "alice", tmp_path / "work")


@pytest.fixture
def bob(client: TestClient, admin_token: str, tmp_path: Path) -> Publisher:
    return make_publisher(client, admin_token, "bob", tmp_path / "work")
