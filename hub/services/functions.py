"""Functions and their versions: lookups, resolution, downloads, yank, tags and deletion.

A function's card (description, kind, categories, labels, latest version, search entry) is
derived from its versions by `refresh`, which every change of a version calls in the same
transaction; it also raises the function's index serial (`bump_index_serials`), as do tag
changes and changes of the namespace's keys. Deleting a version keeps its row (the number
stays taken forever) and drops its blob once no live version shares it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, case, or_, update
from sqlalchemy import delete as sql_delete
from sqlmodel import Session, col, select

from fnhub.core.api_models import (
    FunctionDetail,
    ImageInfo,
    PackageInfo,
    Resolution,
    SignatureInfo,
    VersionDetail,
    VersionSummary,
)
from fnhub.core.errors import InvalidInput, NoMatchingVersion, NotFound
from fnhub.core.names import check_name, check_namespace, name_problem
from fnhub.core.versions import LATEST, TAG_RE, Candidate, parse_spec, parse_version, resolve
from fnhub.hub.context import Hub
from fnhub.hub.models import Function, FunctionCategory, Namespace, Tag, Version, utcnow
from fnhub.hub.services import namespaces, search
from fnhub.hub.services.auth import Caller

MAX_TAG = 64


# --------------------------------------------------------------------------- lookups


def _ref(namespace: str, name: str, version: str | None = None) -> str:
    return f"{namespace}/{name}" + (f"@{version}" if version else "")


def find_function(session: Session, namespace: str, name: str) -> Function | None:
    return session.exec(
        select(Function).join(Namespace)
        .where(Namespace.name == namespace, Function.name == name)
    ).first()


def likely(session: Session, namespace: str, name: str,
           limit: int = namespaces.MAX_GUESSES) -> list[tuple[str, str]]:
    """The listed functions someone asking for `namespace/name` most likely meant, likeliest
    first: names close to `name` in that namespace (or, when it has none, the close names
    in the namespaces close to it), then the same name in other namespaces."""
    listed = session.exec(
        select(Namespace.name, Function.name).join(Namespace)
        .where(Function.live_versions > 0,
               or_(col(Namespace.name) == namespace, col(Function.name) == name))
    ).all()
    same_name = [(ns, fn) for ns, fn in listed if fn == name and ns != namespace]
    in_namespace = [fn for ns, fn in listed if ns == namespace]
    if in_namespace:
        close = [(namespace, fn) for fn in namespaces.near(name, in_namespace, limit)]
    else:  # a mistyped namespace: the right name in the namespaces it is close to
        spaces = namespaces.likely(session, namespace, limit)
        rows = session.exec(
            select(Namespace.name, Function.name).join(Namespace)
            .where(Function.live_versions > 0, col(Namespace.name).in_(spaces))
        ).all() if spaces else []
        close = [(ns, fn) for ns in spaces
                 for fn in namespaces.near(name, [f for n, f in rows if n == ns], limit)]
    return list(dict.fromkeys([*close, *same_name]))[:limit]


def require_function(session: Session, namespace: str, name: str) -> Function:
    """The function, or NotFound with a hint naming the closest existing one."""
    check_namespace(namespace)
    check_name(name)
    function = find_function(session, namespace, name)
    if function is not None:
        return function
    guesses = likely(session, namespace, name, 1)
    raise NotFound(f"no function {_ref(namespace, name)}",
                   hint=f"did you mean {_ref(*guesses[0])}?" if guesses else None)


def all_versions(session: Session, function: Function) -> list[Version]:
    """Every version of the function, deleted ones included (their numbers stay taken)."""
    return list(session.exec(select(Version).where(Version.function_id == function.id)).all())


def require_version(session: Session, function: Function, namespace: str,
                    version: str) -> Version:
    """A live version; NotFound (saying so) when it never existed or was deleted."""
    parse_version(version)
    row = session.exec(
        select(Version).where(Version.function_id == function.id, Version.version == version)
    ).first()
    ref = _ref(namespace, function.name, version)
    if row is None:
        live = sorted((v for v in all_versions(session, function) if not v.deleted),
                      key=lambda v: parse_version(v.version))
        shown = ", ".join(v.version for v in live[-10:]) or "none"
        raise NotFound(f"no version {ref}", hint=f"available versions: {shown}")
    if row.deleted:
        raise NotFound(f"{ref} was deleted (its version number stays reserved)")
    return row


def tag_map(session: Session, function: Function) -> dict[str, str]:
    """Tag -> version, by tag name."""
    rows = session.exec(
        select(Tag.name, Version.version).join(Version, col(Tag.version_id) == Version.id)
        .where(Tag.function_id == function.id).order_by(Tag.name)
    ).all()
    return dict(rows)


def _candidates(versions: list[Version]) -> list[Candidate]:
    return [Candidate(v.version, v.yanked) for v in versions if not v.deleted]


# --------------------------------------------------------------------------- the card


def shown_version(live: list[Version], latest: str | None) -> Version:
    """The version a function's card shows: `latest`, else the highest non-yanked, else the
    highest."""
    return max(live, key=lambda v: (v.version == latest, not v.yanked, parse_version(v.version)))


def bump_index_serials(session: Session, where: ColumnElement[bool]) -> None:
    """Raise the index serial of the functions `where` selects to max(serial + 1, now in ms).

    One UPDATE in the caller's transaction (so with the change it stands for), which locks
    the rows it raises; the clock term keeps serials rising after a backup is restored.
    """
    now_ms = int(time.time() * 1000)
    serial = col(Function.index_serial)
    session.execute(
        update(Function).where(where)
        .values(index_serial=case((serial + 1 > now_ms, serial + 1), else_=now_ms))
        .execution_options(synchronize_session=False)
    )


def refresh(session: Session, function: Function, namespace: str) -> None:
    """Recompute the card, category rows and search entry from the function's versions.

    The function's row is locked first (FOR NO KEY UPDATE on PostgreSQL; SQLite's writers
    are serialised anyway) and re-read, so two replicas changing versions of one function
    at once compute the card one after the other, each from all committed versions.
    """
    session.flush()
    session.refresh(function, with_for_update={"key_share": True})
    bump_index_serials(session, col(Function.id) == function.id)
    live = [v for v in all_versions(session, function) if not v.deleted]
    function.live_versions = len(live)
    try:
        function.latest_version = resolve(LATEST, _candidates(live))
    except NoMatchingVersion:
        function.latest_version = None
    shown = shown_version(live, function.latest_version).manifest if live else None
    keywords: list[str] = []
    if shown is not None:
        metadata, spec = shown.get("metadata", {}), shown.get("spec", {})
        function.description = metadata.get("description", "")
        feature_set = shown.get("kind") == "FeatureSet"
        function.kind = "feature-set" if feature_set else spec.get("kind", "job")
        function.categories = list(metadata.get("categories", []))
        function.labels = dict(metadata.get("labels", {}))
        keywords = [*function.categories, *function.labels, *function.labels.values(),
                    function.kind]
        if feature_set:  # found by its entities and features too
            keywords += [c["name"] for c in (*spec["entities"], *spec["features"])]
    session.add(function)
    session.execute(sql_delete(FunctionCategory).where(
        col(FunctionCategory.function_id) == function.id))
    assert function.id is not None
    for category in sorted(set(function.categories)):
        session.add(FunctionCategory(function_id=function.id, category=category))
    session.flush()
    search.index_function(session, function, namespace, keywords)


# --------------------------------------------------------------------------- views


def version_detail(namespace: str, function: Function, version: Version) -> VersionDetail:
    image = (ImageInfo(ref=version.image_ref, digest=version.image_digest)
             if version.image_ref or version.image_digest else None)
    return VersionDetail(
        namespace=namespace, name=function.name, version=version.version,
        manifest=version.manifest,
        package=PackageInfo(digest=version.package_digest, size=version.package_size),
        image=image, signatures=[SignatureInfo(keyid=k) for k in version.keyids],
        yanked=version.yanked, yank_reason=version.yank_reason,
        published_at=version.published_at, downloads=version.downloads,
    )


def _detail(session: Session, function: Function, namespace: str) -> FunctionDetail:
    live = sorted((v for v in all_versions(session, function) if not v.deleted),
                  key=lambda v: parse_version(v.version), reverse=True)
    return FunctionDetail(
        **search.summary(function, namespace).model_dump(),
        versions=[VersionSummary(version=v.version, digest=v.package_digest, yanked=v.yanked,
                                 yank_reason=v.yank_reason, published_at=v.published_at)
                  for v in live],
        tags=tag_map(session, function),
    )


def get_function(hub: Hub, namespace: str, name: str) -> FunctionDetail:
    """The function's card with its live versions (newest first) and tags."""
    with hub.db.read() as session:
        function = require_function(session, namespace, name)
        return _detail(session, function, namespace)


def get_version(hub: Hub, namespace: str, name: str, version: str) -> VersionDetail:
    with hub.db.read() as session:
        function = require_function(session, namespace, name)
        return version_detail(namespace, function,
                              require_version(session, function, namespace, version))


def resolve_version(hub: Hub, namespace: str, name: str, spec: str | None) -> Resolution:
    """The version a spec selects: ranges skip yanked versions, exact pins and tags do not.

    Resolution is a hot path: one SELECT of the narrow columns it needs (number, yanked,
    deleted, digest and the tags), found by the function's namespace and name in the same
    statement; never the function's row, the manifests or the envelopes. A function keeps
    every version's row, so no rows means no such function (looked up again only to say so)."""
    parsed = parse_spec(spec)
    check_namespace(namespace)
    check_name(name)
    with hub.db.read() as session:
        rows = session.exec(
            select(Version.version, Version.yanked, Version.deleted, Version.package_digest,
                   Tag.name)
            .join(Function, col(Function.id) == Version.function_id).join(Namespace)
            .outerjoin(Tag, col(Tag.version_id) == Version.id)
            .where(Namespace.name == namespace, Function.name == name)
        ).all()
        if not rows:
            require_function(session, namespace, name)
    versions = {number: (yanked, deleted, digest) for number, yanked, deleted, digest, _ in rows}
    tags = {tag: number for number, _, _, _, tag in rows if tag is not None}
    candidates = [Candidate(number, yanked)
                  for number, (yanked, deleted, _) in versions.items() if not deleted]
    chosen = resolve(parsed, candidates, tags, ref=_ref(namespace, name))
    yanked, _, digest = versions[chosen]
    return Resolution(namespace=namespace, name=name, version=chosen, digest=digest,
                      yanked=yanked)


def attestations(hub: Hub, namespace: str, name: str, version: str) -> list[dict[str, Any]]:
    """The DSSE envelopes recorded for a version (one per publish)."""
    with hub.db.read() as session:
        function = require_function(session, namespace, name)
        return [require_version(session, function, namespace, version).envelope]


# --------------------------------------------------------------------------- downloads


@dataclass(frozen=True)
class Download:
    digest: str
    size: int
    filename: str
    chunks: Iterator[bytes]
    redirect: str | None = None  # a presigned storage URL to send the client to instead


def package_info(hub: Hub, namespace: str, name: str, version: str) -> PackageInfo:
    with hub.db.read() as session:
        function = require_function(session, namespace, name)
        row = require_version(session, function, namespace, version)
        return PackageInfo(digest=row.package_digest, size=row.package_size)


def download(hub: Hub, namespace: str, name: str, version: str) -> Download:
    """Open the package for streaming and count the download (version and function)."""
    with hub.db.write() as session:
        function = require_function(session, namespace, name)
        row = require_version(session, function, namespace, version)
        filename = f"{name}-{version}.tar.gz"
        redirect = hub.store.download_url(row.package_digest, filename) \
            if hub.settings.s3_presigned_downloads else None
        chunks = iter(()) if redirect else hub.store.open(row.package_digest)
        session.execute(update(Version).where(col(Version.id) == row.id)
                        .values(downloads=col(Version.downloads) + 1))
        session.execute(update(Function).where(col(Function.id) == function.id)
                        .values(downloads=col(Function.downloads) + 1))
    return Download(digest=row.package_digest, size=row.package_size,
                    filename=filename, chunks=chunks, redirect=redirect)


# --------------------------------------------------------------------------- changes


def _editable(session: Session, caller: Caller, namespace: str, name: str) -> Function:
    """The function, once the caller is known to own its namespace (or is an admin)."""
    check_namespace(namespace)
    check_name(name)
    namespaces.authorize(session, caller, namespace, create=False)
    return require_function(session, namespace, name)


def _set_yanked(hub: Hub, caller: Caller, namespace: str, name: str, version: str,
                reason: str | None, yanked: bool) -> VersionDetail:
    with hub.db.write() as session:
        function = _editable(session, caller, namespace, name)
        row = require_version(session, function, namespace, version)
        row.yanked = yanked
        row.yank_reason = reason
        session.add(row)
        session.flush()
        refresh(session, function, namespace)
        return version_detail(namespace, function, row)


def yank(hub: Hub, caller: Caller, namespace: str, name: str, version: str,
         reason: str) -> VersionDetail:
    """Hide a version from ranges and `latest`; exact pins still get it (with a warning)."""
    if not reason.strip():
        raise InvalidInput("yanking needs a reason")
    return _set_yanked(hub, caller, namespace, name, version, reason.strip(), True)


def unyank(hub: Hub, caller: Caller, namespace: str, name: str, version: str) -> VersionDetail:
    return _set_yanked(hub, caller, namespace, name, version, None, False)


def check_tag(tag: str) -> str:
    """A tag name: lowercase, starting with a letter (so never a version or range), not `latest`."""
    if tag == LATEST:
        raise InvalidInput("'latest' is computed by the hub and cannot be set",
                           hint="pick another tag name, like 'stable'")
    if len(tag) > MAX_TAG or not TAG_RE.match(tag) or name_problem(tag):
        raise InvalidInput(
            f"invalid tag {tag!r}: use at most {MAX_TAG} lowercase letters and digits, "
            "starting with a letter, separated by single '.', '_' or '-'"
        )
    parse_spec(tag)  # refuses tags that read like versions, e.g. 'v1.2'
    return tag


def set_tag(hub: Hub, caller: Caller, namespace: str, name: str, tag: str,
            version: str) -> FunctionDetail:
    """Point `tag` at a live version (moving it if it pointed elsewhere)."""
    check_tag(tag)
    with hub.db.write() as session:
        function = _editable(session, caller, namespace, name)
        row = require_version(session, function, namespace, version)
        assert function.id is not None and row.id is not None
        existing = session.exec(
            select(Tag).where(Tag.function_id == function.id, Tag.name == tag)
        ).first()
        if existing is None:
            existing = Tag(function_id=function.id, name=tag, version_id=row.id)
        existing.version_id = row.id
        existing.updated_at = utcnow()
        session.add(existing)
        session.flush()
        bump_index_serials(session, col(Function.id) == function.id)
        return _detail(session, function, namespace)


def delete_version(hub: Hub, caller: Caller, namespace: str, name: str, version: str) -> None:
    """Soft-delete: the row stays (the number is never reused); tags on it and its blob go."""
    with hub.db.write() as session:
        function = _editable(session, caller, namespace, name)
        row = require_version(session, function, namespace, version)
        row.deleted = True
        row.deleted_at = utcnow()
        session.add(row)
        session.execute(sql_delete(Tag).where(col(Tag.version_id) == row.id))
        session.flush()
        refresh(session, function, namespace)
        shared = session.exec(
            select(Version.id).where(Version.package_digest == row.package_digest,
                                     col(Version.deleted).is_(False))
        ).first()
    # Only once the deletion is committed: a blob left over by a crash here is harmless.
    if shared is None:
        hub.store.delete(row.package_digest)
