"""What each page of the web catalog shows, read from the database in a fixed number of queries.

Every page costs the same handful of SQL statements however many functions, versions or
keys the hub holds: lists are read with one query each (search results, then the latest
versions and signing keys of all results at once), never one query per row. Templates only
format these view models; they never touch the database.

Signature status is computed, not remembered: a version counts as verified when its stored
DSSE envelope verifies against a key registered to its namespace *now* and signs exactly its
package (and image) digest, so a tampered envelope or an unregistered key shows at once.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from fnhub.core.errors import InvalidVersion, NoMatchingVersion, NotFound, VerificationError
from fnhub.core.manifest import ARTIFACT_TYPES
from fnhub.core.names import closest, name_problem, namespace_problem
from fnhub.core.signing import check_subjects, parse_envelope, public_key_from_b64, verify_envelope
from fnhub.core.versions import Candidate, is_valid_version, parse_version, resolve
from fnhub.hub.context import Hub
from fnhub.hub.models import (
    Function,
    FunctionCategory,
    Namespace,
    NamespaceOwner,
    PublisherKey,
    Tag,
    User,
    Version,
)
from fnhub.hub.services import search
from fnhub.hub.web.readme import Readme, readmes
from fnhub.hub.web.snippets import Snippet, snippets

PAGE_SIZE = 20
MAX_PAGE = 100_000
MAX_VERSIONS_SHOWN = 100
MAX_SUGGESTIONS = 5
SORT_LABELS = {
    "relevance": "Best match",
    "downloads": "Most downloaded",
    "updated": "Recently updated",
    "name": "Name",
}


# --------------------------------------------------------------------------- URLs


def function_url(namespace: str, name: str, version: str | None = None) -> str:
    path = f"/{quote(namespace, safe='')}/{quote(name, safe='')}"
    return path + (f"/{quote(version, safe='')}" if version else "")


def namespace_url(namespace: str) -> str:
    return f"/{quote(namespace, safe='')}"


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class Suggestion:
    label: str
    url: str


class PageNotFound(NotFound):
    """A page that does not exist, with the pages the visitor most likely meant."""

    def __init__(self, message: str, suggestions: list[Suggestion]) -> None:
        first = next((s.label for s in suggestions if s.url.startswith("/") and "?" not in s.url),
                     None)
        super().__init__(message, hint=f"did you mean {first}?" if first else None)
        self.suggestions = suggestions


@dataclass(frozen=True)
class Redirect:
    """The page lives at another URL (e.g. `/ns/name/latest` names an exact version)."""

    url: str


def _close(word: str, candidates: Iterable[str]) -> list[str]:
    """Up to MAX_SUGGESTIONS existing names near `word`, the likeliest first."""
    pool = sorted(set(candidates))
    first = closest(word, pool)
    near = difflib.get_close_matches(word.lower(), pool, n=MAX_SUGGESTIONS, cutoff=0.6)
    return list(dict.fromkeys([*([first] if first else []), *near]))[:MAX_SUGGESTIONS]


def _search_suggestion(word: str) -> Suggestion:
    return Suggestion(f"search for “{word}”", "/?" + urlencode({"q": word}))


def _missing_namespace(session: Session, namespace: str) -> PageNotFound:
    names = session.exec(select(Namespace.name)).all()
    suggestions = [Suggestion(ns, namespace_url(ns)) for ns in _close(namespace, names)]
    problem = namespace_problem(namespace)
    message = (f"{namespace!r} is not a valid namespace: it {problem}" if problem
               else f"there is no namespace {namespace!r} on this hub")
    return PageNotFound(message, [*suggestions, _search_suggestion(namespace)])


def _missing_function(session: Session, namespace: str, name: str) -> PageNotFound:
    listed = session.exec(
        select(Namespace.name, Function.name).join(Namespace)
        .where(Function.live_versions > 0,
               or_(col(Namespace.name) == namespace, col(Function.name) == name))
    ).all()
    same_name = [Suggestion(f"{ns}/{fn}", function_url(ns, fn)) for ns, fn in listed
                 if fn == name and ns != namespace]
    in_namespace = [fn for ns, fn in listed if ns == namespace]
    if in_namespace:
        near = [Suggestion(f"{namespace}/{fn}", function_url(namespace, fn))
                for fn in _close(name, in_namespace)]
    else:  # a mistyped namespace: the right name in the namespaces it is close to
        spaces = _close(namespace, session.exec(select(Namespace.name)).all())
        rows = session.exec(
            select(Namespace.name, Function.name).join(Namespace)
            .where(Function.live_versions > 0, col(Namespace.name).in_(spaces))
        ).all() if spaces else []
        near = [Suggestion(f"{ns}/{fn}", function_url(ns, fn)) for ns in spaces
                for fn in _close(name, [f for n, f in rows if n == ns])]
    if problem := namespace_problem(namespace):
        message = f"{namespace!r} is not a valid namespace: it {problem}"
    elif problem := name_problem(name):
        message = f"{name!r} is not a valid function name: it {problem}"
    else:
        message = f"there is no function {namespace}/{name} on this hub"
    suggestions = list({s.url: s for s in [*near, *same_name]}.values())[:MAX_SUGGESTIONS]
    return PageNotFound(message, [*suggestions, _search_suggestion(name)])


# --------------------------------------------------------------------------- signatures


@dataclass(frozen=True)
class Signer:
    keyid: str
    registered: bool
    name: str | None = None


@dataclass(frozen=True)
class Verification:
    """Whether a version's signature holds today, who signed, and if not, why not."""

    verified: bool
    message: str
    signers: tuple[Signer, ...] = ()


@dataclass(frozen=True)
class RegisteredKey:
    keyid: str
    public: Ed25519PublicKey
    name: str | None
    created_at: datetime


Keys = dict[str, dict[str, RegisteredKey]]  # namespace -> keyid -> key


def _keys(session: Session, namespaces: Iterable[str]) -> Keys:
    """The keys registered to each of `namespaces`, oldest first, in one query."""
    wanted = sorted(set(namespaces))
    out: Keys = {ns: {} for ns in wanted}
    if not wanted:
        return out
    rows = session.exec(
        select(Namespace.name, PublisherKey.keyid, PublisherKey.public_key, PublisherKey.name,
               PublisherKey.created_at)
        .join(Namespace).where(col(Namespace.name).in_(wanted))
        .order_by(col(PublisherKey.created_at), col(PublisherKey.id))
    ).all()
    for namespace, keyid, public_key, name, created_at in rows:
        out[namespace][keyid] = RegisteredKey(keyid, public_key_from_b64(public_key), name,
                                              created_at)
    return out


def verify(envelope: dict[str, Any], ref: str, digest: str, image_digest: str | None,
           keys: Mapping[str, RegisteredKey]) -> Verification:
    """Check a stored envelope against the namespace's registered keys and the digests."""
    try:
        parsed = parse_envelope(envelope)
    except VerificationError as exc:
        return Verification(False, exc.message)
    signers = tuple(Signer(s.keyid, s.keyid in keys, keys[s.keyid].name if s.keyid in keys
                           else None) for s in parsed.signatures)
    try:
        statement = verify_envelope(parsed, {k: v.public for k, v in keys.items()})
        check_subjects(statement, ref, digest, image_digest=image_digest)
    except VerificationError as exc:
        return Verification(False, exc.message, signers)
    namespace = ref.split("/")[0]
    return Verification(True, f"signed by a key registered to {namespace!r}", signers)


# --------------------------------------------------------------------------- listings


@dataclass(frozen=True)
class ResultCard:
    namespace: str
    name: str
    latest_version: str | None
    description: str
    kind: str
    categories: list[str]
    downloads: int
    updated_at: datetime
    verified: bool

    @property
    def url(self) -> str:
        return function_url(self.namespace, self.name)


@dataclass(frozen=True)
class Listing:
    items: list[ResultCard]
    total: int
    page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / PAGE_SIZE))

    @property
    def first(self) -> int:
        return (self.page - 1) * PAGE_SIZE + 1


def _latest_verified(session: Session, refs: list[tuple[str, str]],
                     keys: Keys | None) -> set[tuple[str, str]]:
    """Which of the functions `refs` have a latest version whose signature verifies
    (with the namespaces' keys from `keys`, or read here when not given)."""
    if not refs:
        return set()
    # Two IN lists (a superset of the pairs) let every join use a unique index; a row-value
    # IN over two tables would scan all versions.
    rows = session.exec(
        select(Namespace.name, Function.name, Version.version, Version.package_digest,
               Version.image_digest, Version.envelope)
        .join(Function, col(Function.namespace_id) == Namespace.id)
        .join(Version, (col(Version.function_id) == Function.id)
              & (col(Version.version) == col(Function.latest_version)))
        .where(col(Namespace.name).in_({ns for ns, _ in refs}),
               col(Function.name).in_({fn for _, fn in refs}))
    ).all()
    wanted = set(refs)
    if keys is None or not all(ns in keys for ns, _ in refs):
        keys = _keys(session, (ns for ns, _ in refs))
    return {(ns, fn) for ns, fn, version, digest, image, envelope in rows
            if (ns, fn) in wanted
            and verify(envelope, f"{ns}/{fn}@{version}", digest, image, keys[ns]).verified}


def listing(hub: Hub, session: Session, *, page: int, q: str | None = None,
            category: str | None = None, kind: str | None = None,
            namespace: str | None = None, sort: str = "relevance",
            keys: Keys | None = None) -> Listing:
    """One page of search results with their signature badges: the search's two queries,
    then the results' latest versions and their namespaces' keys (unless `keys` has them)."""
    results = search.search(hub, q=q, category=category, kind=kind, namespace=namespace,
                            sort=sort, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    verified = _latest_verified(session, [(f.namespace, f.name) for f in results.items], keys)
    items = [ResultCard(f.namespace, f.name, f.latest_version, f.description, f.kind,
                        f.categories, f.downloads, f.updated_at, (f.namespace, f.name) in verified)
             for f in results.items]
    return Listing(items, results.total, page)


# --------------------------------------------------------------------------- home


@dataclass(frozen=True)
class Filters:
    q: str = ""
    category: str = ""
    kind: str = ""
    sort: str = "relevance"
    page: int = 1

    def url(self, **changes: Any) -> str:
        """The home page with these filters, some changed (`page` resets unless given)."""
        values = {"q": self.q, "category": self.category, "kind": self.kind,
                  "sort": self.sort, "page": 1} | changes
        if values["sort"] == "relevance":
            values.pop("sort")
        if values["page"] == 1:
            values.pop("page")
        query = urlencode({k: v for k, v in values.items() if v})
        return "/?" + query if query else "/"

    def page_url(self, page: int) -> str:
        return self.url(page=page)

    @property
    def active(self) -> bool:
        return bool(self.q or self.category or self.kind)


@dataclass(frozen=True)
class HomeView:
    filters: Filters
    listing: Listing
    categories: list[tuple[str, int]]  # (category, listed functions in it)
    kinds: tuple[str, ...] = search.KINDS
    sorts: dict[str, str] = field(default_factory=lambda: dict(SORT_LABELS))


def home(hub: Hub, filters: Filters) -> HomeView:
    with hub.db.read() as session:
        page = listing(hub, session, page=filters.page, q=filters.q or None,
                       category=filters.category or None, kind=filters.kind or None,
                       sort=filters.sort)
        # Counted on the category index alone; the few unlisted functions (every version
        # deleted) are left out by id, cheaper than joining every listed function's row.
        unlisted = select(Function.id).where(Function.live_versions <= 0)
        categories = session.exec(
            select(FunctionCategory.category, func.count())
            .where(col(FunctionCategory.function_id).not_in(unlisted))
            .group_by(col(FunctionCategory.category)).order_by(col(FunctionCategory.category))
        ).all()
    return HomeView(filters, page, [(c, n) for c, n in categories])


# --------------------------------------------------------------------------- namespace


@dataclass(frozen=True)
class NamespaceView:
    name: str
    owners: list[str]
    created_at: datetime
    keys: list[RegisteredKey]
    listing: Listing

    def page_url(self, page: int) -> str:
        return namespace_url(self.name) + (f"?page={page}" if page > 1 else "")


def namespace_page(hub: Hub, name: str, page: int) -> NamespaceView:
    with hub.db.read() as session:
        row = session.exec(select(Namespace).where(Namespace.name == name)).first()
        if row is None:
            raise _missing_namespace(session, name)
        owners = session.exec(
            select(User.name).join(NamespaceOwner, col(NamespaceOwner.user_id) == User.id)
            .where(NamespaceOwner.namespace_id == row.id).order_by(col(User.name))
        ).all()
        keys = _keys(session, [name])
        functions = listing(hub, session, page=page, namespace=name, sort="name", keys=keys)
    return NamespaceView(name, list(owners), row.created_at, list(keys[name].values()),
                         functions)


# --------------------------------------------------------------------------- function


@dataclass(frozen=True)
class VersionRow:
    version: str
    published_at: datetime
    yanked: bool
    yank_reason: str | None
    downloads: int
    tags: list[str]


@dataclass(frozen=True)
class PortRow:
    name: str
    type: str
    description: str
    required: bool
    default: str  # the default as a Python literal ("" when required)

    @property
    def artifact(self) -> bool:
        return self.type in ARTIFACT_TYPES


def _ports(ports: list[dict[str, Any]]) -> list[PortRow]:
    return [PortRow(p["name"], p["type"], p.get("description", ""), "default" not in p,
                    repr(p["default"]) if "default" in p else "") for p in ports]


@dataclass(frozen=True)
class FunctionView:
    namespace: str
    name: str
    version: str  # the version shown
    pinned: bool  # the page of one version (`/ns/name/version`), not the function's page
    latest_version: str | None
    manifest: dict[str, Any]
    downloads: int  # all versions
    version_downloads: int
    published_at: datetime
    yanked: bool
    yank_reason: str | None
    digest: str
    size: int
    image_ref: str | None
    image_digest: str | None
    inputs: list[PortRow]
    outputs: list[PortRow]
    versions: list[VersionRow]  # newest first, at most MAX_VERSIONS_SHOWN
    version_count: int
    tags: dict[str, str]
    verification: Verification
    snippets: list[Snippet]
    readme: Readme

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.manifest.get("metadata", {}))

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.manifest.get("spec", {}))

    @property
    def feature_set(self) -> bool:
        return self.manifest.get("kind") == "FeatureSet"

    @property
    def url(self) -> str:
        return function_url(self.namespace, self.name)

    def version_url(self, version: str) -> str:
        return function_url(self.namespace, self.name, version)


@dataclass(frozen=True)
class _Listed:
    id: int
    version: str
    yanked: bool
    yank_reason: str | None
    published_at: datetime
    downloads: int


def _shown_version(live: list[_Listed], latest: str | None) -> _Listed:
    """The card's version: `latest`, else the highest non-yanked, else the highest."""
    return max(live, key=lambda v: (v.version == latest, not v.yanked, parse_version(v.version)))


def _pick(session: Session, function: Function, namespace: str, live: list[_Listed],
          tags: dict[str, str], requested: str | None) -> _Listed | Redirect:
    """The version a URL asks for; a tag or range redirects to the exact version it names."""
    if requested is None:
        return _shown_version(live, function.latest_version)
    by_version = {v.version: v for v in live}
    if requested in by_version:
        return by_version[requested]
    ref = f"{namespace}/{function.name}"
    newest = sorted(live, key=lambda v: parse_version(v.version), reverse=True)
    others = [Suggestion(f"{ref} {v.version}", function_url(namespace, function.name, v.version))
              for v in newest[:MAX_SUGGESTIONS]]
    if is_valid_version(requested):
        deleted = session.exec(select(Version.id).where(
            Version.function_id == function.id, Version.version == requested)).first()
        reason = "was deleted (its number stays reserved)" if deleted else "does not exist"
        raise PageNotFound(f"version {requested} of {ref} {reason}", others)
    try:
        chosen = resolve(requested, [Candidate(v.version, v.yanked) for v in live], tags, ref=ref)
    except (InvalidVersion, NoMatchingVersion) as exc:
        raise PageNotFound(f"no version of {ref} matches {requested!r}: {exc.message}",
                           others) from None
    return Redirect(function_url(namespace, function.name, chosen))


def function_page(hub: Hub, namespace: str, name: str,
                  version: str | None = None) -> FunctionView | Redirect:
    """A function's card at `version` (an exact version, tag or range), or at `latest`."""
    with hub.db.read() as session:
        found = session.exec(
            select(Function).join(Namespace)
            .where(Namespace.name == namespace, Function.name == name)
        ).first()
        if found is None:
            raise _missing_function(session, namespace, name)
        live = [_Listed(*row) for row in session.exec(
            select(Version.id, Version.version, Version.yanked, Version.yank_reason,
                   Version.published_at, Version.downloads)
            .where(Version.function_id == found.id, col(Version.deleted).is_(False))
        ).all()]
        if not live:
            raise PageNotFound(f"{namespace}/{name} has no versions left (all were deleted)",
                               [Suggestion(namespace, namespace_url(namespace))])
        tag_rows = session.exec(
            select(Tag.name, Version.version).join(Version, col(Tag.version_id) == Version.id)
            .where(Tag.function_id == found.id).order_by(col(Tag.name))
        ).all()
        tags = dict(tag_rows)
        chosen = _pick(session, found, namespace, live, tags, version)
        if isinstance(chosen, Redirect):
            return chosen
        row = session.get(Version, chosen.id)
        assert row is not None
        keys = _keys(session, [namespace])[namespace]
    return _function_view(namespace, found, row, live, tags, keys, pinned=version is not None,
                          readme=readmes.get(hub.store, row.package_digest))


def _function_view(namespace: str, function: Function, row: Version, live: list[_Listed],
                   tags: dict[str, str], keys: Mapping[str, RegisteredKey], *, pinned: bool,
                   readme: Readme) -> FunctionView:
    tagged: dict[str, list[str]] = {}
    for tag, version in tags.items():
        tagged.setdefault(version, []).append(tag)
    newest = sorted(live, key=lambda v: parse_version(v.version), reverse=True)
    shown = newest[:MAX_VERSIONS_SHOWN]
    if all(v.id != row.id for v in shown):  # an old version's page still lists itself
        shown.append(next(v for v in newest if v.id == row.id))
    versions = [VersionRow(v.version, v.published_at, v.yanked, v.yank_reason, v.downloads,
                           tagged.get(v.version, [])) for v in shown]
    spec = row.manifest.get("spec", {})
    ref = f"{namespace}/{function.name}@{row.version}"
    exact = pinned or row.version != function.latest_version
    return FunctionView(
        namespace=namespace, name=function.name, version=row.version, pinned=pinned,
        latest_version=function.latest_version, manifest=row.manifest,
        downloads=function.downloads, version_downloads=row.downloads,
        published_at=row.published_at, yanked=row.yanked, yank_reason=row.yank_reason,
        digest=row.package_digest, size=row.package_size,
        image_ref=row.image_ref, image_digest=row.image_digest,
        inputs=_ports(spec.get("inputs", [])), outputs=_ports(spec.get("outputs", [])),
        versions=versions, version_count=len(live), tags=tags,
        verification=verify(row.envelope, ref, row.package_digest, row.image_digest, keys),
        snippets=snippets(namespace, function.name, row.version, row.manifest, pinned=exact),
        readme=readme,
    )
