"""In-process registry fixtures: a fresh hub per test and tokens of two publishers."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

import pytest

from tests.hub.factories import auth
from tests.oci.helpers import Pusher

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


def require_tool(name: str) -> str:
    """The tool's path, or skip the test when it is missing; under CI (`CI=true`) missing is a
    failure, since `.ci/run` installs it."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed; .ci/run installs it from Debian"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)












def mint(client: TestClient, admin_token: str, user: str, *scopes: str) -> str:
    response = client.post("/api/v1/tokens", headers=auth(admin_token), json={
        "name": f"{user}-token", "user": user, "scopes": list(scopes)})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


@pytest.fixture
def alice(client: TestClient, admin_token: str) -> Pusher:
    return Pusher(client, mint(client, admin_token, "alice", "publish:alice"))


@pytest.fixture
def bob(client: TestClient, admin_token: str) -> Pusher:
    return Pusher(client, mint(client, admin_token, "bob", "publish:bob"))
