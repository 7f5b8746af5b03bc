"""Acceptance 5: a 1 GiB blob pushes and pulls while the hub's peak RSS stays under 200 MiB,
with the blobs in a folder and in S3 (issue 7, acceptance 4).

The hub runs as a real process; its peak resident set (`VmHWM` in /proc/PID/status) is read
after the transfers, so any moment of buffering the whole blob would show. The push is the
one real clients make (POST a session, PATCH the whole blob as a stream, PUT the digest).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import start_hub
from tests.oci.helpers import auth
from tests.s3 import S3Server, s3_env

pytestmark = pytest.mark.slow

GiB = 1 << 30
BLOCK = 1 << 20
PEAK_LIMIT = 200 * (1 << 20)


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def _blob(block: bytes) -> Iterator[bytes]:
    """1 GiB: the block 1024 times, each copy stamped with its number."""
    for i in range(GiB // BLOCK):
        yield i.to_bytes(8, "big") + block[8:]


@pytest.fixture(params=["folder", "s3"])
def storage_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The hub's blobs in its data dir, or in a bucket of the session's S3 server."""
    if request.param == "folder":
        return {}
    server: S3Server = request.getfixturevalue("s3")
    return s3_env(server, server.create_bucket())


def test_a_1_gib_blob_round_trips_in_bounded_memory(tmp_path: Path,
                                                   storage_env: dict[str, str]) -> None:
    hub = start_hub(tmp_path / "data", extra_env=storage_env)
    try:
        token = httpx.post(f"{hub.url}/api/v1/tokens", headers=auth(hub.admin_token), json={
            "name": "big", "user": "alice", "scopes": ["publish:alice"]}).json()["token"]
        block = os.urandom(BLOCK)
        expected = hashlib.sha256()
        for chunk in _blob(block):
            expected.update(chunk)
        digest = "sha256:" + expected.hexdigest()
        before = _peak_rss(hub.proc.pid)

        with httpx.Client(base_url=hub.url, headers=auth(token), timeout=300) as client:
            session = client.post("/v2/alice/big/blobs/uploads/")
            assert session.status_code == 202, session.text
            sent = client.patch(session.headers["Location"], content=_blob(block),
                                headers={"Content-Type": "application/octet-stream"})
            assert sent.status_code == 202, sent.text
            assert sent.headers["Range"] == f"0-{GiB - 1}"
            done = client.put(sent.headers["Location"], params={"digest": digest})
            assert done.status_code == 201, done.text

            received = hashlib.sha256()
            size = 0
            with client.stream("GET", f"/v2/alice/big/blobs/{digest}") as response:
                assert response.status_code == 200
                assert response.headers["Content-Length"] == str(GiB)
                for chunk in response.iter_bytes(BLOCK):
                    received.update(chunk)
                    size += len(chunk)
        assert size == GiB and "sha256:" + received.hexdigest() == digest

        peak = _peak_rss(hub.proc.pid)
        assert peak < PEAK_LIMIT, (
            f"hub peak RSS {peak / 2**20:.0f} MiB (before the transfers: "
            f"{before / 2**20:.0f} MiB)")
    finally:
        hub.stop()
