"""Concurrent publishes against a real uvicorn server on a loopback port (SQLite and
PostgreSQL: there the unique constraints and row locks decide the races)."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from fnhub.hub.app import create_app
from fnhub.hub.context import Hub
from fnhub.hub.settings import ServerSettings
from tests.helpers import free_port
from tests.hub.factories import Upload, counts, make_publisher

WORKERS = 20


@dataclass
class LiveHub:
    url: str
    hub: Hub
    admin_token: str


@pytest.fixture
def live_hub(tmp_path: Path, fresh_database_url: str) -> Iterator[LiveHub]:
    settings = ServerSettings(data_dir=tmp_path / "data", database_url=fresh_database_url)
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield LiveHub(f"http://127.0.0.1:{port}", app.state.hub,
                      (settings.data_dir / "admin-token").read_text().strip())
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        app.state.hub.close()


def make_client_for(live: LiveHub) -> httpx.Client:
    """An httpx client on the live server, for the setup calls make_publisher makes."""
    return httpx.Client(base_url=live.url, timeout=30)


def _send_all(url: str, token: str, uploads: list[Upload]) -> list[int]:
    """POST every upload at once (a barrier lines the threads up), return the statuses."""
    barrier = threading.Barrier(len(uploads))

    def send(upload: Upload) -> int:
        with httpx.Client(base_url=url, timeout=120) as http:
            barrier.wait()
            response = http.post(upload.path, files=upload.files(),
                                 headers={"Authorization": f"Bearer {token}"})
            return response.status_code

    with ThreadPoolExecutor(max_workers=len(uploads)) as pool:
        return list(pool.map(send, uploads))


@pytest.mark.slow
def test_concurrent_publishes_of_one_version(live_hub: LiveHub, tmp_path: Path) -> None:
    with make_client_for(live_hub) as http:
        alice = make_publisher(http, live_hub.admin_token, "alice", tmp_path)
    upload = alice.upload("race", "1.0.0")
    statuses = _send_all(live_hub.url, alice.token, [upload] * WORKERS)
    assert Counter(statuses) == {201: 1, 409: WORKERS - 1}
    assert counts(live_hub.hub) == {"versions": 1, "functions": 1, "namespaces": 1, "blobs": 1,
                                    "staging": 0}


@pytest.mark.slow
def test_concurrent_publishes_of_distinct_versions(live_hub: LiveHub, tmp_path: Path) -> None:
    with make_client_for(live_hub) as http:
        alice = make_publisher(http, live_hub.admin_token, "alice", tmp_path)
    uploads = [alice.upload("many", f"1.0.{i}") for i in range(WORKERS)]
    statuses = _send_all(live_hub.url, alice.token, uploads)
    assert statuses == [201] * WORKERS
    assert counts(live_hub.hub)["blobs"] == WORKERS
    with httpx.Client(base_url=live_hub.url) as http:
        card = http.get("/api/v1/functions/alice/many").json()
    assert card["latest_version"] == f"1.0.{WORKERS - 1}"
    assert len(card["versions"]) == WORKERS



@pytest.mark.slow
def test_interrupted_upload_leaves_no_staging(live_hub: LiveHub, tmp_path: Path) -> None:
    with make_client_for(live_hub) as http:
        alice = make_publisher(http, live_hub.admin_token, "alice", tmp_path)
    upload = alice.upload("cut", "1.0.0")
    boundary = "cut-here"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"package\"; "
            f"filename=\"p.tar.gz\"\r\n\r\n").encode() + upload.package[:200]
    port = int(live_hub.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            f"POST {upload.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {alice.token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(head) + 100_000}\r\n\r\n".encode() + head)
        deadline = time.monotonic() + 10
        while not counts(live_hub.hub)["staging"] and time.monotonic() < deadline:
            time.sleep(0.02)  # the upload has reached staging
        assert counts(live_hub.hub)["staging"] == 1
    deadline = time.monotonic() + 10
    while counts(live_hub.hub)["staging"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert counts(live_hub.hub) == {"versions": 0, "functions": 0, "namespaces": 1, "blobs": 0,
                                    "staging": 0}
