"""Reading functions: cards, versions, resolution, downloads; and yank, unyank, tags, delete."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import pytest

from fnhub.core.errors import NotFound
from fnhub.hub.context import Hub
from fnhub.hub.services import functions
from tests.helpers import sql_statements
from tests.hub.factories import Publisher, auth, counts, error_code

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

BASE = "/api/v1/functions/alice/scale"


def _resolve(client: TestClient, spec: str | None) -> tuple[int, str]:
    params = {"version": spec} if spec is not None else {}
    response = client.get(BASE + "/resolve", params=params)
    body = response.json()
    return response.status_code, body.get("version") or body["error"]["code"]


def test_resolve_skips_yanked_and_prereleases(client: TestClient, alice: Publisher) -> None:
    for version in ("1.0.0", "1.1.0", "1.2.0", "2.0.0-rc.1"):
        alice.publish("scale", version)
    yank = client.post(BASE + "/versions/1.2.0/yank", headers=auth(alice.token),
                       json={"reason": "broken output"})
    assert yank.status_code == 200 and yank.json()["yank_reason"] == "broken output"

    assert _resolve(client, None) == (200, "1.1.0")
    assert _resolve(client, "latest") == (200, "1.1.0")
    assert _resolve(client, "^1.0") == (200, "1.1.0")
    assert _resolve(client, "1.2.0") == (200, "1.2.0")  # an exact pin still gets a yanked one
    assert _resolve(client, ">=2.0.0-rc.1") == (200, "2.0.0-rc.1")
    assert _resolve(client, "^2") == (404, "no_matching_version")
    assert _resolve(client, "!!") == (400, "invalid_version")
    exact = client.get(BASE + "/resolve", params={"version": "1.2.0"}).json()
    assert exact["yanked"] is True and exact["digest"].startswith("sha256:")

    card = client.get(BASE).json()
    assert card["latest_version"] == "1.1.0"
    assert [v["version"] for v in card["versions"]] == ["2.0.0-rc.1", "1.2.0", "1.1.0", "1.0.0"]
    assert [v["yanked"] for v in card["versions"]] == [False, True, False, False]

    unyank = client.post(BASE + "/versions/1.2.0/unyank", headers=auth(alice.token), json={})
    assert unyank.status_code == 200 and unyank.json()["yanked"] is False
    assert unyank.json()["yank_reason"] is None
    assert _resolve(client, "latest") == (200, "1.2.0")


def test_resolve_reads_one_narrow_select_of_versions(hub: Hub, alice: Publisher) -> None:
    """Guard (resolution is a hot path): one SELECT, of the version columns resolution
    needs, the function found by namespace and name and the tags joined in the same
    statement; never the function's row, the manifests or the envelopes. An unknown
    function is still a NotFound with a hint."""
    for version in ("1.0.0", "1.1.0"):
        alice.publish("scale", version)
    with sql_statements(hub.db.engine) as recorded:
        resolved = functions.resolve_version(hub, "alice", "scale", "^1")
    assert resolved.version == "1.1.0" and resolved.digest.startswith("sha256:")
    selects = [sql for sql, _ in recorded if sql.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1, selects
    assert "FROM versions" in selects[0] and "JOIN tags" in selects[0]
    assert "manifest" not in selects[0] and "envelope" not in selects[0]
    assert "functions.description" not in selects[0]
    with pytest.raises(NotFound, match="no function alice/scal") as missing:
        functions.resolve_version(hub, "alice", "scal", "^1")
    assert missing.value.hint == "did you mean alice/scale?"


@pytest.mark.parametrize("path", ["/resolve?version=1.0.0", "/versions/1.0.0"])
def test_resolution_and_versions_revalidate_by_etag(client: TestClient, alice: Publisher,
                                                    path: str) -> None:
    """The answers carry an ETag (a hash of the answer) and `no-cache`: a client holding
    the current answer gets a 304; a change (a yank) gives a new ETag."""
    alice.publish("scale", "1.0.0")
    first = client.get(BASE + path)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and "no-cache" in first.headers["Cache-Control"]
    again = client.get(BASE + path, headers={"If-None-Match": etag})
    assert (again.status_code, again.content, again.headers["ETag"]) == (304, b"", etag)
    client.post(BASE + "/versions/1.0.0/yank", headers=auth(alice.token), json={"reason": "x"})
    changed = client.get(BASE + path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert changed.json()["yanked"] is True


def test_yank_needs_reason_and_ownership(client: TestClient, alice: Publisher,
                                         bob: Publisher) -> None:
    alice.publish("scale", "1.0.0")
    url = BASE + "/versions/1.0.0/yank"
    assert client.post(url, headers=auth(alice.token), json={}).status_code == 400
    assert client.post(url, headers=auth(alice.token), json={"reason": ""}).status_code == 400
    assert client.post(url, json={"reason": "x"}).status_code == 401
    by_bob = client.post(url, headers=auth(bob.token), json={"reason": "x"})
    assert (by_bob.status_code, error_code(by_bob)) == (403, "forbidden")
    assert client.get(BASE + "/versions/1.0.0").json()["yanked"] is False


def test_download_streams_with_etag_and_counts(client: TestClient, hub: Hub,
                                               alice: Publisher) -> None:
    upload = alice.upload("scale", "1.0.0")
    digest = alice.send(upload).json()["package"]["digest"]
    url = BASE + "/versions/1.0.0/package"
    with client.stream("GET", url) as response:
        assert response.status_code == 200
        body = b"".join(response.iter_bytes())
        headers = response.headers
    assert body == upload.package
    assert "sha256:" + hashlib.sha256(body).hexdigest() == digest
    assert headers["etag"] == f'"{digest}"'
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    assert headers["content-length"] == str(len(upload.package))
    assert headers["content-type"] == "application/gzip"
    assert 'filename="scale-1.0.0.tar.gz"' in headers["content-disposition"]

    assert client.get(url).status_code == 200
    cached = client.get(url, headers={"If-None-Match": f'"{digest}"'})
    assert cached.status_code == 304 and cached.content == b""
    assert client.get(BASE + "/versions/1.0.0").json()["downloads"] == 2
    assert client.get(BASE).json()["downloads"] == 2
    assert 'fnhub_package_downloads_total 2.0' in client.get("/metrics").text


def test_download_of_missing_version_is_404(client: TestClient, alice: Publisher) -> None:
    alice.publish("scale", "1.0.0")
    missing = client.get(BASE + "/versions/1.0.1/package")
    assert (missing.status_code, error_code(missing)) == (404, "not_found")
    assert "1.0.0" in missing.json()["error"]["hint"]
    bad = client.get(BASE + "/versions/one/package")
    assert (bad.status_code, error_code(bad)) == (400, "invalid_version")


def test_tags(client: TestClient, alice: Publisher, bob: Publisher) -> None:
    alice.publish("scale", "1.0.0")
    alice.publish("scale", "1.1.0")
    put = client.put(BASE + "/tags/stable", headers=auth(alice.token), json={"version": "1.0.0"})
    assert put.status_code == 200 and put.json()["tags"] == {"stable": "1.0.0"}
    assert _resolve(client, "stable") == (200, "1.0.0")
    moved = client.put(BASE + "/tags/stable", headers=auth(alice.token),
                       json={"version": "1.1.0"})
    assert moved.json()["tags"] == {"stable": "1.1.0"}
    assert _resolve(client, "stable") == (200, "1.1.0")
    assert _resolve(client, "nightly") == (404, "no_matching_version")

    for bad in ("latest", "1.0.0", "1", "v1.2", "Stable", "-x"):
        response = client.put(BASE + f"/tags/{bad}", headers=auth(alice.token),
                              json={"version": "1.0.0"})
        assert response.status_code == 400, (bad, response.text)
    unknown = client.put(BASE + "/tags/beta", headers=auth(alice.token), json={"version": "3.0.0"})
    assert unknown.status_code == 404
    not_owner = client.put(BASE + "/tags/beta", headers=auth(bob.token), json={"version": "1.0.0"})
    assert not_owner.status_code == 403


def test_delete_removes_blob_and_tags_but_keeps_number(client: TestClient, hub: Hub,
                                                       alice: Publisher) -> None:
    alice.publish("scale", "1.0.0")
    digest = alice.publish("scale", "1.1.0")["package"]["digest"]
    client.put(BASE + "/tags/stable", headers=auth(alice.token), json={"version": "1.1.0"})
    gone = client.delete(BASE + "/versions/1.1.0", headers=auth(alice.token))
    assert gone.status_code == 204
    assert not hub.store.exists(digest)
    assert counts(hub)["versions"] == 2  # the row stays: 1.1.0 is reserved

    card = client.get(BASE).json()
    assert [v["version"] for v in card["versions"]] == ["1.0.0"]
    assert card["tags"] == {} and card["latest_version"] == "1.0.0"
    detail = client.get(BASE + "/versions/1.1.0")
    assert detail.status_code == 404 and "deleted" in detail.json()["error"]["message"]
    assert client.get(BASE + "/versions/1.1.0/package").status_code == 404
    assert _resolve(client, "1.1.0") == (404, "no_matching_version")
    again = client.delete(BASE + "/versions/1.1.0", headers=auth(alice.token))
    assert again.status_code == 404

    client.delete(BASE + "/versions/1.0.0", headers=auth(alice.token))
    listing = client.get("/api/v1/functions").json()
    assert listing["total"] == 0  # nothing live is left to list
    assert client.get(BASE).json()["versions"] == []


def test_unknown_function_hints_the_closest(client: TestClient, alice: Publisher) -> None:
    alice.publish("load-dataset", "1.0.0")
    response = client.get("/api/v1/functions/alice/load_dataset")
    assert (response.status_code, error_code(response)) == (404, "not_found")
    assert response.json()["error"]["hint"] == "did you mean alice/load-dataset?"
    elsewhere = client.get("/api/v1/functions/alicee/load-dataset")
    assert elsewhere.json()["error"]["hint"] == "did you mean alice/load-dataset?"


def test_services_are_callable_directly(hub: Hub, alice: Publisher) -> None:
    alice.publish("scale", "1.0.0")
    assert functions.get_function(hub, "alice", "scale").latest_version == "1.0.0"
    assert functions.resolve_version(hub, "alice", "scale", "^1").version == "1.0.0"
    with pytest.raises(NotFound):
        functions.get_version(hub, "alice", "scale", "2.0.0")
