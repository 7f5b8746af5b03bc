"""Storage maintenance run by operators (`hub admin fsck`, `hub admin gc`), not over HTTP.

Blobs are referenced by live package versions (`versions.package_digest`) and by the OCI
registry: blobs linked into a repository (`oci_blob_links`) and manifests
(`oci_manifests`). A new kind of row that points at blobs must be added to `references`,
the one list both commands (and backups) read.

`fsck` re-hashes every stored blob and checks every referencing row against the store.
`gc` deletes blobs nothing references, but only those older than a grace period: a blob
written by an upload whose row is not committed yet is young, so gc leaves it alone. It also
sweeps what uploads abandoned by a crash left in the store (past the same grace period).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from sqlmodel import Session, col, select

from fnhub.hub.context import Hub
from fnhub.hub.models import Function, Namespace, Version
from fnhub.hub.oci import uploads
from fnhub.hub.oci.models import OciBlobLink, OciManifest, OciRepository
from fnhub.hub.storage import BlobEntry, BlobStore
from fnhub.hub.upload_parts import LiveUploads

DEFAULT_GRACE = timedelta(hours=1)
ProblemKind = Literal["digest_mismatch", "missing_blob", "size_mismatch"]


@dataclass(frozen=True)
class Reference:
    """A row that needs a blob: what it is (for people), the digest, the size it expects."""

    what: str
    digest: str
    size: int


def references(session: Session) -> Iterator[Reference]:
    """Every row that points at a blob in the store."""
    versions = session.exec(
        select(Namespace.name, Function.name, Version.version, Version.package_digest,
               Version.package_size)
        .join(Function, col(Version.function_id) == Function.id)
        .join(Namespace, col(Function.namespace_id) == Namespace.id)
        .where(col(Version.deleted).is_(False))
    )
    for namespace, name, version, digest, size in versions:
        yield Reference(f"package of {namespace}/{name}@{version}", digest, size)
    links = session.exec(select(OciRepository.name, OciBlobLink.digest, OciBlobLink.size)
                         .join(OciRepository))
    for repository, digest, size in links:
        yield Reference(f"OCI blob in {repository}", digest, size)
    manifests = session.exec(select(OciRepository.name, OciManifest.digest, OciManifest.size)
                             .join(OciRepository))
    for repository, digest, size in manifests:
        yield Reference(f"OCI manifest in {repository}", digest, size)


def referenced_digests(hub: Hub) -> set[str]:
    with hub.db.read() as session:
        return {ref.digest for ref in references(session)}


def is_referenced(hub: Hub, digest: str) -> bool:
    """Whether any row needs `digest` now (gc asks again right before deleting)."""
    with hub.db.read() as session:
        return any(
            session.exec(query).first() is not None for query in (
                select(Version.id).where(Version.package_digest == digest,
                                         col(Version.deleted).is_(False)),
                select(OciBlobLink.repository_id).where(OciBlobLink.digest == digest),
                select(OciManifest.id).where(OciManifest.digest == digest),
            )
        )


# --------------------------------------------------------------------------- fsck


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    digest: str
    detail: str


@dataclass
class FsckReport:
    blobs_checked: int = 0
    rows_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _content_digest(hub: Hub, digest: str) -> str:
    sha = hashlib.sha256()
    for chunk in hub.store.open(digest):
        sha.update(chunk)
    return "sha256:" + sha.hexdigest()


def fsck(hub: Hub) -> FsckReport:
    """Re-hash every stored blob; check every referencing row has its blob, of its size."""
    report = FsckReport()
    stored: dict[str, BlobEntry] = {}
    for entry in hub.store.listing():
        stored[entry.digest] = entry
        report.blobs_checked += 1
        actual = _content_digest(hub, entry.digest)
        if actual != entry.digest:
            report.problems.append(Problem(
                "digest_mismatch", entry.digest,
                f"blob {entry.digest} has content that hashes to {actual}"))
    with hub.db.read() as session:
        for ref in references(session):
            report.rows_checked += 1
            entry = stored.get(ref.digest)
            if entry is None:
                report.problems.append(Problem(
                    "missing_blob", ref.digest, f"{ref.what} needs blob {ref.digest}, "
                                                "which is not in storage"))
            elif entry.size != ref.size:
                report.problems.append(Problem(
                    "size_mismatch", ref.digest,
                    f"{ref.what} expects {ref.size} bytes, blob {ref.digest} has {entry.size}"))
    return report


# --------------------------------------------------------------------------- gc


def sweep(store: BlobStore, live: LiveUploads, cutoff: float) -> list[str]:
    """Remove the store's leftovers (see `BlobStore.leftovers`) that no live upload session
    holds and that are older than `cutoff` (epoch s), as a crashed process leaves them;
    returns what was removed, for people."""
    removed = []
    for leftover in store.leftovers():
        if leftover.modified < cutoff and not live.hold(leftover):
            leftover.remove()
            removed.append(leftover.name)
    return removed


@dataclass
class GcReport:
    deleted: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    kept_referenced: int = 0
    kept_recent: int = 0  # unreferenced, but younger than the grace period
    uploads_expired: int = 0  # upload sessions untouched for their time to live
    leftovers_removed: list[str] = field(default_factory=list)  # what crashed uploads left
    dry_run: bool = False


def gc(hub: Hub, grace: timedelta = DEFAULT_GRACE, *, dry_run: bool = False) -> GcReport:
    """Delete blobs no row references that are older than `grace` (or list them: dry_run).

    A real run also expires stale upload sessions and sweeps the store of what no session
    holds and is older than `grace`: the staging files, session objects and S3 multipart
    uploads of requests whose process died before finishing or cleaning up.
    """
    report = GcReport(dry_run=dry_run)
    cutoff = time.time() - grace.total_seconds()
    if not dry_run:
        report.uploads_expired = uploads.expire_uploads(hub)
        report.leftovers_removed = sweep(hub.store, uploads.live_uploads(hub), cutoff)
    needed = referenced_digests(hub)
    for entry in hub.store.listing():
        if entry.digest in needed:
            report.kept_referenced += 1
        elif entry.modified > cutoff:
            report.kept_recent += 1
        elif is_referenced(hub, entry.digest):  # published since the first look
            report.kept_referenced += 1
        else:
            if not dry_run:
                hub.store.delete(entry.digest)
            report.deleted.append(entry.digest)
            report.bytes_freed += entry.size
    return report
