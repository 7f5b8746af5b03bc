"""The registry's tags: set by a manifest push, listed in lexical order, and pinned by
published versions: a tag or manifest that a published version records as its image cannot
be moved or deleted, since versions are immutable."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from fnhub.hub.context import Hub
from fnhub.hub.models import Version, utcnow
from fnhub.hub.oci.errors import Denied
from fnhub.hub.oci.models import OciManifest, OciRepository, OciTag
from fnhub.hub.oci.names import check_repository
from fnhub.hub.oci.repositories import existing, page_size


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


def refuse_pinned(session: Session, repository: str, digest: str, tag: str | None) -> None:
    """DENIED when a published version records this manifest (under `tag`) as its image."""
    if published := _pinned_by(session, repository, digest, tag):
        what = f"tag {tag}" if tag else f"manifest {digest}"
        raise Denied(f"{what} of {repository} is the image of published version {published}; "
                     "published versions are immutable",
                     hint="publish a new version with its own image")


def set_tag(session: Session, repository: OciRepository, tag: str, row: OciManifest) -> None:
    """Point `tag` at the manifest `row`, unless a published version pins where it points."""
    assert repository.id is not None and row.id is not None
    current = session.exec(select(OciTag).where(
        OciTag.repository_id == repository.id, OciTag.name == tag)).first()
    if current is None:
        session.add(OciTag(repository_id=repository.id, name=tag, manifest_id=row.id))
        return
    if current.manifest_id != row.id:
        previous = session.get(OciManifest, current.manifest_id)
        if previous is not None:
            refuse_pinned(session, repository.name, previous.digest, tag)
        current.manifest_id = row.id
        current.updated_at = utcnow()


def tags(hub: Hub, repository: str, n: int | None, last: str | None) -> tuple[list[str], bool]:
    """Tags in lexical order after `last`, `n` at most; and whether more follow."""
    check_repository(repository)
    limit = page_size(n)
    with hub.db.read() as session:
        repo = existing(session, repository)
        if not limit:
            return [], False
        query = select(OciTag.name).where(OciTag.repository_id == repo.id)
        if last:
            query = query.where(col(OciTag.name) > last)
        names = list(session.exec(query.order_by(col(OciTag.name)).limit(limit + 1)).all())
    return names[:limit], len(names) > limit
