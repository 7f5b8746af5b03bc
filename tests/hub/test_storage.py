"""The content-addressed blob store: staging, limits, atomic commit."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from fnhub.core.errors import InvalidInput, NotFound, PayloadTooLarge
from fnhub.hub.storage import FileBlobStore
from tests.helpers import blob_digests, leftover_names


def test_stage_commit_open(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    data = b"hello world" * 10_000
    staged = store.stage(iter([data[:5000], data[5000:]]))
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert (staged.digest, staged.size) == (digest, len(data))
    assert staged.path.parent == tmp_path / "blobs" / "tmp"
    assert not store.exists(digest)
    store.commit(staged)
    hex_part = digest.removeprefix("sha256:")
    assert (tmp_path / "blobs" / "sha256" / hex_part[:2] / hex_part).is_file()
    assert store.exists(digest) and store.size(digest) == len(data)
    assert b"".join(store.open(digest, chunk_size=4096)) == data
    assert leftover_names(store) == [] and blob_digests(store) == [digest]
    store.discard(staged)  # already committed: a no-op
    store.delete(digest)
    store.delete(digest)
    assert not store.exists(digest)


def test_limit_is_enforced_while_streaming(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        for i in range(100):
            sent.append(i)
            yield b"x" * 1024

    with pytest.raises(PayloadTooLarge, match="10 KiB"):
        store.stage(chunks(), max_size=10 * 1024)
    assert len(sent) == 11  # stopped at the first chunk past the limit
    assert leftover_names(store) == [] and blob_digests(store) == []


def test_discard_and_missing_blobs(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    staged = store.stage([b"abc"])
    store.discard(staged)
    assert leftover_names(store) == []
    missing = "sha256:" + "0" * 64
    with pytest.raises(NotFound):
        store.open(missing)
    with pytest.raises(NotFound):
        store.size(missing)
    with pytest.raises(InvalidInput):
        store.exists("sha256:../../etc/passwd")


def test_committing_equal_content_twice(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    first, second = store.stage([b"same"]), store.stage([b"same"])
    store.commit(first)
    store.commit(second)
    assert blob_digests(store) == [first.digest] and leftover_names(store) == []
