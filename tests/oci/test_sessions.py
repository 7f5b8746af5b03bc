"""Upload sessions live in the database and staging files, not in a process's memory."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlmodel import select

from fnhub.hub.app import create_app
from fnhub.hub.context import Hub
from fnhub.hub.models import utcnow
from fnhub.hub.oci.models import OciUpload, OciUploadPart
from fnhub.hub.oci.uploads import UPLOAD_TTL
from fnhub.hub.settings import ServerSettings
from tests.helpers import blob_digests, leftover_names
from tests.hub.factories import make_client
from tests.oci.helpers import Pusher, digest, errors

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

REPO = "alice/demo"


def test_a_session_started_in_one_process_finishes_in_another(
        settings: ServerSettings, alice: Pusher) -> None:
    data = b"0123456789" * 1000
    started = alice.http.post(f"/v2/{REPO}/blobs/uploads/", headers=alice.headers)
    location = started.headers["Location"]
    alice.http.patch(location, content=data[:3000], headers=alice.headers)

    other = create_app(settings)  # a second hub process on the same data dir and database
    try:
        second: TestClient = make_client(other)
        more = second.patch(location, content=data[3000:], headers={
            **alice.headers, "Content-Range": f"3000-{len(data) - 1}"})
        assert more.status_code == 202, more.text
        done = second.put(location, params={"digest": digest(data)}, headers=alice.headers)
        assert done.status_code == 201, done.text
    finally:
        other.state.hub.close()
    assert alice.http.get(f"/v2/{REPO}/blobs/{digest(data)}").content == data


def test_chunks_are_staged_files_and_finishing_leaves_none(alice: Pusher, hub: Hub) -> None:
    location = alice.http.post(f"/v2/{REPO}/blobs/uploads/", headers=alice.headers
                               ).headers["Location"]
    for part in (b"a" * 100, b"b" * 100, b"c" * 100):
        location = alice.http.patch(location, content=part, headers=alice.headers
                                    ).headers["Location"]
    with hub.db.read() as session:
        parts = session.exec(select(OciUploadPart)).all()
    assert [p.size for p in parts] == [100, 100, 100]
    assert sorted(p.path for p in parts) == leftover_names(hub.store)
    data = b"a" * 100 + b"b" * 100 + b"c" * 100
    assert alice.http.put(location, params={"digest": digest(data)},
                          headers=alice.headers).status_code == 201
    assert leftover_names(hub.store) == []
    assert digest(data) in blob_digests(hub.store)


def test_whole_blob_in_the_closing_put_and_empty_blobs(alice: Pusher) -> None:
    for data in (b"sent whole with the PUT", b""):
        location = alice.http.post(f"/v2/{REPO}/blobs/uploads/", headers=alice.headers
                                   ).headers["Location"]
        done = alice.http.put(location, params={"digest": digest(data)}, content=data,
                              headers=alice.headers)
        assert done.status_code == 201, done.text
        got = alice.http.get(f"/v2/{REPO}/blobs/{digest(data)}")
        assert got.content == data and got.headers["Content-Length"] == str(len(data))
    missing = alice.http.put(location, params={"digest": digest(b"")}, headers=alice.headers)
    assert errors(missing) == ["BLOB_UPLOAD_UNKNOWN"]
    no_digest = alice.http.post(f"/v2/{REPO}/blobs/uploads/", headers=alice.headers)
    closing = alice.http.put(no_digest.headers["Location"], headers=alice.headers)
    assert closing.status_code == 400 and errors(closing) == ["DIGEST_INVALID"]


def test_stale_sessions_expire_with_their_chunks(alice: Pusher, hub: Hub) -> None:
    old = alice.http.post(f"/v2/{REPO}/blobs/uploads/", headers=alice.headers
                          ).headers["Location"]
    alice.http.patch(old, content=b"abandoned", headers=alice.headers)
    assert len(leftover_names(hub.store)) == 1
    with hub.db.write() as session:
        for upload in session.exec(select(OciUpload)).all():
            upload.updated_at = utcnow() - UPLOAD_TTL - timedelta(minutes=1)
    alice.http.post(f"/v2/{REPO}/blobs/uploads/", headers=alice.headers)
    assert leftover_names(hub.store) == []
    assert errors(alice.http.get(old, headers=alice.headers)) == ["BLOB_UPLOAD_UNKNOWN"]


def test_a_chunk_whose_size_differs_from_its_range_is_refused(alice: Pusher, hub: Hub) -> None:
    location = alice.http.post(f"/v2/{REPO}/blobs/uploads/", headers=alice.headers
                               ).headers["Location"]
    response = alice.http.patch(location, content=b"12345", headers={
        **alice.headers, "Content-Range": "0-9"})
    assert response.status_code == 400 and errors(response) == ["BLOB_UPLOAD_INVALID"]
    assert leftover_names(hub.store) == []
    assert alice.http.get(location, headers=alice.headers).headers["Range"] == "0-0"
    malformed = alice.http.patch(location, content=b"1", headers={
        **alice.headers, "Content-Range": "bytes 5-1"})
    assert errors(malformed) == ["BLOB_UPLOAD_INVALID"]


def test_a_blob_is_read_for_a_get_in_chunks_of_at_most_256_kib(alice: Pusher, hub: Hub) -> None:
    """What one pull stream holds at a time is bounded by the chunk it reads (skopeo pulls
    layers in parallel, so that bound times the streams is the hub's memory above idle)."""
    from fnhub.hub.oci.blobs import read_blob

    data = bytes(range(256)) * 4096 * 3  # 3 MiB
    assert alice.blob(REPO, data).status_code == 201
    chunks = list(read_blob(hub, digest(data)))
    assert b"".join(chunks) == data
    assert max(len(chunk) for chunk in chunks) <= 256 * 1024
    assert alice.http.get(f"/v2/{REPO}/blobs/{digest(data)}",
                          headers=alice.headers).content == data


def test_a_local_blob_is_streamed_without_a_thread_per_chunk(
        alice: Pusher, hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    """Guard (pull throughput): a blob in the folder store is read on the event loop, not
    handed to a worker thread chunk by chunk (2,048 hand-offs for a 512 MiB layer)."""
    data = bytes(range(256)) * 4096 * 3  # 3 MiB: 12 chunks
    assert alice.blob(REPO, data).status_code == 201
    threads: list[str] = []
    opened = type(hub.store).open

    def open_and_record(self: Any, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        for chunk in opened(self, *args, **kwargs):
            threads.append(threading.current_thread().name)
            yield chunk

    monkeypatch.setattr(type(hub.store), "open", open_and_record)
    assert alice.http.get(f"/v2/{REPO}/blobs/{digest(data)}",
                          headers=alice.headers).content == data
    assert len(threads) == 12 and len(set(threads)) == 1, threads
    assert not threads[0].startswith("AnyIO worker thread"), threads
