"""Storage failures and payload bytes in the hub's answers and `/metrics`.

A real hub on a real S3 endpoint (moto's server as a process of its own) keeps answering when
that storage fails: its bucket deleted, then the server killed. Every request that needs the
blob store gets a 503 naming the failure (the OCI error body under `/v2/`), never a 500, and
`fnhub_storage_errors_total` counts them by route.
"""

from __future__ import annotations

import errno
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import httpx
import pytest

from fnhub.hub.storage import storage_problem
from tests.helpers import free_port, start_hub
from tests.hub.factories import Publisher, error_code, make_publisher
from tests.hub.prometheus import sample
from tests.oci.helpers import Pusher, digest, errors
from tests.s3 import AWS_ENV

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

MOTO_BIN = str(Path(sys.executable).parent / "moto_server")
PUBLISH = "/api/v1/functions/{ns}/{name}/versions"
PACKAGE = "/api/v1/functions/{ns}/{name}/versions/{version}/package"
BLOB = "/v2/{name:path}/blobs/{digest}"


def test_payload_bytes_count_the_exact_package_size(client: TestClient,
                                                    alice: Publisher) -> None:
    upload = alice.upload("scale", "1.0.0")
    assert alice.send(upload).status_code == 201
    assert alice.send(upload).status_code == 409  # received, then refused: still received
    package = client.get("/api/v1/functions/alice/scale/versions/1.0.0/package")
    assert package.content == upload.package

    text = client.get("/metrics").text
    size = len(upload.package)
    name = "fnhub_payload_bytes_total"
    assert sample(text, name, direction="received", kind="package") == 2 * size
    assert sample(text, name, direction="sent", kind="package") == size


def test_only_failing_disks_count_as_storage_problems() -> None:
    assert storage_problem(OSError(errno.ENOSPC, "No space left on device")) == (
        "disk error: No space left on device")
    assert storage_problem(OSError(errno.EROFS, "Read-only file system")) is not None
    assert storage_problem(FileNotFoundError(errno.ENOENT, "gone")) is None  # a bug: a 500
    assert storage_problem(ValueError("nope")) is None


@dataclass
class MotoProcess:
    endpoint: str
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def moto(tmp_path: Path) -> Iterator[MotoProcess]:
    """moto's S3 as its own process, so killing it leaves nothing listening on its port."""
    port = free_port()
    with (tmp_path / "moto.log").open("wb") as log:
        proc = subprocess.Popen([MOTO_BIN, "-H", "127.0.0.1", "-p", str(port)],
                                stdout=log, stderr=subprocess.STDOUT)
    server = MotoProcess(f"http://127.0.0.1:{port}", proc)
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(server.endpoint, timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or proc.poll() is not None:
                server.stop()
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.2)
    yield server
    server.stop()


def _s3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name=AWS_ENV["AWS_DEFAULT_REGION"],
                        aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"])


def _unavailable(response: httpx.Response, problem: str) -> None:
    assert response.status_code == 503, response.text
    assert error_code(response) == "storage_unavailable"
    message = response.json()["error"]["message"]
    assert message.startswith("the hub's blob storage is unavailable: ") and problem in message


@pytest.mark.slow
def test_a_failing_s3_is_a_503_naming_it_and_is_counted(tmp_path: Path,
                                                         moto: MotoProcess) -> None:
    s3 = _s3_client(moto.endpoint)
    s3.create_bucket(Bucket="hub")
    hub = start_hub(tmp_path / "data", extra_env={
        **AWS_ENV, "FNHUB_SERVER_STORAGE_URL": "s3://hub/blobs",
        "FNHUB_SERVER_S3_ENDPOINT_URL": moto.endpoint})
    try:
        with httpx.Client(base_url=hub.url, timeout=60) as http:
            alice = make_publisher(http, hub.admin_token, "alice", tmp_path)
            alice.publish("scale", "1.0.0")
            layer = b"layer bytes" * 1000
            assert Pusher(http, alice.token).blob("alice/tool", layer).status_code == 201
            package = "/api/v1/functions/alice/scale/versions/1.0.0/package"
            assert http.get(package).status_code == 200

            for obj in s3.list_objects_v2(Bucket="hub").get("Contents", []):
                s3.delete_object(Bucket="hub", Key=obj["Key"])
            s3.delete_bucket(Bucket="hub")
            _unavailable(alice.send(alice.upload("scale", "1.0.1")), "NoSuchBucket")
            _unavailable(http.get(package), "NoSuchBucket")
            assert http.get("/api/v1/functions/alice/scale/versions/1.0.1").status_code == 404

            moto.stop()
            _unavailable(alice.send(alice.upload("scale", "1.0.2")), "EndpointConnectionError")
            _unavailable(http.get(package), "EndpointConnectionError")
            blob = http.get(f"/v2/alice/tool/blobs/{digest(layer)}",
                            headers={"Authorization": f"Bearer {alice.token}"})
            assert blob.status_code == 503 and errors(blob) == ["UNKNOWN"]
            assert "EndpointConnectionError" in blob.json()["errors"][0]["message"]
            assert http.get("/healthz").status_code == 200  # the hub itself is fine

            text = http.get("/metrics").text
        counted = "fnhub_storage_errors_total"
        assert sample(text, counted, method="POST", route=PUBLISH) == 2
        assert sample(text, counted, method="GET", route=PACKAGE) == 2
        assert sample(text, counted, method="GET", route=BLOB) == 1
        assert sample(text, "fnhub_http_requests_total", method="GET", route=PACKAGE,
                      status="503") == 2
        assert 'status="500"' not in text
        assert "Traceback" not in hub.log.read_text()
    finally:
        hub.stop()
