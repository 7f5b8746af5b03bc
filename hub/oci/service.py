"""The registry's work: repositories, blobs, upload sessions, manifests, tags, referrers.

Content lives in the hub's blob store under its sha256 digest, next to the packages; the
tables of `fnhub.hub.oci.models` say which repository may read it. Every write first checks
the caller's right to push into the repository's namespace (claiming a free namespace, as a
first publish does) inside the same transaction that records it.

Uploads stream into the store's staging area; each received chunk is then kept by the store
as *parts* of the session (a staged file on disk; in S3, parts of the session's multipart
upload, so any replica can continue or finish the session). A session is its row plus those
parts, so it survives restarts and spans processes. Finishing a session checks the digest
the client claims against the bytes received: a single part was hashed as it arrived and
becomes the blob in place; several are assembled by the store and hashed once. A wrong
digest cancels the session and stores nothing. Stale sessions expire, their parts deleted;
`hub admin gc` sweeps what a crashed process left in the store.

Published versions pin their images: a tag or manifest that a published version records as
its image cannot be moved or deleted, since versions are immutable.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import exists, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from fnhub.core.errors import NotFound, PayloadTooLarge
from fnhub.core.packaging import digest_hex
from fnhub.hub.context import Hub
from fnhub.hub.models import Version, utcnow
from fnhub.hub.oci import manifests
from fnhub.hub.oci.errors import (
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    Denied,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameUnknown,
    RangeInvalid,
    TooLarge,
)
from fnhub.hub.oci.models import (
    OciBlobLink,
    OciManifest,
    OciRepository,
    OciTag,
    OciUpload,
    OciUploadPart,
)
from fnhub.hub.oci.names import (
    check_digest,
    check_reference,
    check_repository,
    is_digest,
    namespace_of,
)
from fnhub.hub.services import namespaces
from fnhub.hub.services.auth import Caller
from fnhub.hub.storage import LiveUploads, Part, Staged, StagingWriter, UploadSession

GiB = 1 << 30
MAX_BLOB_SIZE = 32 * GiB
UPLOAD_TTL = timedelta(hours=24)
READ_CHUNK = 1 << 20
MAX_PAGE = 1000


@dataclass(frozen=True)
class BlobInfo:
    digest: str
    size: int


@dataclass(frozen=True)
class UploadState:
    id: str
    repository: str
    size: int

    @property
    def location(self) -> str:
        return f"/v2/{self.repository}/blobs/uploads/{self.id}"

    @property
    def headers(self) -> dict[str, str]:
        """Where the session continues and the bytes it holds (`Range: 0-<last>`)."""
        return {"Location": self.location, "Range": f"0-{max(self.size - 1, 0)}",
                "Docker-Upload-UUID": self.id}


@dataclass(frozen=True)
class ManifestInfo:
    digest: str
    media_type: str
    size: int


@dataclass(frozen=True)
class PushedManifest:
    digest: str
    subject: str | None


# -- repositories ------------------------------------------------------------------------


def _repository(session: Session, name: str) -> OciRepository | None:
    return session.exec(select(OciRepository).where(OciRepository.name == name)).first()


def _existing(session: Session, name: str) -> OciRepository:
    repository = _repository(session, name)
    if repository is None:
        raise NameUnknown(f"repository {name} is not known to this registry")
    return repository


def _writable(session: Session, caller: Caller, name: str) -> OciRepository:
    """The repository, created on first push, once the caller may push into its namespace."""
    namespace = namespaces.authorize(session, caller, namespace_of(name), create=True)
    assert namespace is not None and namespace.id is not None
    repository = _repository(session, name)
    if repository is not None:
        return repository
    try:
        with session.begin_nested():
            repository = OciRepository(name=name, namespace_id=namespace.id)
            session.add(repository)
            session.flush()
    except IntegrityError:
        return _existing(session, name)
    return repository


def _has_content() -> Any:
    """SQL: the repository holds a manifest or a blob (an upload in progress is not content)."""
    return or_(
        exists().where(OciManifest.repository_id == OciRepository.id),
        exists().where(OciBlobLink.repository_id == OciRepository.id),
    )


def _drop_if_empty(session: Session, repository_id: int | None) -> None:
    """Delete the repository once nothing is in it or on its way into it, so no repository
    row is left without content (a push that fell back from a mount and was abandoned, or
    whose last blob or manifest was deleted). The row is locked first: a concurrent writer
    adding to it either commits before (and keeps it) or after (and finds it gone)."""
    session.flush()
    row = session.exec(select(OciRepository).where(OciRepository.id == repository_id)
                       .with_for_update()).first()
    if row is None:
        return
    pending = exists().where(OciUpload.repository_id == OciRepository.id)
    busy = session.exec(select(OciRepository.id).where(
        OciRepository.id == repository_id, or_(_has_content(), pending))).first()
    if busy is None:
        session.delete(row)


def check_push(hub: Hub, caller: Caller, repository: str) -> None:
    """Fail before receiving any bytes when the caller could not push into `repository`."""
    check_repository(repository)
    with hub.db.read() as session:
        namespaces.authorize(session, caller, namespace_of(repository), create=False)


# -- blobs -------------------------------------------------------------------------------


def _link(session: Session, repository: OciRepository, digest: str) -> OciBlobLink | None:
    return session.get(OciBlobLink, (repository.id, digest))


def _add_link(session: Session, repository: OciRepository, digest: str, size: int) -> None:
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
        repo = _writable(session, caller, repository)
        _add_link(session, repo, staged.digest, staged.size)
        hub.store.commit(staged)
    return BlobInfo(staged.digest, staged.size)


def put_blob(hub: Hub, caller: Caller, repository: str, digest: str,
             staged: Staged) -> BlobInfo:
    """Store a blob received whole (`POST ...?digest=`), if it has the digest it claims."""
    try:
        _check_received(staged.digest, digest)
        return _store_blob(hub, caller, repository, staged)
    finally:
        hub.store.discard(staged)


def _check_received(received: str, digest: str) -> None:
    if received != digest:
        raise DigestInvalid(f"the uploaded content has digest {received}, not {digest}",
                            detail={"expected": digest, "received": received})


def mount(hub: Hub, caller: Caller, repository: str, digest: str, source: str) -> BlobInfo | None:
    """Link a blob of `source` into `repository`; None when `source` does not hold it."""
    check_repository(source)
    with hub.db.write() as session:
        origin = _repository(session, source)
        link = _link(session, origin, digest) if origin is not None else None
        if link is None or not hub.store.exists(digest):
            return None
        repo = _writable(session, caller, repository)
        _add_link(session, repo, digest, link.size)
        return BlobInfo(digest, link.size)


def delete_blob(hub: Hub, caller: Caller, repository: str, digest: str) -> None:
    """Unlink a blob from the repository (the bytes may be shared, so they stay stored)."""
    check_digest(digest)
    with hub.db.write() as session:
        repo = _writable(session, caller, repository)
        link = _link(session, repo, digest)
        if link is None:
            raise BlobUnknown(f"blob {digest} is not in repository {repository}")
        session.delete(link)
        _drop_if_empty(session, repo.id)


# -- upload sessions ---------------------------------------------------------------------


def _part(row: OciUploadPart) -> Part:
    return Part(row.path, row.digest, row.size)


def _store_session(upload: OciUpload) -> UploadSession:
    return UploadSession(upload.id, upload.store_handle)


def _parts(session: Session, upload_id: str) -> list[OciUploadPart]:
    return list(session.exec(
        select(OciUploadPart).where(OciUploadPart.upload_id == upload_id)
        .order_by(col(OciUploadPart.seq))
    ).all())


def expire_uploads(hub: Hub) -> int:
    """Drop sessions untouched for UPLOAD_TTL, with what the store holds for them."""
    cutoff = utcnow() - UPLOAD_TTL
    with hub.db.write() as session:
        stale = session.exec(select(OciUpload).where(col(OciUpload.updated_at) < cutoff)).all()
        held = [(_store_session(upload), [_part(p) for p in _parts(session, upload.id)])
                for upload in stale]
        for upload in stale:
            session.delete(upload)
        for repository_id in sorted({upload.repository_id for upload in stale}):
            _drop_if_empty(session, repository_id)
    for store_session, parts in held:
        hub.store.abort_session(store_session, parts)
    return len(held)


def live_uploads(hub: Hub) -> LiveUploads:
    """What the sessions in progress hold in the store (for gc's sweep of leftovers)."""
    with hub.db.read() as session:
        uploads = session.exec(select(OciUpload.id, OciUpload.store_handle)).all()
        locators = session.exec(select(OciUploadPart.path)).all()
    return LiveUploads(frozenset(upload_id for upload_id, _ in uploads),
                       frozenset(handle for _, handle in uploads if handle),
                       frozenset(locators))


def start_upload(hub: Hub, caller: Caller, repository: str) -> UploadState:
    expire_uploads(hub)
    check_push(hub, caller, repository)  # refuse before the store opens anything
    upload_id = uuid.uuid4().hex
    handle = hub.store.open_session(upload_id)
    try:
        with hub.db.write() as session:
            repo = _writable(session, caller, repository)
            assert repo.id is not None
            session.add(OciUpload(id=upload_id, repository_id=repo.id, store_handle=handle))
    except BaseException:
        hub.store.abort_session(UploadSession(upload_id, handle), [])
        raise
    return UploadState(upload_id, repository, 0)


def _upload(session: Session, repository: str, upload_id: str) -> OciUpload:
    row = session.exec(
        select(OciUpload).join(OciRepository)
        .where(OciUpload.id == upload_id, OciRepository.name == repository)
    ).first()
    if row is None:
        raise BlobUploadUnknown(f"no upload {upload_id[:64]!r} in progress for {repository}")
    return row


def upload_state(hub: Hub, repository: str, upload_id: str) -> UploadState:
    check_repository(repository)
    with hub.db.read() as session:
        upload = _upload(session, repository, upload_id)
    return UploadState(upload.id, repository, upload.size)


def check_offset(state: UploadState, start: int | None) -> None:
    """416 when a chunk does not start where the upload stands."""
    if start is not None and start != state.size:
        raise RangeInvalid(
            f"chunk starts at byte {start}, but the upload holds {state.size} bytes",
            hint="send chunks in order; GET the upload URL for its current Range",
            headers=state.headers)


def append(hub: Hub, repository: str, upload_id: str, staged: Staged,
           start: int | None) -> UploadState:
    """Add a received chunk to the session: the store keeps it (S3: as parts of the
    session's multipart upload), then the session's row records it, checked again against a
    concurrent chunk; if that check fails, what the store kept is dropped."""
    if not staged.size:
        hub.store.discard(staged)
        return _touch(hub, repository, upload_id, start)
    try:
        with hub.db.read() as session:
            upload = _upload(session, repository, upload_id)
            check_offset(UploadState(upload.id, repository, upload.size), start)
            if upload.size + staged.size > MAX_BLOB_SIZE:
                raise too_large()
            store_session = _store_session(upload)
            before = [_part(p) for p in _parts(session, upload.id)]
        added, absorbed = hub.store.add_part(store_session, before, staged)
    except BaseException:
        hub.store.discard(staged)
        raise
    try:
        with hub.db.write() as session:
            upload = _upload(session, repository, upload_id)
            check_offset(UploadState(upload.id, repository, upload.size), start)
            rows = _parts(session, upload.id)
            if [_part(row) for row in rows] != before:
                raise RangeInvalid("another chunk of this upload arrived at the same time",
                                   hint="send chunks one after the other",
                                   headers=UploadState(upload.id, repository,
                                                       upload.size).headers)
            gone = {part.locator for part in absorbed}
            for row in rows:
                if row.path in gone:
                    session.delete(row)
            seq = rows[-1].seq + 1 if rows else 0
            for offset, part in enumerate(added):
                session.add(OciUploadPart(upload_id=upload.id, seq=seq + offset,
                                          path=part.locator, digest=part.digest,
                                          size=part.size))
            upload.digest = staged.digest if upload.size == 0 else None
            upload.size += staged.size
            upload.updated_at = utcnow()
            state = UploadState(upload.id, repository, upload.size)
    except BaseException:
        hub.store.drop_parts(store_session, added)
        raise
    hub.store.drop_parts(store_session, absorbed)
    return state


def _touch(hub: Hub, repository: str, upload_id: str, start: int | None) -> UploadState:
    """An empty chunk: nothing to keep, but the session stays alive."""
    with hub.db.write() as session:
        upload = _upload(session, repository, upload_id)
        state = UploadState(upload.id, repository, upload.size)
        check_offset(state, start)
        upload.updated_at = utcnow()
    return state


def cancel_upload(hub: Hub, caller: Caller, repository: str, upload_id: str) -> None:
    with hub.db.write() as session:
        _writable(session, caller, repository)
        upload = _upload(session, repository, upload_id)
        store_session, parts = _store_session(upload), [_part(p)
                                                        for p in _parts(session, upload.id)]
        session.delete(upload)
        _drop_if_empty(session, upload.repository_id)
    hub.store.abort_session(store_session, parts)


def finish_upload(hub: Hub, caller: Caller, repository: str, upload_id: str,
                  digest: str) -> BlobInfo:
    """Close the session: the bytes received must have `digest`, else nothing is stored.

    The store closes the session into one part whose digest covers every byte (a session
    that came in one chunk was hashed as it arrived; several chunks are assembled inside
    the store and hashed once), then keeps it as that digest's blob (renamed, or copied
    inside the bucket).
    """
    check_digest(digest)
    with hub.db.read() as session:
        upload = _upload(session, repository, upload_id)
        store_session, parts = _store_session(upload), [_part(p)
                                                        for p in _parts(session, upload.id)]
        received = upload.digest
    try:
        closed = hub.store.close_session(store_session, parts, digest=received,
                                         max_size=MAX_BLOB_SIZE)
    except NotFound as exc:
        cancel_upload(hub, caller, repository, upload_id)
        raise BlobUploadInvalid(f"the upload's received chunks are gone or unusable: {exc}; "
                                "start it again") from None
    except PayloadTooLarge:
        cancel_upload(hub, caller, repository, upload_id)
        raise too_large() from None
    info = BlobInfo(closed.digest, closed.size)
    try:
        with hub.db.write() as session:  # the session ends either way
            repo = _writable(session, caller, repository)
            session.delete(_upload(session, repository, upload_id))
            if info.digest == digest:
                _add_link(session, repo, info.digest, info.size)
                hub.store.commit_part(closed)
            else:
                _drop_if_empty(session, repo.id)
        _check_received(info.digest, digest)
    finally:
        hub.store.abort_session(store_session, [*parts, closed])
    return info


# -- manifests and tags ------------------------------------------------------------------


def _manifest_row(session: Session, repository: OciRepository, reference: str
                  ) -> OciManifest | None:
    if is_digest(reference):
        return session.exec(select(OciManifest).where(
            OciManifest.repository_id == repository.id, OciManifest.digest == reference)).first()
    return session.exec(
        select(OciManifest).join(OciTag, col(OciTag.manifest_id) == col(OciManifest.id))
        .where(OciTag.repository_id == repository.id, OciTag.name == reference)
    ).first()


def manifest_info(hub: Hub, repository: str, reference: str) -> ManifestInfo:
    check_repository(repository)
    check_reference(reference)
    with hub.db.read() as session:
        row = _manifest_row(session, _existing(session, repository), reference)
    if row is None:
        raise ManifestUnknown(f"manifest {reference} is not in repository {repository}")
    return ManifestInfo(row.digest, row.media_type, row.size)


def read_manifest(hub: Hub, info: ManifestInfo) -> bytes:
    """The manifest's bytes, exactly as pushed (bounded by the manifest size limit)."""
    try:
        return b"".join(hub.store.open(info.digest))
    except NotFound:
        raise ManifestUnknown(f"manifest {info.digest} is missing from storage") from None


def _check_content(session: Session, repository: OciRepository,
                   parsed: manifests.Parsed) -> None:
    """Every blob and child manifest the manifest names is in the repository."""
    wanted = {d.digest: d for d in parsed.blobs}
    links = session.exec(select(OciBlobLink).where(
        OciBlobLink.repository_id == repository.id, col(OciBlobLink.digest).in_(wanted)
    )).all() if wanted else []
    sizes = {link.digest: link.size for link in links}
    for digest, descriptor in wanted.items():
        if digest not in sizes:
            raise ManifestBlobUnknown(f"the manifest references blob {digest}, which is not "
                                      f"in repository {repository.name}",
                                      detail={"digest": digest})
        if sizes[digest] != descriptor.size:
            raise ManifestInvalid(f"the manifest gives blob {digest} size {descriptor.size}, "
                                  f"but it has {sizes[digest]} bytes")
    children = {d.digest for d in parsed.children}
    found = set(session.exec(select(OciManifest.digest).where(
        OciManifest.repository_id == repository.id, col(OciManifest.digest).in_(children)
    )).all()) if children else set()
    if missing := sorted(children - found):
        raise ManifestBlobUnknown(f"the index references manifest {missing[0]}, which is not "
                                  f"in repository {repository.name}",
                                  detail={"digest": missing[0]})


def _split_ref(image_ref: str) -> tuple[str, str]:
    """`[host/]ns/name:tag` -> (`ns/name`, `tag`); the host is found by Docker's rule."""
    first, _, rest = image_ref.partition("/")
    path = rest if rest and ("." in first or ":" in first or first == "localhost") \
        else image_ref
    name, _, tag = path.rpartition(":")
    return name, tag


def _pinned_by(session: Session, repository: str, digest: str, tag: str | None = None
               ) -> str | None:
    """The published version whose recorded image is this manifest (under `tag`), if any."""
    versions = session.exec(select(Version).where(
        Version.image_digest == digest, col(Version.deleted).is_(False))).all()
    for version in versions:
        name, version_tag = _split_ref(version.image_ref or "")
        if name == repository and tag in (None, version_tag):
            meta: dict[str, Any] = version.manifest.get("metadata", {})
            return f"{meta.get('namespace')}/{meta.get('name')}@{version.version}"
    return None


def _refuse_pinned(session: Session, repository: str, digest: str, tag: str | None) -> None:
    if published := _pinned_by(session, repository, digest, tag):
        what = f"tag {tag}" if tag else f"manifest {digest}"
        raise Denied(f"{what} of {repository} is the image of published version {published}; "
                     "published versions are immutable",
                     hint="publish a new version with its own image")


def _set_tag(session: Session, repository: OciRepository, tag: str, row: OciManifest) -> None:
    assert repository.id is not None and row.id is not None
    current = session.exec(select(OciTag).where(
        OciTag.repository_id == repository.id, OciTag.name == tag)).first()
    if current is None:
        session.add(OciTag(repository_id=repository.id, name=tag, manifest_id=row.id))
        return
    if current.manifest_id != row.id:
        previous = session.get(OciManifest, current.manifest_id)
        if previous is not None:
            _refuse_pinned(session, repository.name, previous.digest, tag)
        current.manifest_id = row.id
        current.updated_at = utcnow()


def put_manifest(hub: Hub, caller: Caller, repository: str, reference: str,
                 content_type: str | None, body: bytes) -> PushedManifest:
    """Store a manifest byte-exact under its digest, and point the tag at it."""
    check_repository(repository)
    check_reference(reference)
    parsed = manifests.parse(body, content_type)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    if is_digest(reference) and reference != digest:
        raise DigestInvalid(f"the manifest's digest is {digest}, not {reference}",
                            detail={"expected": reference, "received": digest})
    staged = hub.store.stage([body])
    try:
        with hub.db.write() as session:
            repo = _writable(session, caller, repository)
            assert repo.id is not None
            _check_content(session, repo, parsed)
            row = _manifest_row(session, repo, digest)
            if row is None:
                row = OciManifest(
                    repository_id=repo.id, digest=digest, media_type=parsed.media_type,
                    size=len(body), artifact_type=parsed.artifact_type,
                    subject_digest=parsed.subject.digest if parsed.subject else None,
                    annotations=parsed.annotations)
                session.add(row)
                session.flush()
            if not is_digest(reference):
                _set_tag(session, repo, reference, row)
            hub.store.commit(staged)
    finally:
        hub.store.discard(staged)
    return PushedManifest(digest, parsed.subject.digest if parsed.subject else None)


def delete_manifest(hub: Hub, caller: Caller, repository: str, reference: str) -> None:
    """By digest: the manifest and its tags; by tag: the tag only."""
    check_repository(repository)
    check_reference(reference)
    with hub.db.write() as session:
        repo = _writable(session, caller, repository)
        row = _manifest_row(session, repo, reference)
        if row is None:
            raise ManifestUnknown(f"manifest {reference} is not in repository {repository}")
        if is_digest(reference):
            _refuse_pinned(session, repository, row.digest, None)
            session.delete(row)
            _drop_if_empty(session, repo.id)
            return
        _refuse_pinned(session, repository, row.digest, reference)
        tag = session.exec(select(OciTag).where(
            OciTag.repository_id == repo.id, OciTag.name == reference)).one()
        session.delete(tag)


def _page(n: int | None) -> int:
    return MAX_PAGE if n is None else min(n, MAX_PAGE)


def tags(hub: Hub, repository: str, n: int | None, last: str | None) -> tuple[list[str], bool]:
    """Tags in lexical order after `last`, `n` at most; and whether more follow."""
    check_repository(repository)
    limit = _page(n)
    with hub.db.read() as session:
        repo = _existing(session, repository)
        if not limit:
            return [], False
        query = select(OciTag.name).where(OciTag.repository_id == repo.id)
        if last:
            query = query.where(col(OciTag.name) > last)
        names = list(session.exec(query.order_by(col(OciTag.name)).limit(limit + 1)).all())
    return names[:limit], len(names) > limit


def catalog(hub: Hub, n: int | None, last: str | None) -> tuple[list[str], bool]:
    limit = _page(n)
    if not limit:
        return [], False
    with hub.db.read() as session:
        query = select(OciRepository.name).where(_has_content())
        if last:
            query = query.where(col(OciRepository.name) > last)
        names = list(session.exec(
            query.order_by(col(OciRepository.name)).limit(limit + 1)).all())
    return names[:limit], len(names) > limit


def referrers(hub: Hub, repository: str, digest: str,
              artifact_type: str | None) -> list[dict[str, Any]]:
    """Descriptors of the manifests whose subject is `digest`, optionally of one type."""
    check_repository(repository)
    check_digest(digest)
    with hub.db.read() as session:
        repo = _existing(session, repository)
        query = select(OciManifest).where(OciManifest.repository_id == repo.id,
                                          OciManifest.subject_digest == digest)
        if artifact_type:
            query = query.where(OciManifest.artifact_type == artifact_type)
        rows = session.exec(query.order_by(col(OciManifest.id))).all()
    out = []
    for row in rows:
        descriptor: dict[str, Any] = {"mediaType": row.media_type, "digest": row.digest,
                                      "size": row.size}
        if row.artifact_type:
            descriptor["artifactType"] = row.artifact_type
        if row.annotations:
            descriptor["annotations"] = row.annotations
        out.append(descriptor)
    return out
