"""The Docker token flow, and push rights that follow the hub's namespaces."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from fastapi import FastAPI

from fnhub.hub.app import create_app
from fnhub.hub.oci import tokens
from fnhub.hub.settings import ServerSettings
from tests.hub.factories import auth, make_client
from tests.oci.conftest import mint
from tests.oci.helpers import Pusher, digest, errors, make_image

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

REALM = 'Bearer realm="http://testserver/v2/token",service="testserver"'


def basic(password: str, user: str = "whoever") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def get_token(client: TestClient, *scopes: str, headers: dict[str, str] | None = None) -> str:
    response = client.get("/v2/token", params={"service": "testserver", "scope": list(scopes)},
                          headers=headers or {})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token"] == body["access_token"] and body["expires_in"] == 300
    token: str = body["token"]
    return token


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def test_anonymous_calls_get_the_bearer_challenge(client: TestClient) -> None:
    ping = client.get("/v2/")
    assert ping.status_code == 401 and errors(ping) == ["UNAUTHORIZED"]
    assert ping.headers["WWW-Authenticate"] == REALM
    assert ping.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    push = client.post("/v2/alice/demo/blobs/uploads/")
    assert push.status_code == 401 and errors(push) == ["UNAUTHORIZED"]
    assert push.headers["WWW-Authenticate"] == (
        REALM + ',scope="repository:alice/demo:pull,push"')
    put = client.put("/v2/alice/demo/manifests/v1", content=b"{}")
    assert put.status_code == 401


def test_token_endpoint_grants_what_the_hub_token_holds(client: TestClient,
                                                        alice: Pusher) -> None:
    assert alice.token is not None
    token = get_token(client, "repository:alice/demo:pull,push",
                      "repository:bob/demo:pull,push", "registry:catalog:*",
                      headers=basic(alice.token))
    body = claims(token)
    assert body["access"] == [
        {"type": "repository", "name": "alice/demo", "actions": ["pull", "push"]},
        {"type": "repository", "name": "bob/demo", "actions": ["pull"]},
        {"type": "registry", "name": "catalog", "actions": ["*"]},
    ]
    assert body["sub"] == "alice" and body["aud"] == "testserver" and body["iss"] == "fnhub"
    assert body["exp"] - body["iat"] == pytest.approx(300, abs=1)

    as_jwt = Pusher(client, token)
    data = b"pushed with a registry token"
    assert as_jwt.blob("alice/demo", data).status_code == 201
    assert client.get("/v2/", headers=auth(token)).status_code == 200
    denied = as_jwt.blob("bob/demo", data)
    assert denied.status_code == 401 and errors(denied) == ["UNAUTHORIZED"]
    assert denied.headers["WWW-Authenticate"] == (
        REALM + ',scope="repository:bob/demo:pull,push",error="insufficient_scope"')
    other = as_jwt.http.get(f"/v2/alice/else/blobs/{digest(data)}", headers=as_jwt.headers)
    assert other.status_code == 401 and "insufficient_scope" in other.headers["WWW-Authenticate"]


def test_anonymous_tokens_pull_from_a_public_hub(client: TestClient, alice: Pusher) -> None:
    ref = alice.image("alice/demo", "v1", make_image(1))
    token = get_token(client, "repository:alice/demo:pull,push")
    assert claims(token)["access"] == [
        {"type": "repository", "name": "alice/demo", "actions": ["pull"]}]
    assert client.get("/v2/", headers=auth(token)).status_code == 200
    pulled = client.get(f"/v2/alice/demo/manifests/{ref}", headers=auth(token))
    assert pulled.status_code == 200
    assert client.get("/v2/alice/demo/manifests/v1").status_code == 200  # no token at all
    assert Pusher(client, token).blob("alice/demo", b"x").status_code == 401


def test_bad_credentials_are_refused(client: TestClient, hub: Any) -> None:
    bad = client.get("/v2/token", params={"scope": "repository:alice/demo:pull"},
                     headers=basic("fnhub_not-a-token"))
    assert bad.status_code == 401 and errors(bad) == ["UNAUTHORIZED"]
    assert client.get("/v2/", headers=auth("not.a.jwt")).status_code == 401
    now = int(time.time())
    expired = jwt.encode({"iss": "fnhub", "aud": "testserver", "sub": "", "iat": now - 900,
                          "exp": now - 600, "access": []}, tokens.signing_secret(hub),
                         algorithm="HS256")
    response = client.get("/v2/", headers=auth(expired))
    assert response.status_code == 401 and "expired" in response.json()["errors"][0]["message"]
    grant = [{"type": "repository", "name": "alice/demo", "actions": ["push"]}]
    forged = jwt.encode({"iss": "fnhub", "aud": "testserver", "sub": "", "iat": now,
                         "exp": now + 300, "access": grant},
                        b"another secret of 32 bytes, too!", algorithm="HS256")
    assert client.get("/v2/", headers=auth(forged)).status_code == 401


def test_secret_is_kept_in_the_data_dir_with_mode_0600(hub: Any, settings: ServerSettings
                                                       ) -> None:
    secret = tokens.signing_secret(hub)
    path = settings.data_dir / tokens.SECRET_FILE
    assert len(secret) == 32 and path.stat().st_mode & 0o777 == 0o600


def test_push_rights_follow_namespace_ownership(client: TestClient, admin_token: str,
                                                alice: Pusher, bob: Pusher) -> None:
    assert alice.blob("alice/demo", b"a").status_code == 201
    wrong_scope = bob.blob("alice/demo", b"b")
    assert wrong_scope.status_code == 403 and errors(wrong_scope) == ["DENIED"]
    carol = Pusher(client, mint(client, admin_token, "carol", "publish:*"))
    not_owner = carol.blob("alice/demo", b"c")
    assert not_owner.status_code == 403 and errors(not_owner) == ["DENIED"]
    assert "belongs to another user" in not_owner.json()["errors"][0]["message"]
    assert carol.token is not None
    token = get_token(client, "repository:alice/demo:pull,push", headers=basic(carol.token))
    assert claims(token)["access"][0]["actions"] == ["pull"]
    reserved = carol.blob("library/demo", b"c")
    assert reserved.status_code == 403 and "reserved" in reserved.json()["errors"][0]["message"]
    # a free namespace is claimed by the first push, as by a first publish
    assert carol.blob("carol-ns/demo", b"c").status_code == 201
    owners = client.get("/api/v1/namespaces/carol-ns").json()["owners"]
    assert owners == ["carol"]
    reader = Pusher(client, mint(client, admin_token, "dave", "read"))
    assert errors(reader.blob("dave/demo", b"d")) == ["DENIED"]


@pytest.fixture
def private_client(tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    app: FastAPI = create_app(ServerSettings(data_dir=tmp_path / "private", private=True))
    client = make_client(app)
    yield client, (tmp_path / "private" / "admin-token").read_text().strip()
    app.state.hub.close()


def test_private_hub_needs_credentials_to_pull(
        private_client: tuple[TestClient, str]) -> None:
    client, admin_token = private_client
    alice = Pusher(client, mint(client, admin_token, "alice", "publish:alice"))
    alice.image("alice/demo", "v1", make_image(1))
    anonymous = client.get("/v2/alice/demo/manifests/v1")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == REALM + ',scope="repository:alice/demo:pull"'
    assert client.get("/v2/alice/demo/tags/list").status_code == 401
    assert client.get("/v2/_catalog").status_code == 401
    nothing = get_token(client, "repository:alice/demo:pull")
    assert claims(nothing)["access"] == []
    assert client.get("/v2/alice/demo/tags/list", headers=auth(nothing)).status_code == 401
    reader = mint(client, admin_token, "reader", "read")
    token = get_token(client, "repository:alice/demo:pull", headers=basic(reader))
    assert client.get("/v2/alice/demo/tags/list", headers=auth(token)).json()["tags"] == ["v1"]
    assert client.get("/v2/alice/demo/tags/list", headers=basic(reader)).status_code == 200
