"""The S3 blob store against a real S3 endpoint (moto's server over HTTP)."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from fnhub.core.errors import InvalidInput, NotFound, PayloadTooLarge
from fnhub.hub.context import Hub, open_store
from fnhub.hub.s3storage import S3BlobStore, S3UploadParts
from fnhub.hub.services import maintenance
from fnhub.hub.settings import ServerSettings
from fnhub.hub.upload_parts import LiveUploads, Part, UploadSession
from tests.helpers import leftover_names
from tests.s3 import S3Server

MiB = 1 << 20


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(s3: S3Server, tmp_path: Path) -> S3BlobStore:
    settings = ServerSettings(data_dir=tmp_path, storage_url=f"s3://{s3.create_bucket()}/p/q",
                              s3_endpoint_url=s3.endpoint, s3_part_size=5 * MiB)
    built = open_store(settings)
    assert isinstance(built, S3BlobStore)
    return built


@pytest.fixture
def uploads(store: S3BlobStore) -> S3UploadParts:
    return S3UploadParts(store)


def _part_names(store: S3BlobStore) -> list[str]:
    """Objects upload sessions hold (`<session>/<leaf>`), from the store's leftovers."""
    base = f"s3://{store.bucket}/{store.prefix}uploads/"
    return [name.removeprefix(base) for name in leftover_names(store) if name.startswith(base)]


def _multipart_uploads(store: S3BlobStore) -> list[str]:
    """Keys of the multipart uploads in progress, from the store's leftovers."""
    listed = f"multipart upload of s3://{store.bucket}/"
    return [name.removeprefix(listed) for name in leftover_names(store)
            if name.startswith(listed)]


def _staging(store: S3BlobStore) -> list[str]:
    """Files in local staging, from the store's leftovers."""
    return [name for name in leftover_names(store) if name.startswith(str(store.staging))]


def _keys(s3: S3Server, store: S3BlobStore) -> list[str]:
    listed = s3.client().list_objects_v2(Bucket=store.bucket)
    return sorted(obj["Key"] for obj in listed.get("Contents", []))


def test_round_trip_multipart_ranged_read_and_delete(store: S3BlobStore, s3: S3Server) -> None:
    data = os.urandom(12 * MiB + 123)  # three parts of 5 MiB
    digest = _digest(data)
    staged = store.stage(data[i:i + MiB] for i in range(0, len(data), MiB))
    assert (staged.digest, staged.size) == (digest, len(data))
    assert not store.exists(digest)
    store.commit(staged)
    assert not staged.path.exists() and _staging(store) == []
    assert _keys(s3, store) == [f"p/q/sha256/{digest[7:9]}/{digest[7:]}"]
    assert store.exists(digest) and store.size(digest) == len(data)
    assert b"".join(store.open(digest, chunk_size=MiB)) == data
    assert b"".join(store.open(digest, start=len(data) - 1000)) == data[-1000:]
    assert b"".join(store.open(digest, start=len(data))) == b""
    store.commit(store.stage([data]))  # same content again: kept, nothing duplicated
    assert [e.digest for e in store.listing()] == [digest]
    store.delete(digest)
    store.delete(digest)
    assert not store.exists(digest)
    with pytest.raises(NotFound, match=digest):
        store.open(digest)
    with pytest.raises(NotFound, match=digest):
        store.size(digest)


def test_digest_is_computed_while_streaming(store: S3BlobStore) -> None:
    chunks = [b"a" * 1000, b"b" * 5000, b""]
    staged = store.stage(iter(chunks))
    assert staged.digest == _digest(b"".join(chunks)) and staged.size == 6000
    store.discard(staged)
    assert _staging(store) == [] and list(store.listing()) == []


def test_too_large_is_refused_and_leaves_nothing(store: S3BlobStore, s3: S3Server) -> None:
    with pytest.raises(PayloadTooLarge, match="1 MiB"):
        store.stage((b"x" * 65536 for _ in range(100)), max_size=MiB)
    assert _staging(store) == []
    assert _keys(s3, store) == []


@pytest.mark.slow
def test_listing_pages_and_ignores_foreign_keys(store: S3BlobStore, s3: S3Server) -> None:
    blobs = [f"blob {i}".encode() for i in range(1005)]  # more than one page of 1000
    client = s3.client()
    for data in blobs:
        hex_part = _digest(data)[7:]
        client.put_object(Bucket=store.bucket, Key=f"p/q/sha256/{hex_part[:2]}/{hex_part}",
                          Body=data)
    client.put_object(Bucket=store.bucket, Key="p/q/sha256/zz/not-a-blob", Body=b"x")
    client.put_object(Bucket=store.bucket, Key="other/sha256/ab/" + "a" * 64, Body=b"x")
    entries = list(store.listing())
    assert sorted(e.digest for e in entries) == sorted(_digest(b) for b in blobs)
    assert all(e.size == len("blob 0") or e.size > 5 for e in entries)
    assert all(e.modified > 0 for e in entries)


def _add(uploads: S3UploadParts, session: UploadSession, parts: list[Part], data: bytes
         ) -> list[Part]:
    """Add a chunk as the OCI service does; the parts afterwards."""
    added, absorbed = uploads.add_part(session, parts, uploads.store.stage([data]))
    uploads.drop_parts(session, absorbed)
    return [p for p in parts if p not in absorbed] + added


@pytest.mark.slow
def test_chunks_become_parts_of_one_multipart_upload(store: S3BlobStore, uploads: S3UploadParts,
                                                     tmp_path: Path) -> None:
    chunks = [os.urandom(3 * MiB), os.urandom(3 * MiB), os.urandom(12 * MiB)]
    session = UploadSession("session1", uploads.open_session("session1"))
    parts = _add(uploads, session, [], chunks[0])  # under S3's 5 MiB minimum: a tail object
    assert [p.size for p in parts] == [3 * MiB] and _part_names(store) == [
        p.locator.removeprefix(f"{store.prefix}uploads/") for p in parts]
    parts = _add(uploads, session, parts, chunks[1])  # absorbs the tail: a part and a new tail
    assert [p.size for p in parts] == [5 * MiB, 1 * MiB]
    parts = _add(uploads, session, parts, chunks[2])
    assert [p.size for p in parts] == [5 * MiB, 5 * MiB, 5 * MiB, 3 * MiB]
    assert parts[1].digest == _digest((chunks[1][2 * MiB:] + chunks[2])[:5 * MiB])
    assert len(_part_names(store)) == 1  # only the tail is an object of its own
    assert _multipart_uploads(store) == [f"{store.prefix}uploads/session1/blob"]
    # another replica (its own staging dir) closes the session: nothing goes through it again
    other = S3BlobStore(store.bucket, store.prefix, tmp_path / "other",
                        endpoint_url=store.client.meta.endpoint_url)
    other_uploads = S3UploadParts(other)
    closed = other_uploads.close_session(session, parts)
    assert (closed.digest, closed.size) == (_digest(b"".join(chunks)), 18 * MiB)
    other_uploads.commit_part(closed)
    other_uploads.abort_session(session, [*parts, closed])
    assert b"".join(store.open(closed.digest)) == b"".join(chunks)
    assert _part_names(store) == [] and _multipart_uploads(store) == []
    assert _staging(other) == [] and _staging(store) == []


def test_sessions_of_one_part_or_none_keep_the_digest_they_arrived_with(
        store: S3BlobStore, uploads: S3UploadParts) -> None:
    for data in (b"small", b""):
        session = UploadSession(f"s{len(data)}", uploads.open_session(f"s{len(data)}"))
        parts = _add(uploads, session, [], data) if data else []
        closed = uploads.close_session(session, parts)
        assert (closed.digest, closed.size) == (_digest(data), len(data))
        uploads.commit_part(closed)
        uploads.abort_session(session, parts)
        assert b"".join(store.open(closed.digest)) == data
    assert _part_names(store) == [] and _multipart_uploads(store) == []


def test_unusable_parts_are_not_found_and_too_large_is_refused(
        store: S3BlobStore, uploads: S3UploadParts) -> None:
    session = UploadSession("bad", uploads.open_session("bad"))
    parts = _add(uploads, session, [], os.urandom(6 * MiB))
    forged = [Part(parts[0].locator.rsplit(":", 1)[0] + ':"0000"', parts[0].digest,
                   parts[0].size), parts[1]]
    with pytest.raises(NotFound, match="cannot be assembled"):
        uploads.close_session(session, forged)
    with pytest.raises(PayloadTooLarge):
        uploads.close_session(session, parts, max_size=MiB)
    uploads.abort_session(session, parts)
    assert _part_names(store) == [] and _multipart_uploads(store) == []


def test_sweep_removes_what_crashed_requests_left_and_keeps_live_sessions(
        store: S3BlobStore, uploads: S3UploadParts) -> None:
    live = UploadSession("live", uploads.open_session("live"))
    live_parts = _add(uploads, live, [], b"still uploading")
    dead = UploadSession("dead", uploads.open_session("dead"))
    _add(uploads, dead, [], b"its row is gone")
    store.client.create_multipart_upload(Bucket=store.bucket, Key=store.key(_digest(b"x")))
    (store.staging / "upload-crashed.partial").write_bytes(b"half")
    keep = LiveUploads(frozenset({"live"}), frozenset({live.handle or ""}),
                       frozenset(p.locator for p in live_parts))
    young = maintenance.sweep(store, keep, cutoff=time.time() - 3600)
    # objects and files are young, so kept; moto dates every multipart upload in 2010
    assert all(item.startswith("multipart upload of ") for item in young)
    assert len(_part_names(store)) == 2 and len(_staging(store)) == 1
    removed = young + maintenance.sweep(store, keep, cutoff=time.time() + 1)
    assert len(removed) == 4  # the dead tail, two multipart uploads and the staging file
    assert _multipart_uploads(store) == [f"{store.prefix}uploads/live/blob"]
    assert _part_names(store) == [p.locator.removeprefix(f"{store.prefix}uploads/")
                                  for p in live_parts]
    assert _staging(store) == []


def test_presigned_url_serves_the_blob(store: S3BlobStore) -> None:
    data = b"package bytes" * 100
    staged = store.stage([data])
    store.commit(staged)
    url = store.download_url(staged.digest, "scale-1.0.0.tar.gz")
    assert url is not None and "Signature" in url
    response = httpx.get(url)
    assert response.status_code == 200 and response.content == data
    assert 'filename="scale-1.0.0.tar.gz"' in response.headers["content-disposition"]


def test_fsck_and_gc_work_on_the_bucket(s3: S3Server, tmp_path: Path) -> None:
    bucket = s3.create_bucket()
    hub = Hub.open(ServerSettings(data_dir=tmp_path, storage_url=f"s3://{bucket}/m",
                                  s3_endpoint_url=s3.endpoint))
    try:
        kept, altered = hub.store.stage([b"kept"]), hub.store.stage([b"altered"])
        hub.store.commit(kept)
        hub.store.commit(altered)
        assert isinstance(hub.store, S3BlobStore)
        s3.client().put_object(Bucket=bucket, Key=hub.store.key(altered.digest), Body=b"evil")
        report = maintenance.fsck(hub)
        assert report.blobs_checked == 2
        assert [(p.kind, p.digest) for p in report.problems] == [
            ("digest_mismatch", altered.digest)]
        young = maintenance.gc(hub, timedelta(hours=1))
        assert young.deleted == [] and young.kept_recent == 2
        old = maintenance.gc(hub, timedelta(0))
        assert sorted(old.deleted) == sorted([kept.digest, altered.digest])
        assert list(hub.store.listing()) == []
    finally:
        hub.close()


def test_a_missing_bucket_is_a_clear_startup_error(s3: S3Server, tmp_path: Path) -> None:
    settings = ServerSettings(data_dir=tmp_path, storage_url="s3://no-such-bucket/x",
                              s3_endpoint_url=s3.endpoint)
    with pytest.raises(InvalidInput, match=r"no-such-bucket.*not usable") as caught:
        open_store(settings)
    assert "FNHUB_SERVER_S3_ENDPOINT_URL" in (caught.value.hint or "")
