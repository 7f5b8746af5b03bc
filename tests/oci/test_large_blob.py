"""Acceptance 5: a 1 GiB blob pushes and pulls while the hub's peak RSS stays under 200 MiB,
with the blobs in a folder and in S3; and a 1 GiB package publishes to an S3-backed hub
within the same bound (issue 7, acceptance 4).

The hub runs as a real process; its peak resident set (`VmHWM` in /proc/PID/status) is read
after the transfers, so any moment of buffering the whole blob would show. The push is the
one real clients make (POST a session, PATCH the whole blob as a stream, PUT the digest); the
publish is the multipart upload `hub publish` sends. Test data is generated as it is sent
(or written), never held whole in memory.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fnhub.core.packaging import HashingWriter
from tests.helpers import HubProcess, start_hub
from tests.hub.factories import envelope_for, make_publisher, write_function
from tests.hub.prometheus import sample
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


def _check_peak(hub: HubProcess, before: int) -> None:
    peak = _peak_rss(hub.proc.pid)
    assert peak < PEAK_LIMIT, (
        f"hub peak RSS {peak / 2**20:.0f} MiB (before the transfers: {before / 2**20:.0f} MiB)")


def _blob(block: bytes, size: int = GiB) -> Iterator[bytes]:
    """`size` bytes (whole blocks): the block repeated, each copy stamped with its number."""
    for i in range(size // BLOCK):
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

        _check_peak(hub, before)
    finally:
        hub.stop()


# -- a 1 GiB package ----------------------------------------------------------------------

UNPACKED = 448 * BLOCK  # the hub refuses packages that expand to more than 512 MiB
EMPTY_STORED_BLOCK = b"\x00\x00\x00\xff\xff"  # deflate: a stored block of no bytes


class _Reader:
    """`read(n)` over a stream of blocks, as tarfile copies a member's data."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self._block = b""
        self._at = 0

    def read(self, size: int) -> bytes:
        out = bytearray()
        while len(out) < size:
            if self._at == len(self._block):
                self._block, self._at = next(self._blocks, b""), 0
                if not self._block:
                    break
            piece = self._block[self._at:self._at + size - len(out)]
            self._at += len(piece)
            out += piece
        return bytes(out)


class _PaddedGzip:
    """A gzip stream of stored deflate blocks, to which `pad` adds empty stored blocks: the
    file grows, what it inflates to does not (so a 1 GiB package stays under the hub's
    512 MiB unpacked limit and is still a valid .tar.gz)."""

    def __init__(self, out: HashingWriter) -> None:
        self.out = out
        self._deflate = zlib.compressobj(0, zlib.DEFLATED, 31)  # level 0, gzip wrapper

    def write(self, data: bytes) -> int:
        self.out.write(self._deflate.compress(data))
        return len(data)

    def pad_to(self, size: int) -> None:
        self.out.write(self._deflate.flush(zlib.Z_SYNC_FLUSH))  # byte-aligned, block ended
        run = EMPTY_STORED_BLOCK * (BLOCK // len(EMPTY_STORED_BLOCK))
        while self.out.size < size:
            self.out.write(run)

    def close(self) -> None:
        self.out.write(self._deflate.flush())


def _big_package(folder: Path, out: HashingWriter) -> None:
    """function.yaml, main.py and 448 MiB of incompressible data.bin, padded to 1 GiB."""
    gz = _PaddedGzip(out)
    with tarfile.open(fileobj=gz, mode="w|", copybufsize=BLOCK) as tar:  # type: ignore[call-overload]
        for name in ("function.yaml", "main.py"):
            tar.add(folder / name, arcname=name)
        info = tarfile.TarInfo("data.bin")
        info.size = UNPACKED
        tar.addfile(info, _Reader(_blob(os.urandom(BLOCK), UNPACKED)))  # type: ignore[arg-type]
    gz.pad_to(GiB)
    gz.close()


def test_a_1_gib_package_publishes_to_s3_in_bounded_memory(tmp_path: Path,
                                                           s3: S3Server) -> None:
    bucket = s3.create_bucket()
    hub = start_hub(tmp_path / "data", extra_env={
        **s3_env(s3, bucket), "FNHUB_SERVER_MAX_PACKAGE_SIZE": str(2 * GiB)})
    try:
        with httpx.Client(base_url=hub.url, timeout=600) as http:
            alice = make_publisher(http, hub.admin_token, "alice", tmp_path)
            folder = write_function(tmp_path / "src", "big", "1.0.0", namespace="alice")
            archive = tmp_path / "big-1.0.0.tar.gz"
            with archive.open("wb") as fh:
                written = HashingWriter(fh)
                _big_package(folder, written)
            assert written.size >= GiB
            before = _peak_rss(hub.proc.pid)

            with archive.open("rb") as package:
                response = http.post("/api/v1/functions/alice/big/versions", headers=auth(
                    alice.token), files={
                    "manifest": (None, (folder / "function.yaml").read_text(), "text/yaml"),
                    "envelope": (None, envelope_for("alice/big@1.0.0", written.digest,
                                                    alice.key), "application/json"),
                    "package": ("package.tar.gz", package, "application/gzip")})
            assert response.status_code == 201, response.text
            assert response.json()["package"] == {"digest": written.digest,
                                                  "size": written.size}
            metrics = http.get("/metrics").text
        stored = s3.client().head_object(Bucket=bucket, Key=(
            f"hub/sha256/{written.digest[7:9]}/{written.digest[7:]}"))
        assert stored["ContentLength"] == written.size
        assert sample(metrics, "fnhub_payload_bytes_total", direction="received",
                      kind="package") == written.size
        _check_peak(hub, before)
    finally:
        hub.stop()
