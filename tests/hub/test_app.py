"""The app around the API: health, metrics, the index page, OpenAPI, and `serve()` for real."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.helpers import ROOT, free_port
from tests.hub.factories import Publisher

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


def test_healthz_and_docs(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    assert "/api/v1/functions/{ns}/{name}/versions" in paths
    publish = paths["/api/v1/functions/{ns}/{name}/versions"]["post"]
    assert "multipart/form-data" in publish["requestBody"]["content"]
    assert "/api/v1/functions/{ns}/{name}/resolve" in paths


def test_metrics_count_requests_by_route(client: TestClient, alice: Publisher) -> None:
    alice.publish("scale", "1.0.0")
    client.get("/api/v1/functions/alice/scale")
    client.get("/api/v1/functions/alice/nope")
    text = client.get("/metrics").text
    route = "/api/v1/functions/{ns}/{name}"
    assert f'fnhub_http_requests_total{{method="GET",route="{route}",status="200"}} 1.0' in text
    assert f'fnhub_http_requests_total{{method="GET",route="{route}",status="404"}} 1.0' in text
    assert 'fnhub_publishes_total{outcome="ok"} 1.0' in text
    assert "fnhub_http_request_duration_seconds_bucket" in text
    assert "alice/nope" not in text  # raw paths never become labels


def test_failed_publishes_are_counted_by_code(client: TestClient, alice: Publisher) -> None:
    upload = alice.upload("scale", "1.0.0")
    alice.send(upload)
    alice.send(upload)
    assert 'fnhub_publishes_total{outcome="version_exists"} 1.0' in client.get("/metrics").text


def test_index_lists_functions_escaped(client: TestClient, alice: Publisher) -> None:
    alice.publish("scale", "1.0.0", description="<script>alert(1)</script> & more")
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "alice/scale" in page.text and "1.0.0" in page.text
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text


@pytest.mark.slow
def test_serve_seeds_and_listens(tmp_path: Path) -> None:
    """`serve()` in its own process: prints the token file's path (never the token) and the
    index key's id, seeds."""
    port = free_port()
    data = tmp_path / "data"
    code = (
        "from pathlib import Path\n"
        "from fnhub.hub.server import serve\n"
        "from fnhub.hub.settings import ServerSettings\n"
        f"serve(ServerSettings(data_dir={str(data)!r}, port={port}),"
        f" seed_catalog=Path({str(ROOT / 'catalog')!r}))\n"
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=out,
                                stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        listed = httpx.get(url + "/api/v1/functions", params={"namespace": "library"}).json()
        assert listed["total"] >= 1
        index_key = httpx.get(url + "/api/v1/index-key").json()["keyid"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    output = log.read_text()
    token = (data / "admin-token").read_text().strip()
    assert str(data / "admin-token") in output
    assert token not in output
    assert "catalog: library/" in output
    assert f"index key {index_key}" in output  # printed at start
