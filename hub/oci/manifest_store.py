"""The registry's manifests: stored byte-exact in the blob store under their digest, with
a row saying what they are (media type, artifact type, subject) and which repository holds
them. A manifest is accepted only when every blob and child manifest it names is in its
repository; pushing one under a tag points the tag at it (`fnhub.hub.oci.tags`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from fnhub.core.errors import NotFound
from fnhub.hub.context import Hub
from fnhub.hub.oci import manifests
from fnhub.hub.oci.errors import (
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
)
from fnhub.hub.oci.models import OciBlobLink, OciManifest, OciRepository, OciTag
from fnhub.hub.oci.names import check_digest, check_reference, check_repository, is_digest
from fnhub.hub.oci.repositories import drop_if_empty, existing, writable
from fnhub.hub.oci.tags import refuse_pinned, set_tag
from fnhub.hub.services.auth import Caller


@dataclass(frozen=True)
class ManifestInfo:
    digest: str
    media_type: str
    size: int


@dataclass(frozen=True)
class PushedManifest:
    digest: str
    subject: str | None


def manifest_row(session: Session, repository: OciRepository, reference: str
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
        row = manifest_row(session, existing(session, repository), reference)
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
            repo = writable(session, caller, repository)
            assert repo.id is not None
            _check_content(session, repo, parsed)
            row = manifest_row(session, repo, digest)
            if row is None:
                row = OciManifest(
                    repository_id=repo.id, digest=digest, media_type=parsed.media_type,
                    size=len(body), artifact_type=parsed.artifact_type,
                    subject_digest=parsed.subject.digest if parsed.subject else None,
                    annotations=parsed.annotations)
                session.add(row)
                session.flush()
            if not is_digest(reference):
                set_tag(session, repo, reference, row)
            hub.store.commit(staged)
    finally:
        hub.store.discard(staged)
    return PushedManifest(digest, parsed.subject.digest if parsed.subject else None)


def delete_manifest(hub: Hub, caller: Caller, repository: str, reference: str) -> None:
    """By digest: the manifest and its tags; by tag: the tag only."""
    check_repository(repository)
    check_reference(reference)
    with hub.db.write() as session:
        repo = writable(session, caller, repository)
        row = manifest_row(session, repo, reference)
        if row is None:
            raise ManifestUnknown(f"manifest {reference} is not in repository {repository}")
        if is_digest(reference):
            refuse_pinned(session, repository, row.digest, None)
            session.delete(row)
            drop_if_empty(session, repo.id)
            return
        refuse_pinned(session, repository, row.digest, reference)
        tag = session.exec(select(OciTag).where(
            OciTag.repository_id == repo.id, OciTag.name == reference)).one()
        session.delete(tag)


def referrers(hub: Hub, repository: str, digest: str,
              artifact_type: str | None) -> list[dict[str, Any]]:
    """Descriptors of the manifests whose subject is `digest`, optionally of one type."""
    check_repository(repository)
    check_digest(digest)
    with hub.db.read() as session:
        repo = existing(session, repository)
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
