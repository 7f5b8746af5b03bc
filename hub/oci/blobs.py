"""The registry's blobs: content in the hub's blob store under its sha256 digest, readable
through the repositories it is linked into (`oci_blob_links`). A blob received whole is
stored if it has the digest it claims; a mount links another repository's blob."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass

from sqlmodel import Session, select

from fnhub.core.packaging import digest_hex
from fnhub.hub.context import Hub
from fnhub.hub.oci.errors import BlobUnknown, DigestInvalid, TooLarge
from fnhub.hub.oci.models import OciBlobLink, OciRepository
from fnhub.hub.oci.names import check_digest, check_repository
from fnhub.hub.oci.repositories import drop_if_empty, find, writable
from fnhub.hub.services.auth import Caller
from fnhub.hub.storage import Staged, StagingWriter

GiB = 1 << 30


MAX_BLOB_SIZE = 32 * GiB


# What a blob GET reads (and holds) at a time. skopeo pulls the layers of an image in
# parallel, and each stream keeps about two chunks alive (one being read, one being sent):
# 256 KiB keeps a 4-layer pull within a few MiB of the hub's idle memory (1 MiB chunks added
# ~20 MiB to its peak), at no cost in throughput measured here (bench/oci_peer.py).
READ_CHUNK = 1 << 18


@dataclass(frozen=True)
class BlobInfo:
    digest: str
    size: int


def _link(session: Session, repository: OciRepository, digest: str) -> OciBlobLink | None:
    return session.get(OciBlobLink, (repository.id, digest))


def add_link(session: Session, repository: OciRepository, digest: str, size: int) -> None:
    """Make blob `digest` readable through `repository` (once)."""
    if _link(session, repository, digest) is None:
        assert repository.id is not None
        session.add(OciBlobLink(repository_id=repository.id, digest=digest, size=size))


def blob(hub: Hub, repository: str, digest: str) -> BlobInfo:
    """A blob readable through `repository`; BLOB_UNKNOWN otherwise."""
    check_repository(repository)
    check_digest(digest)
    with hub.db.read() as session:
        link = session.exec(
            select(OciBlobLink).join(OciRepository)
            .where(OciRepository.name == repository, OciBlobLink.digest == digest)
        ).first()
    if link is None or not hub.store.exists(digest):
        raise BlobUnknown(f"blob {digest} is not in repository {repository}")
    return BlobInfo(digest, link.size)


def blob_url(hub: Hub, digest: str) -> str | None:
    """A presigned storage URL for GETs of the blob, when the hub sends clients there."""
    if not hub.settings.s3_presigned_downloads:
        return None
    return hub.store.download_url(digest, digest_hex(digest))


def read_blob(hub: Hub, digest: str, start: int = 0, length: int | None = None
              ) -> Iterator[bytes]:
    """The blob's bytes from `start`, `length` of them (all by default), in chunks. Storage
    is asked now, so its failure is an error answer rather than a cut-off stream."""
    return _take(hub.store.open(digest, READ_CHUNK, start), length)


def _take(opened: Iterator[bytes], length: int | None) -> Iterator[bytes]:
    remaining = length
    with closing(opened) as chunks:
        for chunk in chunks:
            if remaining is None:
                yield chunk
                continue
            piece = chunk[:remaining]
            remaining -= len(piece)
            yield piece
            if remaining <= 0:
                return


def writer(hub: Hub, received: int = 0) -> StagingWriter:
    """A staging file for the next chunk of an upload that holds `received` bytes."""
    return hub.store.writer(max_size=MAX_BLOB_SIZE - received)


def too_large() -> TooLarge:
    return TooLarge(f"blob is larger than the registry's limit of {MAX_BLOB_SIZE // GiB} GiB")


def _store_blob(hub: Hub, caller: Caller, repository: str, staged: Staged) -> BlobInfo:
    with hub.db.write() as session:
        repo = writable(session, caller, repository)
        add_link(session, repo, staged.digest, staged.size)
        hub.store.commit(staged)
    return BlobInfo(staged.digest, staged.size)


def put_blob(hub: Hub, caller: Caller, repository: str, digest: str,
             staged: Staged) -> BlobInfo:
    """Store a blob received whole (`POST ...?digest=`), if it has the digest it claims."""
    try:
        check_received(staged.digest, digest)
        return _store_blob(hub, caller, repository, staged)
    finally:
        hub.store.discard(staged)


def check_received(received: str, digest: str) -> None:
    if received != digest:
        raise DigestInvalid(f"the uploaded content has digest {received}, not {digest}",
                            detail={"expected": digest, "received": received})


def mount(hub: Hub, caller: Caller, repository: str, digest: str, source: str) -> BlobInfo | None:
    """Link a blob of `source` into `repository`; None when `source` does not hold it."""
    check_repository(source)
    with hub.db.write() as session:
        origin = find(session, source)
        link = _link(session, origin, digest) if origin is not None else None
        if link is None or not hub.store.exists(digest):
            return None
        repo = writable(session, caller, repository)
        add_link(session, repo, digest, link.size)
        return BlobInfo(digest, link.size)


def delete_blob(hub: Hub, caller: Caller, repository: str, digest: str) -> None:
    """Unlink a blob from the repository (the bytes may be shared, so they stay stored)."""
    check_digest(digest)
    with hub.db.write() as session:
        repo = writable(session, caller, repository)
        link = _link(session, repo, digest)
        if link is None:
            raise BlobUnknown(f"blob {digest} is not in repository {repository}")
        session.delete(link)
        drop_if_empty(session, repo.id)
