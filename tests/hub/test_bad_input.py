"""Bad input is a clear 4xx with the error JSON, never a 500."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from fastapi import FastAPI

from tests.hub.factories import Publisher, auth, make_client

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

F = "/api/v1/functions"
BAD_SEGMENTS = ["UPPER", "a..b", "-lead", "x" * 65, "%00", "caf%C3%A9", "a%2Fb", "%2e%2e", "a b",
                "'; DROP TABLE versions; --"]
BAD_VERSIONS = ["1", "v1.0.0", "1.0", "latest", "%5E1.0", "1.0.0.0", "x" * 300]


def _check(response: Any, where: str) -> None:
    assert 400 <= response.status_code < 500, (where, response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"], where


def test_bad_names_in_paths(client: TestClient, alice: Publisher) -> None:
    alice.publish("scale", "1.0.0")
    for bad in BAD_SEGMENTS:
        for path in (f"{F}/{bad}/scale", f"{F}/alice/{bad}", f"{F}/alice/{bad}/resolve",
                     f"{F}/{bad}/scale/versions/1.0.0", f"{F}/alice/{bad}/versions/1.0.0/package",
                     f"/api/v1/namespaces/{bad}"):
            _check(client.get(path), path)
        for path in (f"{F}/{bad}/scale/versions/1.0.0/yank", f"{F}/alice/{bad}/versions"):
            _check(client.post(path, headers=auth(alice.token), json={"reason": "x"}), path)
        path = f"{F}/alice/scale/tags/{bad}"
        _check(client.put(path, headers=auth(alice.token), json={"version": "1.0.0"}), path)


def test_bad_versions_in_paths(client: TestClient, alice: Publisher) -> None:
    alice.publish("scale", "1.0.0")
    for bad in BAD_VERSIONS:
        for suffix in ("", "/package", "/attestations"):
            path = f"{F}/alice/scale/versions/{bad}{suffix}"
            _check(client.get(path), path)
        _check(client.delete(f"{F}/alice/scale/versions/{bad}", headers=auth(alice.token)), bad)
        _check(client.get(f"{F}/alice/scale/resolve", params={"version": bad + ",,"}), bad)


JSON_ENDPOINTS = [
    ("POST", "/api/v1/tokens"),
    ("POST", "/api/v1/keys"),
    ("POST", "/api/v1/namespaces"),
    ("POST", f"{F}/alice/scale/versions/1.0.0/yank"),
    ("PUT", f"{F}/alice/scale/tags/stable"),
]
BAD_BODIES: list[tuple[str, bytes]] = [
    ("malformed", b"{not json"),
    ("truncated", b'{"name": "x"'),
    ("a list", b"[1, 2]"),
    ("a string", b'"hello"'),
    ("empty", b""),
    ("not utf-8", b"\xff\xfe{}"),
    ("wrong types", b'{"name": 5, "scopes": "read", "namespace": [], "public_key": {},'
                    b' "reason": 7, "version": null}'),
    ("extra fields", b'{"name": "x", "scopes": ["read"], "namespace": "alice",'
                     b' "public_key": "AAAA", "reason": "r", "version": "1.0.0", "bogus": 1}'),
    ("huge number", b'{"name": "x", "scopes": ["read"], "expires_in": 1e400}'),
    ("huge integer", b'{"name": "x", "scopes": ["read"], "expires_in": 1' + b"0" * 40 + b"}"),
]


@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS)
def test_malformed_json_bodies(client: TestClient, alice: Publisher, method: str,
                               path: str) -> None:
    alice.publish("scale", "1.0.0")
    for label, body in BAD_BODIES:
        response = client.request(method, path, content=body, headers={
            **auth(alice.token), "content-type": "application/json"})
        _check(response, f"{method} {path} with {label}")


def test_bad_query_values(client: TestClient) -> None:
    for params in ({"limit": "-5"}, {"limit": "1e9"}, {"offset": "x"}, {"sort": "DROP"},
                   {"kind": "x"}, {"limit": "99999999999999999999999"},
                   {"offset": "99999999999999999999999"}):
        _check(client.get(F, params=params), str(params))
    _check(client.get("/api/v1/keys", params={"namespace": "x" * 100}), "long namespace")


def test_odd_requests(client: TestClient, alice: Publisher) -> None:
    _check(client.get("/api/v1/nothing-here"), "unknown route")
    response = client.patch(f"{F}/alice/scale")
    _check(response, "unknown method")
    assert response.status_code == 405
    _check(client.get("/api/v1/whoami", headers=auth("x" * 10_000)), "huge token")
    _check(client.delete("/api/v1/tokens/-1", headers=auth(alice.token)), "negative token id")
    _check(client.delete("/api/v1/tokens/99999999999999999999999", headers=auth(alice.token)),
           "huge token id")


def test_unexpected_errors_are_500_without_internals(
        app: FastAPI, caplog: pytest.LogCaptureFixture) -> None:
    def explode() -> None:
        raise RuntimeError("secret internals at /srv/hub")

    app.add_api_route("/explode", explode)
    response = make_client(app, raise_server_exceptions=False).get("/explode")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "secret" not in response.text and "Traceback" not in response.text
    assert "secret internals" in caplog.text  # logged server-side
