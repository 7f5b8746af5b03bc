"""Blob GETs from an S3-backed hub with presigned downloads on: a 307 to the bucket, whose
bytes are the blob's (ranges too, since S3 honours the client's Range on a presigned GET);
and skopeo, a real client, pulling such a hub's images byte for byte.

With the setting off, the hub streams the blob itself and counts the bytes it sent.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from fnhub.hub.settings import ServerSettings
from tests.helpers import start_hub
from tests.hub.prometheus import sample
from tests.oci.helpers import Pusher, digest, errors, make_image, write_layout
from tests.oci.test_clients import _layout_blobs, _layout_top, _mint, skopeo_ok
from tests.s3 import S3Server, s3_env

REPO = "alice/big"


@pytest.fixture
def settings(tmp_path: Path, s3: S3Server, request: pytest.FixtureRequest) -> ServerSettings:
    """An S3-backed hub, with presigned downloads unless a test's `settings` param is False."""
    return ServerSettings(data_dir=tmp_path / "data", s3_endpoint_url=s3.endpoint,
                          storage_url=f"s3://{s3.create_bucket()}/hub",
                          s3_presigned_downloads=getattr(request, "param", True))


def test_a_blob_get_redirects_to_a_presigned_url_that_serves_the_blob(
        alice: Pusher, s3: S3Server) -> None:
    data = os.urandom(3 << 20)
    assert alice.blob(REPO, data).status_code == 201
    path = f"/v2/{REPO}/blobs/{digest(data)}"

    response = alice.http.get(path, headers=alice.headers, follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["Docker-Content-Digest"] == digest(data)
    location = response.headers["Location"]
    assert location.startswith(f"{s3.endpoint}/")
    assert digest(httpx.get(location).content) == digest(data)

    ranged = alice.http.get(path, headers={**alice.headers, "Range": "bytes=1000-1999"},
                            follow_redirects=False)
    assert ranged.status_code == 307
    part = httpx.get(ranged.headers["Location"], headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == data[1000:2000]

    past_the_end = alice.http.get(path, headers={**alice.headers, "Range": "bytes=99999999-"},
                                  follow_redirects=False)
    assert past_the_end.status_code == 416 and errors(past_the_end) == ["RANGE_NOT_SATISFIABLE"]

    head = alice.http.head(path, headers=alice.headers, follow_redirects=False)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(data))
    missing = alice.http.get(f"/v2/{REPO}/blobs/{digest(b'nope')}", headers=alice.headers,
                             follow_redirects=False)
    assert missing.status_code == 404 and errors(missing) == ["BLOB_UNKNOWN"]


@pytest.mark.parametrize("settings", [False], indirect=True)  # the hub streams blobs itself
def test_blob_bytes_are_counted_as_received_and_sent(alice: Pusher) -> None:
    data = os.urandom(300_000)
    assert alice.blob(REPO, data).status_code == 201
    chunked = os.urandom(5000)
    location = alice.http.post(f"/v2/{REPO}/blobs/uploads/", headers=alice.headers
                               ).headers["Location"]
    location = alice.http.patch(location, content=chunked[:1000], headers=alice.headers
                                ).headers["Location"]
    done = alice.http.put(location, params={"digest": digest(chunked)},
                          content=chunked[1000:], headers=alice.headers)
    assert done.status_code == 201, done.text
    got = alice.http.get(f"/v2/{REPO}/blobs/{digest(data)}", headers=alice.headers)
    assert got.status_code == 200 and got.content == data
    ranged = alice.http.get(f"/v2/{REPO}/blobs/{digest(data)}",
                            headers={**alice.headers, "Range": "bytes=10-19"})
    assert ranged.status_code == 206

    text = alice.http.get("/metrics").text
    counted = "fnhub_payload_bytes_total"
    assert sample(text, counted, direction="received", kind="blob") == len(data) + len(chunked)
    assert sample(text, counted, direction="sent", kind="blob") == len(data) + 10


@pytest.mark.slow
def test_skopeo_pulls_identical_blobs_through_presigned_redirects(
        tmp_path: Path, s3: S3Server) -> None:
    hub = start_hub(tmp_path / "data", extra_env={
        **s3_env(s3, s3.create_bucket()), "FNHUB_SERVER_S3_PRESIGNED_DOWNLOADS": "true"})
    try:
        token = _mint(hub, "alice", "publish:alice")
        host = urlsplit(hub.url).netloc
        image = make_image(3, seed="presigned")
        source = write_layout(tmp_path / "src", "v1", [image])
        with httpx.Client(base_url=hub.url, timeout=60) as http:
            Pusher(http, token).image("alice/app", "v1", image)
        back = tmp_path / "back"
        skopeo_ok("copy", "--src-tls-verify=false", "--src-creds", f"alice:{token}",
                  f"docker://{host}/alice/app:v1", f"oci:{back}:v1")
        assert _layout_top(back) == image.digest
        assert _layout_blobs(back) == _layout_blobs(source)
        for name in _layout_blobs(back):
            assert digest((back / "blobs" / "sha256" / name).read_bytes()) == f"sha256:{name}"

        text = httpx.get(f"{hub.url}/metrics").text  # each blob (config, layers) came from S3
        route = "/v2/{name:path}/blobs/{digest}"
        assert sample(text, "fnhub_http_requests_total", method="GET", route=route,
                      status="307") == len(image.blobs)
        assert sample(text, "fnhub_payload_bytes_total", direction="sent", kind="blob") == 0
    finally:
        hub.stop()
