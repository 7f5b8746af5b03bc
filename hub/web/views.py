"""What each page of the web catalog shows, read through the hub's services in a fixed
number of queries.

Every page costs the same handful of SQL statements however many functions, versions or
keys the hub holds: lists are read with one query each (search results, then the latest
versions and signing keys of all results at once), never one query per row. The lookups,
the names a visitor likely meant and the signature checks are the services' own
(`fnhub.hub.services`); this module shapes what they return into view models. Templates
only format those; they never touch the database.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlmodel import Session

from fnhub.core.errors import InvalidVersion, NoMatchingVersion
from fnhub.core.manifest import ARTIFACT_TYPES
from fnhub.core.names import name_problem, namespace_problem
from fnhub.core.versions import Candidate, is_valid_version, parse_version, resolve
from fnhub.hub.context import Hub
from fnhub.hub.models import Function, Version
from fnhub.hub.services import functions, namespaces, search
from fnhub.hub.services.keys import Registered, RegisteredKey, registered_keys
from fnhub.hub.services.signatures import Verification, latest_verified, verification
from fnhub.hub.web.errors import PageNotFound, Suggestion
from fnhub.hub.web.readme import Readme, readmes
from fnhub.hub.web.snippets import Snippet, snippets
from fnhub.hub.web.urls import function_url, namespace_url

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


# --------------------------------------------------------------------------- not found


@dataclass(frozen=True)
class Redirect:
    """The page lives at another URL (e.g. `/ns/name/latest` names an exact version)."""

    url: str


def _search_suggestion(word: str) -> Suggestion:
    return Suggestion(f"search for “{word}”", "/?" + urlencode({"q": word}))


def _missing_namespace(session: Session, namespace: str) -> PageNotFound:
    suggestions = [Suggestion(ns, namespace_url(ns))
                   for ns in namespaces.likely(session, namespace, MAX_SUGGESTIONS)]
    problem = namespace_problem(namespace)
    message = (f"{namespace!r} is not a valid namespace: it {problem}" if problem
               else f"there is no namespace {namespace!r} on this hub")
    return PageNotFound(message, [*suggestions, _search_suggestion(namespace)])


def _missing_function(session: Session, namespace: str, name: str) -> PageNotFound:
    suggestions = [Suggestion(f"{ns}/{fn}", function_url(ns, fn))
                   for ns, fn in functions.likely(session, namespace, name, MAX_SUGGESTIONS)]
    if problem := namespace_problem(namespace):
        message = f"{namespace!r} is not a valid namespace: it {problem}"
    elif problem := name_problem(name):
        message = f"{name!r} is not a valid function name: it {problem}"
    else:
        message = f"there is no function {namespace}/{name} on this hub"
    return PageNotFound(message, [*suggestions, _search_suggestion(name)])


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
    suggestion: str | None = None  # the corrected query these results are for (typos)
    capped: bool = False  # more than `total` match (the search counts up to a bound)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / PAGE_SIZE))

    @property
    def first(self) -> int:
        return (self.page - 1) * PAGE_SIZE + 1


def listing(hub: Hub, session: Session, *, page: int, q: str | None = None,
            category: str | None = None, kind: str | None = None,
            namespace: str | None = None, sort: str = "relevance",
            keys: Registered | None = None) -> Listing:
    """One page of search results with their signature badges: the search's two queries,
    then the results' latest versions and their namespaces' keys (unless `keys` has them)."""
    results = search.search(hub, q=q, category=category, kind=kind, namespace=namespace,
                            sort=sort, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    verified = latest_verified(session, [(f.namespace, f.name) for f in results.items], keys)
    items = [ResultCard(f.namespace, f.name, f.latest_version, f.description, f.kind,
                        f.categories, f.downloads, f.updated_at, (f.namespace, f.name) in verified)
             for f in results.items]
    return Listing(items, results.total, page, results.suggestion, results.total_capped)


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
    return HomeView(filters, page, search.categories(hub))


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
        row = namespaces.find(session, name)
        if row is None:
            raise _missing_namespace(session, name)
        owners = namespaces.owners(session, row)
        keys = registered_keys(session, [name])
        listed = listing(hub, session, page=page, namespace=name, sort="name", keys=keys)
    return NamespaceView(name, owners, row.created_at, list(keys[name].values()), listed)


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


def _pick(function: Function, namespace: str, every: list[Version], live: list[Version],
          tags: dict[str, str], requested: str | None) -> Version | Redirect:
    """The version a URL asks for; a tag or range redirects to the exact version it names."""
    if requested is None:
        return functions.shown_version(live, function.latest_version)
    by_version = {v.version: v for v in live}
    if requested in by_version:
        return by_version[requested]
    ref = f"{namespace}/{function.name}"
    newest = sorted(live, key=lambda v: parse_version(v.version), reverse=True)
    others = [Suggestion(f"{ref} {v.version}", function_url(namespace, function.name, v.version))
              for v in newest[:MAX_SUGGESTIONS]]
    if is_valid_version(requested):
        deleted = any(v.version == requested for v in every)
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
        found = functions.find_function(session, namespace, name)
        if found is None:
            raise _missing_function(session, namespace, name)
        every = functions.all_versions(session, found)
        live = [v for v in every if not v.deleted]
        if not live:
            raise PageNotFound(f"{namespace}/{name} has no versions left (all were deleted)",
                               [Suggestion(namespace, namespace_url(namespace))])
        tags = functions.tag_map(session, found)
        chosen = _pick(found, namespace, every, live, tags, version)
        if isinstance(chosen, Redirect):
            return chosen
        keys = registered_keys(session, [namespace])[namespace]
    return _function_view(namespace, found, chosen, live, tags, keys, pinned=version is not None,
                          readme=readmes.get(hub.store, chosen.package_digest))


def _function_view(namespace: str, function: Function, row: Version, live: list[Version],
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
        verification=verification(row.envelope, ref, row.package_digest, row.image_digest,
                                  keys),
        snippets=snippets(namespace, function.name, row.version, row.manifest, pinned=exact),
        readme=readme,
    )
