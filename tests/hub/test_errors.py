"""One error renderer (`fnhub.hub.errors.render_error`) and one error tree.

Every code the hub puts on the wire is a class of `fnhub.core.errors` with the status it is
sent with, so a client turns it back into that class; a failing blob store is a typed
StorageUnavailable (503 `storage_unavailable`), in the API's JSON body, the registry's OCI
body under `/v2/` and an HTML page for a browser on a catalog page.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI

import fnhub.hub
from fnhub.core.errors import FnhubError, StorageUnavailable
from fnhub.hub.app import create_app
from fnhub.hub.context import Hub
from fnhub.hub.oci.errors import RegistryError
from fnhub.hub.settings import ServerSettings
from fnhub.hub.storage import StagingWriter
from tests.helpers import free_port
from tests.hub.factories import Publisher, auth, make_client, make_publisher
from tests.oci.helpers import Pusher, digest, errors
from tests.s3 import S3Server

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

F = "/api/v1/functions"


def _subclasses(cls: type[FnhubError]) -> list[type[FnhubError]]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in _subclasses(child))]


def _round_trips(code: str, status: int) -> None:
    """A client reading `{"error": {"code": code}}` with `status` gets the class of that code,
    whose status is `status`."""
    rebuilt = FnhubError.from_payload({"error": {"code": code, "message": "m"}}, status)
    assert (rebuilt.code, rebuilt.status) == (code, status), (code, status, type(rebuilt))


def _answered(response: httpx.Response, code: str, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    _round_trips(code, status)


def test_every_error_class_of_the_hub_has_a_code_of_the_tree() -> None:
    """Walks every error class the hub defines (all its modules imported): each JSON answer
    it can become carries a code the client maps back to a class of the same status."""
    for module in pkgutil.walk_packages(fnhub.hub.__path__, "fnhub.hub."):
        if ".migrations." not in module.name:
            importlib.import_module(module.name)
    classes = _subclasses(FnhubError)
    hub_defined = [cls for cls in classes if cls.__module__.startswith("fnhub.hub.")]
    assert len(hub_defined) > 15  # the registry's errors, NoSuchEndpoint, PageNotFound, ...
    for cls in classes:
        if issubclass(cls, RegistryError):  # answered under /v2/ only, with the spec's codes
            rebuilt = FnhubError.from_payload({"error": {"code": cls.code}}, cls.status)
            assert rebuilt.code == cls.code, cls
        else:
            _round_trips(cls.code, cls.status)


def test_every_code_the_app_answers_with_is_a_class_of_the_tree(tmp_path: Path) -> None:
    """The hub's own answers (no route, no such method, a refused parameter, an unexpected
    failure, the rate limit, ...) walked through a real app."""
    app = create_app(ServerSettings(data_dir=tmp_path / "data", rate_limit_search="4/hour",
                                    max_package_size=64 * 1024))
    try:
        def explode() -> None:
            raise RuntimeError("internals")

        app.add_api_route("/api/v1/explode", explode)
        client = make_client(app, raise_server_exceptions=False)
        admin = (tmp_path / "data" / "admin-token").read_text().strip()
        alice = make_publisher(client, admin, "alice", tmp_path / "work")
        alice.publish("scale", "1.0.0")
        _answered(client.get("/api/v1/nothing"), "not_found", 404)
        _answered(client.patch(f"{F}/alice/scale"), "method_not_allowed", 405)
        _answered(client.get(F, params={"limit": 0}), "invalid_input", 400)
        _answered(client.get("/api/v1/explode"), "internal_error", 500)
        _answered(client.get(f"{F}/alice/scael"), "not_found", 404)
        _answered(client.get("/api/v1/whoami", headers=auth("fnhub_nope")), "unauthorized", 401)
        _answered(alice.send(alice.upload("scale", "1.0.0")), "version_exists", 409)
        big = alice.upload("big", "1.0.0")
        big.package = os.urandom(128 * 1024)
        _answered(alice.send(big), "payload_too_large", 413)
        _answered(client.post("/api/v1/namespaces", json={"name": "library"},
                              headers=auth(alice.token)), "forbidden", 403)
        searches = [client.get(F) for _ in range(4)]  # the 5th search of the hour
        assert [r.status_code for r in searches] == [200, 200, 200, 429]
        limited = searches[-1]
        _answered(limited, "rate_limited", 429)
        assert limited.headers["Retry-After"] and limited.headers["X-RateLimit-Limit"] == "4"
    finally:
        app.state.hub.close()


@pytest.fixture
def s3_app(s3: S3Server, tmp_path: Path) -> Any:
    app = create_app(ServerSettings(
        data_dir=tmp_path / "data", storage_url=f"s3://{s3.create_bucket()}/hub",
        s3_endpoint_url=s3.endpoint))
    yield app
    app.state.hub.close()


def _unreachable(hub: Hub) -> None:
    """Point the hub's storage at a loopback port nothing listens on (S3 is down)."""
    from fnhub.hub.s3storage import S3BlobStore, S3UploadParts

    store = hub.store
    assert isinstance(store, S3BlobStore)
    down = S3BlobStore(store.bucket, store.prefix, store.staging,
                       endpoint_url=f"http://127.0.0.1:{free_port()}")
    hub.store, hub.parts = down, S3UploadParts(down)


def _unavailable_json(response: httpx.Response) -> None:
    _answered(response, "storage_unavailable", 503)
    message = response.json()["error"]["message"]
    assert message.startswith("the hub's blob storage is unavailable: S3 request failed "
                              "(EndpointConnectionError)"), message
    assert "127.0.0.1" not in message  # where the store is goes to the log only


@pytest.mark.slow  # boto3 retries the refused connections with a backoff
def test_an_unreachable_s3_is_a_503_in_each_body(s3_app: FastAPI, tmp_path: Path) -> None:
    client = make_client(s3_app)
    admin = (tmp_path / "data" / "admin-token").read_text().strip()
    alice: Publisher = make_publisher(client, admin, "alice", tmp_path / "work")
    alice.publish("scale", "1.0.0")
    layer = b"layer bytes" * 100
    assert Pusher(client, alice.token).blob("alice/tool", layer).status_code == 201

    _unreachable(s3_app.state.hub)
    _unavailable_json(client.get(f"{F}/alice/scale/versions/1.0.0/package"))
    _unavailable_json(alice.send(alice.upload("scale", "1.0.1")))
    blob = client.get(f"/v2/alice/tool/blobs/{digest(layer)}", headers=auth(alice.token))
    assert blob.status_code == 503 and errors(blob) == ["UNKNOWN"], blob.text
    assert "unavailable: S3 request failed" in blob.json()["errors"][0]["message"]
    upload = client.post("/v2/alice/tool/blobs/uploads/", headers=auth(alice.token))
    assert upload.status_code == 503 and errors(upload) == ["UNKNOWN"], upload.text
    page = client.get("/alice/scale", headers={"Accept": "text/html"})  # reads the README
    assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
    assert "blob storage is unavailable" in page.text
    assert client.get("/api/v1/functions/alice/scale").status_code == 200  # no blob needed


def test_a_full_disk_is_storage_unavailable(tmp_path: Path) -> None:
    """/dev/full answers every write with ENOSPC, as a disk that filled up does."""
    with Path("/dev/full").open("wb") as full:
        writer = StagingWriter(full, tmp_path / "never", None)
        with pytest.raises(StorageUnavailable, match="disk error: No space left on device"):
            writer.write(b"x" * (1 << 20))
            writer.finish()


def test_an_oserror_that_is_not_the_disk_failing_stays_a_500(client: TestClient, hub: Hub,
                                                             alice: Publisher) -> None:
    """A store whose staging folder is gone fails with an OSError that is not the disk
    failing: a bug, so a 500 without internals, never a 503 claiming storage trouble."""
    upload = alice.upload("scale", "1.0.0")
    staging = hub.store.writer().finish().path.parent
    for leftover in staging.iterdir():
        leftover.unlink()
    staging.rmdir()
    response = make_client(client.app, raise_server_exceptions=False).post(
        f"{F}/alice/scale/versions", headers=auth(alice.token), files=upload.files())
    _answered(response, "internal_error", 500)
