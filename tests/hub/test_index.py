"""The hub-signed function index and the index key (design §5): contents, serials, ETags,
the key's start-up checks and its rotation chain."""

from __future__ import annotations

import base64
import json
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import col

from fnhub.cli.main import main
from fnhub.core.errors import Conflict, HubUnavailable, SignatureInvalid, UntrustedKey
from fnhub.core.index import (
    INDEX_PAYLOAD_TYPE,
    FunctionIndex,
    IndexKeyInfo,
    follow_chain,
    verify_index,
)
from fnhub.core.signing import (
    Envelope,
    generate_key,
    key_id,
    load_private_key,
    public_key_from_b64,
    public_key_to_b64,
    save_private_key,
)
from fnhub.hub.app import create_app
from fnhub.hub.context import Hub
from fnhub.hub.models import Function
from fnhub.hub.services import index
from fnhub.hub.settings import ServerSettings
from tests.hub.factories import Publisher, auth, error_code, make_client, make_publisher
from tests.postgres import PostgresServer

INDEX = "/api/v1/functions/alice/scale/index"


def _verified(client: TestClient, path: str = INDEX) -> tuple[FunctionIndex, dict[str, Any]]:
    """The index at `path`, verified against the key `/api/v1/index-key` names."""
    info = IndexKeyInfo.model_validate(client.get("/api/v1/index-key").json())
    response = client.get(path)
    assert response.status_code == 200, response.text
    envelope = Envelope.model_validate_json(response.content)
    assert envelope.payloadType == INDEX_PAYLOAD_TYPE
    verified = verify_index(envelope, {info.keyid: public_key_from_b64(info.public_key)})
    return verified, json.loads(response.content)


def test_the_index_lists_versions_tombstones_tags_and_keys(client: TestClient,
                                                           alice: Publisher) -> None:
    one = alice.publish("scale", "1.0.0")
    alice.publish("scale", "1.1.0")
    alice.publish("scale", "2.0.0")
    assert client.post("/api/v1/functions/alice/scale/versions/1.1.0/yank",
                       headers=auth(alice.token), json={"reason": "broken"}).status_code == 200
    assert client.delete("/api/v1/functions/alice/scale/versions/2.0.0",
                         headers=auth(alice.token)).status_code == 204
    assert client.put("/api/v1/functions/alice/scale/tags/stable", headers=auth(alice.token),
                      json={"version": "1.0.0"}).status_code == 200

    signed, _ = _verified(client)
    assert signed.function == "alice/scale"
    assert set(signed.versions) == {"1.0.0", "1.1.0", "2.0.0"}
    assert signed.versions["1.0.0"].digest == one["package"]["digest"]
    assert (signed.versions["1.1.0"].yanked, signed.versions["1.1.0"].deleted) == (True, False)
    assert signed.versions["2.0.0"].deleted  # a tombstone: its number stays taken
    assert signed.tags == {"stable": "1.0.0"}
    assert signed.keys == [key_id(alice.key.public_key())]
    assert signed.expires > datetime.now(timezone.utc)


def test_the_payload_is_canonical_json(client: TestClient, alice: Publisher) -> None:
    alice.publish("scale", "1.0.0")
    response = client.get(INDEX)
    envelope = Envelope.model_validate_json(response.content)
    payload = base64.b64decode(envelope.payload)
    assert payload == json.dumps(json.loads(payload), sort_keys=True,
                                 separators=(",", ":")).encode()
    assert set(json.loads(payload)) == {"function", "serial", "expires", "versions", "tags",
                                        "keys"}
    assert response.content == json.dumps(json.loads(response.content), sort_keys=True,
                                          separators=(",", ":")).encode()


def test_every_change_raises_the_serial(client: TestClient, alice: Publisher,
                                        tmp_path: Path) -> None:
    alice.publish("scale", "1.0.0")
    seen = [_verified(client)[0].serial]

    def changed() -> None:
        serial = _verified(client)[0].serial
        assert serial > seen[-1]
        seen.append(serial)

    alice.publish("scale", "1.1.0")
    changed()
    h = auth(alice.token)
    base = "/api/v1/functions/alice/scale"
    assert client.post(f"{base}/versions/1.1.0/yank", headers=h,
                       json={"reason": "bad"}).status_code == 200
    changed()
    assert client.post(f"{base}/versions/1.1.0/unyank", headers=h).status_code == 200
    changed()
    assert client.put(f"{base}/tags/stable", headers=h, json={"version": "1.0.0"}
                      ).status_code == 200
    changed()
    assert client.delete(f"{base}/versions/1.1.0", headers=h).status_code == 204
    changed()
    other = generate_key()
    assert client.post("/api/v1/keys", headers=h, json={
        "namespace": "alice", "public_key": public_key_to_b64(other.public_key())}
    ).status_code == 201
    changed()
    assert _verified(client)[0].keys == sorted([key_id(alice.key.public_key()),
                                                key_id(other.public_key())])
    assert client.delete(f"/api/v1/keys/{key_id(other.public_key())}?namespace=alice",
                         headers=h).status_code == 204
    changed()
    # a read changes nothing
    assert _verified(client)[0].serial == seen[-1]


def test_the_serial_never_goes_down(hub: Hub, client: TestClient, alice: Publisher) -> None:
    """Even when the stored serial is ahead of the clock (e.g. restored, or many changes in
    one millisecond), the next change raises it by one."""
    alice.publish("scale", "1.0.0")
    ahead = 2 * int(datetime.now(timezone.utc).timestamp() * 1000)
    with hub.db.write() as session:
        session.execute(update(Function).values(index_serial=ahead))
    alice.publish("scale", "1.0.1")
    assert _verified(client)[0].serial == ahead + 1


def test_etag_and_if_none_match(client: TestClient, alice: Publisher) -> None:
    alice.publish("scale", "1.0.0")
    first = client.get(INDEX)
    etag = first.headers["etag"]
    assert "no-cache" in first.headers["cache-control"]
    again = client.get(INDEX, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert client.get(INDEX).content == first.content  # signed on read, same bytes
    alice.publish("scale", "1.0.1")
    changed = client.get(INDEX, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag


def test_unknown_or_malformed_functions(client: TestClient, alice: Publisher) -> None:
    assert error_code(client.get("/api/v1/functions/alice/nope/index")) == "not_found"
    assert error_code(client.get("/api/v1/functions/Alice/x/index")) == "invalid_input"


@pytest.mark.parametrize(("setting", "now", "expected"), [
    (None, "2026-12-06T17:35:10Z", "2026-12-14T00:00:00Z"),
    (None, "2026-12-06T00:00:00Z", "2026-12-14T00:00:00Z"),
    (None, "2026-12-31T23:59:59Z", "2027-01-08T00:00:00Z"),
    ("30s", "2026-12-06T17:35:10Z", "2026-12-06T17:36:00Z"),
    ("30s", "2026-12-06T17:35:00Z", "2026-12-06T17:36:00Z"),
    ("1h", "2026-12-06T17:35:10Z", "2026-12-06T19:00:00Z"),
])
def test_expiry(tmp_path: Path, setting: str | None, now: str, expected: str) -> None:
    settings = ServerSettings(data_dir=tmp_path, index_expiry=setting)
    at = index.expires_at(settings, datetime.fromisoformat(now))
    assert at == datetime.fromisoformat(expected)


def test_expiry_setting_is_validated(tmp_path: Path) -> None:
    assert ServerSettings(data_dir=tmp_path, index_expiry="5m").index_expiry == 300
    with pytest.raises(ValueError, match="invalid duration"):
        ServerSettings(data_dir=tmp_path, index_expiry="soon")


@pytest.mark.slow
def test_two_replicas_on_postgresql_serve_identical_bytes(tmp_path: Path,
                                                         postgres: PostgresServer) -> None:
    """Two apps on one PostgreSQL database, sharing only the database and the key file."""
    database_url = postgres.create_database()
    first = ServerSettings(data_dir=tmp_path / "a", database_url=database_url)
    app_a = create_app(first)
    second = ServerSettings(data_dir=tmp_path / "b", database_url=database_url,
                            index_key=first.index_key_path(),
                            admin_token=(first.data_dir / "admin-token").read_text().strip())
    app_b = create_app(second)
    try:
        a, b = make_client(app_a), make_client(app_b)
        alice = make_publisher(a, second.admin_token.get_secret_value(),  # type: ignore[union-attr]
                               "alice", tmp_path / "work")
        alice.publish("scale", "1.0.0")
        on_a, on_b = a.get(INDEX), b.get(INDEX)
        assert on_a.status_code == on_b.status_code == 200
        assert on_a.content == on_b.content
        assert on_a.headers["etag"] == on_b.headers["etag"]
        assert b.get(INDEX, headers={"If-None-Match": on_a.headers["etag"]}).status_code == 304
        alice.client = b  # a change through B shows on A at once: one database
        alice.publish("scale", "1.0.1")
        assert a.get(INDEX).content == b.get(INDEX).content != on_a.content
        with pytest.raises(Conflict, match="every replica needs the same index key"):
            create_app(ServerSettings(data_dir=tmp_path / "c", database_url=database_url))
    finally:
        app_a.state.hub.close()
        app_b.state.hub.close()


# --------------------------------------------------------------------------- the key


def test_key_is_made_at_first_start_0600_and_kept(settings: ServerSettings, hub: Hub,
                                                 client: TestClient) -> None:
    path = settings.data_dir / "index-key.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = load_private_key(path)
    info = client.get("/api/v1/index-key").json()
    assert info == {"keyid": key_id(key.public_key()),
                    "public_key": public_key_to_b64(key.public_key()), "chain": []}
    hub.close()
    with make_client(create_app(settings)) as again:  # a restart keeps the key
        assert again.get("/api/v1/index-key").json()["keyid"] == info["keyid"]


def test_a_replica_with_another_key_refuses_to_start(settings: ServerSettings, hub: Hub,
                                                     tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    save_private_key(generate_key(), other)
    replica = settings.model_copy(update={"data_dir": tmp_path / "replica",
                                          "index_key": other})
    with pytest.raises(Conflict, match="every replica needs the same index key"):
        create_app(replica)
    shared = settings.model_copy(update={"data_dir": tmp_path / "replica2",
                                         "index_key": settings.data_dir / "index-key.pem"})
    create_app(shared).state.hub.close()


def test_a_configured_key_file_must_exist(tmp_path: Path) -> None:
    settings = ServerSettings(data_dir=tmp_path / "d", index_key=tmp_path / "missing.pem")
    with pytest.raises(Exception, match="no private key at"):
        create_app(settings)
    assert not (tmp_path / "missing.pem").exists()


def test_rotation_chain_verifies_from_every_earlier_key(settings: ServerSettings, hub: Hub,
                                                       alice: Publisher) -> None:
    alice.publish("scale", "1.0.0")
    path = settings.index_key_path()
    keys = [load_private_key(path)]
    for _ in range(3):
        rotation = index.rotate(hub)
        keys.append(load_private_key(path))
        assert rotation.keyid == key_id(keys[-1].public_key())
        assert rotation.previous == key_id(keys[-2].public_key())
    assert not path.with_name(path.name + ".next").exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    hub.close()
    with make_client(create_app(settings)) as client:  # restarted with the new key
        info = IndexKeyInfo.model_validate(client.get("/api/v1/index-key").json())
        assert info.keyid == key_id(keys[-1].public_key()) and len(info.chain) == 3
        for pinned in keys:
            assert key_id(follow_chain(pinned.public_key(), info)) == info.keyid
        current = follow_chain(keys[0].public_key(), info)
        envelope = Envelope.model_validate_json(client.get(INDEX).content)
        assert verify_index(envelope, {info.keyid: current}).function == "alice/scale"
        with pytest.raises(UntrustedKey, match="cannot be reached") as refused:
            follow_chain(generate_key().public_key(), info)
        assert f"hub keys trust-hub URL {info.keyid}" in (refused.value.hint or "")
        # a link signed by the right key id but altered does not verify
        forged = info.model_copy(deep=True)
        forged.chain[1].payload = forged.chain[0].payload
        with pytest.raises(SignatureInvalid):
            follow_chain(keys[0].public_key(), forged)


def test_admin_rotate_index_key_command(settings: ServerSettings, hub: Hub,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    before = index.key_info(hub).keyid
    assert main(["admin", "rotate-index-key", "--data-dir", str(settings.data_dir),
                 "--json"]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert rotated["previous"] == before
    assert rotated["keyid"] == key_id(load_private_key(settings.index_key_path()).public_key())
    info = index.key_info(hub)
    assert info.keyid == rotated["keyid"] and len(info.chain) == 1
    assert main(["admin", "rotate-index-key", "--data-dir", str(settings.data_dir / "none")]) == 1
    assert "no private key at" in capsys.readouterr().err


def test_a_replica_left_with_a_rotated_key_stops_signing(hub: Hub, client: TestClient,
                                                         alice: Publisher) -> None:
    alice.publish("scale", "1.0.0")
    assert client.get(INDEX).status_code == 200
    index.rotate(hub)  # the running app still holds the old key
    response = client.get(INDEX)
    assert response.status_code == 503 and "rotated" in response.json()["error"]["message"]
    with pytest.raises(HubUnavailable):
        index.signed_index(hub, "alice", "scale")


def test_an_interrupted_rotation_is_finished_at_start(settings: ServerSettings,
                                                      hub: Hub) -> None:
    path = settings.index_key_path()
    index.rotate(hub)
    rotated = path.read_bytes()
    # as if the process died after the commit, before moving the new key into place
    path.rename(path.with_name(path.name + ".next"))
    save_private_key(generate_key(), path)  # stand-in for the old key
    hub.close()
    app = create_app(settings)
    assert path.read_bytes() == rotated
    assert key_id(app.state.hub.index_key.public_key()) == index.key_info(hub).keyid
    app.state.hub.close()


def test_the_serial_column_is_updated_in_sql(hub: Hub, alice: Publisher) -> None:
    """bump_index_serials is one UPDATE: the rows change even with no ORM object loaded."""
    alice.publish("scale", "1.0.0")
    with hub.db.write() as session:
        session.execute(update(Function).values(index_serial=5))
    with hub.db.write() as session:
        index.functions.bump_index_serials(session, col(Function.name) == "scale")
    with hub.db.read() as session:
        assert session.get(Function, 1).index_serial > 5  # type: ignore[union-attr]
