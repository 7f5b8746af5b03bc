"""The registry's upload sessions (chunked blob uploads).

Uploads stream into the store's staging area; each received chunk is then kept by the
store's `UploadParts` as *parts* of the session (a staged file on disk; in S3, parts of the
session's multipart upload, so any replica can continue or finish the session). A session
is its row plus those parts, so it survives restarts and spans processes. Finishing a
session checks the digest the client claims against the bytes received: a single part was
hashed as it arrived and becomes the blob in place; several are assembled by the store and
hashed once. A wrong digest cancels the session and stores nothing. Stale sessions expire,
their parts deleted; `hub admin gc` sweeps what a crashed process left in the store.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, col, select

from fnhub.core.errors import NotFound, PayloadTooLarge
from fnhub.hub.context import Hub
from fnhub.hub.models import utcnow
from fnhub.hub.oci.blobs import MAX_BLOB_SIZE, BlobInfo, add_link, check_received, too_large
from fnhub.hub.oci.errors import BlobUploadInvalid, BlobUploadUnknown, RangeInvalid
from fnhub.hub.oci.models import OciRepository, OciUpload, OciUploadPart
from fnhub.hub.oci.names import check_digest, check_repository
from fnhub.hub.oci.repositories import check_push, drop_if_empty, writable
from fnhub.hub.services.auth import Caller
from fnhub.hub.storage import Staged
from fnhub.hub.upload_parts import LiveUploads, Part, UploadSession

UPLOAD_TTL = timedelta(hours=24)


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
            drop_if_empty(session, repository_id)
    for store_session, parts in held:
        hub.parts.abort_session(store_session, parts)
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
    handle = hub.parts.open_session(upload_id)
    try:
        with hub.db.write() as session:
            repo = writable(session, caller, repository)
            assert repo.id is not None
            session.add(OciUpload(id=upload_id, repository_id=repo.id, store_handle=handle))
    except BaseException:
        hub.parts.abort_session(UploadSession(upload_id, handle), [])
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
        added, absorbed = hub.parts.add_part(store_session, before, staged)
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
        hub.parts.drop_parts(store_session, added)
        raise
    hub.parts.drop_parts(store_session, absorbed)
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
        writable(session, caller, repository)
        upload = _upload(session, repository, upload_id)
        store_session, parts = _store_session(upload), [_part(p)
                                                        for p in _parts(session, upload.id)]
        session.delete(upload)
        drop_if_empty(session, upload.repository_id)
    hub.parts.abort_session(store_session, parts)


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
        closed = hub.parts.close_session(store_session, parts, digest=received,
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
            repo = writable(session, caller, repository)
            session.delete(_upload(session, repository, upload_id))
            if info.digest == digest:
                add_link(session, repo, info.digest, info.size)
                hub.parts.commit_part(closed)
            else:
                drop_if_empty(session, repo.id)
        check_received(info.digest, digest)
    finally:
        hub.parts.abort_session(store_session, [*parts, closed])
    return info
