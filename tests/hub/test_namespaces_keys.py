"""Namespaces (claiming, ownership, the reserved `library`) and publisher keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fnhub.core.signing import generate_key, key_id, public_key_to_b64
from tests.hub.factories import Publisher, auth, error_code

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


def _token(client: TestClient, admin_token: str, user: str, *scopes: str) -> str:
    response = client.post("/api/v1/tokens", headers=auth(admin_token),
                           json={"name": user, "user": user, "scopes": list(scopes)})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def test_claim_a_free_namespace(client: TestClient, admin_token: str) -> None:
    token = _token(client, admin_token, "erin", "publish:*")
    created = client.post("/api/v1/namespaces", headers=auth(token), json={"name": "erin-lab"})
    assert created.status_code == 201
    assert created.json()["owners"] == ["erin"] and created.json()["name"] == "erin-lab"
    assert client.get("/api/v1/namespaces/erin-lab").json()["owners"] == ["erin"]
    assert [n["name"] for n in client.get("/api/v1/namespaces").json()] == ["erin-lab"]

    again = client.post("/api/v1/namespaces", headers=auth(token), json={"name": "erin-lab"})
    assert (again.status_code, error_code(again)) == (409, "conflict")
    assert "you already own it" in again.json()["error"]["message"]
    other = _token(client, admin_token, "frank", "publish:*")
    taken = client.post("/api/v1/namespaces", headers=auth(other), json={"name": "erin-lab"})
    assert taken.status_code == 409 and "taken" in taken.json()["error"]["message"]


def test_claiming_needs_a_token_with_the_scope(client: TestClient, admin_token: str) -> None:
    assert client.post("/api/v1/namespaces", json={"name": "x"}).status_code == 401
    token = _token(client, admin_token, "gina", "publish:gina")
    response = client.post("/api/v1/namespaces", headers=auth(token), json={"name": "other"})
    assert response.status_code == 403 and "publish:other" in response.text
    bad = client.post("/api/v1/namespaces", headers=auth(token), json={"name": "Bad.Name"})
    assert (bad.status_code, error_code(bad)) == (400, "invalid_input")


def test_library_is_reserved_for_admins(client: TestClient, admin_token: str) -> None:
    token = _token(client, admin_token, "hank", "publish:*")
    response = client.post("/api/v1/namespaces", headers=auth(token), json={"name": "library"})
    assert (response.status_code, error_code(response)) == (403, "forbidden")
    assert "reserved" in response.json()["error"]["message"]
    key = client.post("/api/v1/keys", headers=auth(token), json={
        "namespace": "library", "public_key": public_key_to_b64(generate_key().public_key())})
    assert key.status_code == 403
    assert client.get("/api/v1/namespaces/library").status_code == 404
    by_admin = client.post("/api/v1/namespaces", headers=auth(admin_token),
                           json={"name": "library"})
    assert by_admin.status_code == 201 and by_admin.json()["owners"] == ["admin"]


def test_unknown_namespace_hints_the_closest(client: TestClient, alice: Publisher) -> None:
    response = client.get("/api/v1/namespaces/alicee")
    assert response.status_code == 404 and response.json()["error"]["hint"] == \
        "did you mean 'alice'?"


def test_register_list_and_delete_keys(client: TestClient, alice: Publisher, bob: Publisher,
                                       admin_token: str) -> None:
    listed = client.get("/api/v1/keys", params={"namespace": "alice"}).json()
    assert [k["keyid"] for k in listed] == [key_id(alice.key.public_key())]
    assert listed[0]["namespace"] == "alice"

    second = generate_key()
    body = {"namespace": "alice", "public_key": public_key_to_b64(second.public_key()),
            "name": "laptop"}
    created = client.post("/api/v1/keys", headers=auth(alice.token), json=body)
    assert created.status_code == 201 and created.json()["name"] == "laptop"
    assert created.json()["keyid"] == key_id(second.public_key())
    duplicate = client.post("/api/v1/keys", headers=auth(alice.token), json=body)
    assert (duplicate.status_code, error_code(duplicate)) == (409, "conflict")
    into_alices = client.post("/api/v1/keys", headers=auth(bob.token), json=body)
    assert into_alices.status_code == 403

    everything = client.get("/api/v1/keys").json()
    assert sorted({k["namespace"] for k in everything}) == ["alice", "bob"]
    assert client.get("/api/v1/keys", params={"namespace": "nobody"}).status_code == 404

    keyid = created.json()["keyid"]
    url = f"/api/v1/keys/{keyid}"
    assert client.delete(url, params={"namespace": "alice"}, headers=auth(bob.token)) \
        .status_code == 403
    assert client.delete(url, params={"namespace": "alice"}, headers=auth(alice.token)) \
        .status_code == 204
    assert client.delete(url, params={"namespace": "alice"}, headers=auth(alice.token)) \
        .status_code == 404
    assert client.delete(url, headers=auth(alice.token)).status_code == 400  # namespace needed
    assert client.delete("/api/v1/keys/xyz", params={"namespace": "alice"},
                         headers=auth(alice.token)).status_code == 400
    assert len(client.get("/api/v1/keys", params={"namespace": "alice"}).json()) == 1


def test_bad_keys_are_400(client: TestClient, alice: Publisher) -> None:
    for public_key in ("not base64!", "AAAA", ""):
        response = client.post("/api/v1/keys", headers=auth(alice.token),
                               json={"namespace": "alice", "public_key": public_key})
        assert (response.status_code, error_code(response)) == (400, "invalid_input"), public_key


def test_registering_a_key_claims_a_free_namespace(client: TestClient, admin_token: str) -> None:
    token = _token(client, admin_token, "ivy", "publish:ivy-ml")
    response = client.post("/api/v1/keys", headers=auth(token), json={
        "namespace": "ivy-ml", "public_key": public_key_to_b64(generate_key().public_key())})
    assert response.status_code == 201
    assert client.get("/api/v1/namespaces/ivy-ml").json()["owners"] == ["ivy"]


def test_publishing_into_anothers_namespace_is_403(client: TestClient, alice: Publisher,
                                                   bob: Publisher) -> None:
    upload = bob.upload("thing", "1.0.0")
    stolen = client.post("/api/v1/functions/alice/thing/versions", files=upload.files(),
                         headers=auth(bob.token))
    assert stolen.status_code == 403
