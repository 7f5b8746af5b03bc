"""The S3 blob store against a real S3 endpoint (moto's server over HTTP)."""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from fnhub.errors import InvalidInput, NotFound, PayloadTooLarge
from fnhub.hub.context import Hub, open_store
from fnhub.hub.s3storage import S3BlobStore
from fnhub.hub.services import maintenance
from fnhub.hub.settings import ServerSettings
from fnhub.hub.storage import Part
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
    assert not staged.path.exists() and store.staging() == []
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
    assert store.staging() == [] and list(store.listing()) == []


def test_too_large_is_refused_and_leaves_nothing(store: S3BlobStore, s3: S3Server) -> None:
    with pytest.raises(PayloadTooLarge, match="1 MiB"):
        store.stage((b"x" * 65536 for _ in range(100)), max_size=MiB)
    assert store.staging() == []
    assert _keys(s3, store) == []


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


def test_parts_live_in_the_bucket_and_assemble(store: S3BlobStore, tmp_path: Path) -> None:
    pieces = [b"first-" * 1000, b"second-" * 2000]
    parts = []
    for n, piece in enumerate(pieces):
        staged = store.stage([piece])
        locator = store.save_part(staged, f"session1/{n}")
        assert not staged.path.exists()
        parts.append(Part(locator, staged.digest, staged.size))
    assert store.part_names() == ["session1/0", "session1/1"]
    # another replica (its own staging dir) reads the same parts
    other = S3BlobStore(store.bucket, store.prefix, tmp_path / "other",
                        endpoint_url=store.client.meta.endpoint_url)
    whole = other.assemble(parts)
    assert whole.digest == _digest(b"".join(pieces))
    other.commit(whole)
    assert store.exists(whole.digest)
    with pytest.raises(PayloadTooLarge):
        other.assemble(parts, max_size=100)
    other.commit_part(parts[1])  # copied inside the bucket
    assert b"".join(store.open(parts[1].digest)) == pieces[1]
    for part in parts:
        store.drop_part(part.locator)
    assert store.part_names() == []
    with pytest.raises(NotFound, match="upload part"):
        other.assemble(parts)
    assert other.staging() == []


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
