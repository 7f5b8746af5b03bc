"""Tokens, scopes, the bootstrap admin token, and private hubs."""

from __future__ import annotations

import logging
import stat
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlmodel import select

from fnhub.core.api_models import TokenCreate
from fnhub.core.errors import Forbidden, InvalidInput, Unauthorized
from fnhub.hub.app import create_app
from fnhub.hub.context import Hub
from fnhub.hub.models import Token, utcnow
from fnhub.hub.services import auth as auth_service
from fnhub.hub.settings import ServerSettings
from tests.hub.factories import Publisher, auth, error_code, make_client

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


def test_admin_token_file_is_0600_and_never_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture,
        capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    settings = ServerSettings(data_dir=tmp_path / "data")
    app = create_app(settings)
    path = settings.data_dir / "admin-token"
    token = path.read_text().strip()
    assert token.startswith("fnhub_") and len(token) > 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert app.state.admin_token_file == path
    out, err = capfd.readouterr()
    assert str(path) in caplog.text
    assert token not in caplog.text + out + err
    whoami = make_client(app).get("/api/v1/whoami", headers=auth(token)).json()
    assert whoami == {"user": "admin", "scopes": ["admin"], "namespaces": []}
    app.state.hub.close()

    again = create_app(settings)  # a restart keeps the token
    assert path.read_text().strip() == token
    again.state.hub.close()


def test_lost_admin_token_file_is_replaced(tmp_path: Path) -> None:
    settings = ServerSettings(data_dir=tmp_path / "data")
    create_app(settings).state.hub.close()
    path = settings.data_dir / "admin-token"
    old = path.read_text().strip()
    path.unlink()
    app = create_app(settings)
    new = path.read_text().strip()
    assert new != old
    client = make_client(app)
    assert client.get("/api/v1/whoami", headers=auth(new)).status_code == 200
    assert client.get("/api/v1/whoami", headers=auth(old)).status_code == 401
    app.state.hub.close()


def test_admin_token_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FNHUB_SERVER_ADMIN_TOKEN", "my-operator-secret")
    monkeypatch.setenv("FNHUB_SERVER_DATA_DIR", str(tmp_path / "data"))
    for _ in range(2):  # idempotent across restarts
        app = create_app()
        assert not (tmp_path / "data" / "admin-token").exists()
        client = make_client(app)
        assert client.get("/api/v1/whoami", headers=auth("my-operator-secret")).json()["user"] \
            == "admin"
        with app.state.hub.db.read() as session:
            assert len(session.exec(select(Token)).all()) == 1
        app.state.hub.close()
    monkeypatch.setenv("FNHUB_SERVER_ADMIN_TOKEN", "rotated")
    app = create_app()
    client = make_client(app)
    assert client.get("/api/v1/whoami", headers=auth("my-operator-secret")).status_code == 401
    assert client.get("/api/v1/whoami", headers=auth("rotated")).status_code == 200
    app.state.hub.close()


def test_tokens_are_stored_hashed(client: TestClient, hub: Hub, admin_token: str) -> None:
    created = client.post("/api/v1/tokens", headers=auth(admin_token),
                          json={"name": "ci", "scopes": ["read"]}).json()
    secret = created["token"]
    assert secret.startswith("fnhub_")
    with hub.db.read() as session:
        rows = session.exec(select(Token)).all()
    stored = {row.token_hash for row in rows}
    assert auth_service.hash_token(secret) in stored
    assert all(secret not in value and len(value) == 64 for value in stored)
    assert hub.settings.database_url.startswith("sqlite:///")
    db_file = Path(hub.settings.database_url.removeprefix("sqlite:///"))
    hub.db.dispose()
    raw = b"".join(p.read_bytes() for p in db_file.parent.glob("hub.db*"))
    assert secret.encode() not in raw and admin_token.encode() not in raw


def test_minting_is_limited_to_held_scopes(client: TestClient, alice: Publisher,
                                           admin_token: str) -> None:
    def mint(token: str, **body: object) -> tuple[int, str]:
        response = client.post("/api/v1/tokens", headers=auth(token),
                               json={"name": "t", **body})
        return response.status_code, response.text

    assert mint(alice.token, scopes=["read", "publish:alice"])[0] == 201
    status, text = mint(alice.token, scopes=["publish:bob"])
    assert status == 403 and "publish:bob" in text
    assert mint(alice.token, scopes=["admin"])[0] == 403
    assert mint(alice.token, scopes=["publish:*"])[0] == 403
    assert mint(alice.token, scopes=["read"], user="bob")[0] == 403
    assert mint(alice.token, scopes=["delete-everything"])[0] == 400
    assert mint(alice.token, scopes=["publish:Bad_NS!"])[0] == 400
    assert mint(alice.token, scopes=[])[0] == 400
    assert mint(admin_token, scopes=["publish:*"], user="Not A Name")[0] == 400
    status, text = mint(admin_token, scopes=["publish:dave"], user="dave")
    assert status == 201 and '"user":"dave"' in text


def test_list_and_revoke_tokens(client: TestClient, alice: Publisher, admin_token: str) -> None:
    extra = client.post("/api/v1/tokens", headers=auth(alice.token),
                        json={"name": "laptop", "scopes": ["read"], "expires_in": 3600}).json()
    listed = client.get("/api/v1/tokens", headers=auth(alice.token)).json()
    assert [t["name"] for t in listed] == ["alice-publish", "laptop"]
    assert all("token" not in t for t in listed)
    assert listed[1]["expires_at"] is not None
    admin_tokens = client.get("/api/v1/tokens", headers=auth(admin_token)).json()
    assert [t["user"] for t in admin_tokens] == ["admin"]

    admins_one = admin_tokens[0]["id"]
    assert client.delete(f"/api/v1/tokens/{admins_one}", headers=auth(alice.token)).status_code \
        == 404
    assert client.delete(f"/api/v1/tokens/{extra['id']}",
                         headers=auth(alice.token)).status_code == 204
    assert client.get("/api/v1/whoami", headers=auth(extra["token"])).status_code == 401
    assert client.delete("/api/v1/tokens/notanumber", headers=auth(alice.token)).status_code \
        == 400


def test_expired_token_is_refused(hub: Hub, alice: Publisher) -> None:
    caller = auth_service.authenticate(hub, alice.token)
    created = auth_service.create_token(hub, caller, TokenCreate(name="short", scopes=["read"],
                                                                 expires_in=60))
    with hub.db.write() as session:
        row = session.get(Token, created.id)
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
        session.add(row)
    with pytest.raises(Unauthorized, match="expired"):
        auth_service.authenticate(hub, created.token)


def test_caller_scopes() -> None:
    publisher = auth_service.Caller(1, "alice", frozenset({"publish:alice"}))
    assert publisher.holds("read") and publisher.holds("publish:alice")
    assert not publisher.holds("publish:bob") and not publisher.holds("admin")
    wide = auth_service.Caller(1, "alice", frozenset({"publish:*"}))
    assert wide.holds("publish:bob") and not wide.holds("admin")
    admin = auth_service.Caller(1, "admin", frozenset({"admin"}))
    assert admin.holds("publish:anything") and admin.holds("admin")
    with pytest.raises(Forbidden, match="publish:bob"):
        publisher.require("publish:bob")
    with pytest.raises(InvalidInput):
        auth_service.check_scope("publish:")


def test_whoami_lists_owned_namespaces(client: TestClient, alice: Publisher) -> None:
    me = client.get("/api/v1/whoami", headers=auth(alice.token)).json()
    assert me == {"user": "alice", "scopes": ["publish:alice"], "namespaces": ["alice"]}
    anonymous = client.get("/api/v1/whoami")
    assert (anonymous.status_code, error_code(anonymous)) == (401, "unauthorized")
    assert client.get("/api/v1/whoami", headers={"Authorization": "Basic abc"}).status_code \
        == 401


def test_private_hub_needs_a_token_to_read(tmp_path: Path) -> None:
    settings = ServerSettings(data_dir=tmp_path / "data", private=True)
    app = create_app(settings)
    client = make_client(app)
    token = (settings.data_dir / "admin-token").read_text().strip()
    for path in ("/api/v1/functions", "/api/v1/namespaces", "/api/v1/keys", "/"):
        response = client.get(path)
        assert (response.status_code, error_code(response)) == (401, "unauthorized"), path
        assert client.get(path, headers=auth(token)).status_code == 200, path
    assert client.get("/healthz").status_code == 200
    app.state.hub.close()


def test_the_last_admin_token_cannot_be_revoked(tmp_path: Path,
                                                fresh_database_url: str) -> None:
    """409 naming why; an expired admin token does not count as another one."""
    app = create_app(ServerSettings(data_dir=tmp_path / "data", database_url=fresh_database_url))
    try:
        client = make_client(app)
        bootstrap = (tmp_path / "data" / "admin-token").read_text().strip()
        own = client.get("/api/v1/tokens", headers=auth(bootstrap)).json()[0]["id"]
        refused = client.delete(f"/api/v1/tokens/{own}", headers=auth(bootstrap))
        assert refused.status_code == 409 and error_code(refused) == "conflict"
        assert "last admin token" in refused.json()["error"]["message"]
        expired = client.post("/api/v1/tokens", headers=auth(bootstrap), json={
            "name": "old", "scopes": ["admin"], "expires_in": 60}).json()
        with app.state.hub.db.write() as session:
            row = session.get(Token, expired["id"])
            assert row is not None
            row.expires_at = utcnow() - timedelta(seconds=1)
        assert client.delete(f"/api/v1/tokens/{own}", headers=auth(bootstrap)).status_code \
            == 409
        second = client.post("/api/v1/tokens", headers=auth(bootstrap), json={
            "name": "ops", "scopes": ["admin"], "user": "ops"}).json()
        assert client.delete(f"/api/v1/tokens/{own}", headers=auth(bootstrap)).status_code \
            == 204
        last = client.delete(f"/api/v1/tokens/{second['id']}", headers=auth(second["token"]))
        assert last.status_code == 409
        assert client.get("/api/v1/whoami", headers=auth(second["token"])).status_code == 200
        # tokens without the admin scope are revoked as before
        reader = client.post("/api/v1/tokens", headers=auth(second["token"]), json={
            "name": "r", "scopes": ["read"]}).json()
        assert client.delete(f"/api/v1/tokens/{reader['id']}",
                             headers=auth(second["token"])).status_code == 204
    finally:
        app.state.hub.close()
