"""Version specs and their resolution against a function's published versions (design §2).

A spec is one of:

- a tag: ``latest`` (also ``None`` or ``""``) or a name matching ``[a-z][a-z0-9._-]*``
  that the hub maps to one version (``stable``);
- an exact version ``1.5.0`` / ``1.5.0-rc.1`` (also written ``==1.5.0``): an *exact pin*;
- a comma-separated list of constraints, all of which must hold. A constraint is
  ``*`` (any), a partial version ``1.5`` (``>=1.5.0,<1.6.0``) or ``1`` (``>=1.0.0,<2.0.0``),
  a caret ``^1.5`` (npm rules: ``^0.3`` = ``>=0.3.0,<0.4.0``, ``^0.0.3`` = ``>=0.0.3,<0.0.4``),
  a tilde ``~1.5.2`` (``>=1.5.2,<1.6.0``; ``~1`` = ``>=1.0.0,<2.0.0``), or a comparison
  ``>=``, ``>``, ``<=``, ``<``, ``==``, ``!=`` with a full or partial version (padded with zeros,
  so ``<2`` is ``<2.0.0``).

Resolution picks the highest matching version. Yanked versions are never chosen, except by an
exact pin or a named tag that points at them (the caller warns). Prereleases are only
considered when the spec itself names one (``>=2.0.0-rc.1``, ``^2.0.0-beta``); then any
prerelease inside the bounds may match. Upper bounds derived from partials, carets and tildes
exclude the prereleases of the bound (``^1.5.0-beta`` never picks ``2.0.0-rc.1``).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import NamedTuple

import semver

from fnhub.core.errors import InvalidVersion, NoMatchingVersion
from fnhub.core.names import closest

LATEST = "latest"
TAG_RE = re.compile(r"^[a-z][a-z0-9._-]*\Z")
_PARTIAL_RE = re.compile(r"^(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?$")
_COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le,
    "<": operator.lt, "==": operator.eq, "!=": operator.ne,
}
_VERSION_EXAMPLE = "like 1.2.0, 1.2 or 1"
_MAX_LISTED = 20


@dataclass(frozen=True)
class Candidate:
    """One published version as the resolver sees it."""

    version: str
    yanked: bool = False


class Constraint(NamedTuple):
    op: str
    version: semver.Version


@dataclass(frozen=True)
class VersionSpec:
    """A parsed spec. `tag` is set for tags, `exact` for exact pins, otherwise `constraints`."""

    text: str
    tag: str | None = None
    exact: str | None = None
    constraints: tuple[Constraint, ...] = ()
    prerelease: bool = False  # whether prerelease versions may match

    def matches(self, version: str | semver.Version) -> bool:
        """Whether `version` satisfies the range (`latest` matches any non-prerelease)."""
        if self.tag not in (None, LATEST):
            raise InvalidVersion(
                f"{self.text!r} is a tag: only the hub knows which version it names"
            )
        parsed = version if isinstance(version, semver.Version) else parse_version(version)
        if parsed.prerelease and not self.prerelease:
            return False
        return all(_COMPARISONS[c.op](parsed.compare(c.version), 0) for c in self.constraints)

    def __str__(self) -> str:
        return self.text


def is_valid_version(text: str) -> bool:
    """Whether `text` is a full SemVer 2.0 version (not a range, not a partial)."""
    return isinstance(text, str) and semver.Version.is_valid(text)


def parse_version(text: str) -> semver.Version:
    """A full SemVer 2.0 version, or InvalidVersion naming the text."""
    parsed = _parsed(text) if isinstance(text, str) else None
    if parsed is None:
        raise InvalidVersion(f"{text!r} is not a SemVer 2.0 version (like 1.2.0 or 1.2.0-rc.1)")
    return parsed


@lru_cache(maxsize=4096)
def _parsed(text: str) -> semver.Version | None:
    """`text` parsed, None when it is no version. Cached (the versions are immutable):
    resolving a spec parses every version of the function, on every request."""
    return semver.Version.parse(text) if semver.Version.is_valid(text) else None


def sort_versions(versions: Iterable[str]) -> list[str]:
    """The versions in ascending SemVer precedence."""
    return sorted(versions, key=parse_version)


def parse_spec(text: str | None) -> VersionSpec:
    """Parse a version spec; a malformed one raises InvalidVersion saying what is wrong."""
    if text is None or text == "":
        return VersionSpec(text=LATEST, tag=LATEST)
    if not isinstance(text, str):
        raise InvalidVersion(
            f"version spec must be text, got {type(text).__name__} {text!r} "
            "(quote it in YAML: '1.10' would otherwise become 1.1)"
        )
    body = text.strip()
    if TAG_RE.fullmatch(body):
        if body[0] == "v" and _is_versionish(body[1:]):
            raise _bad(text, f"write the version without the leading 'v': {body[1:]!r}")
        return VersionSpec(text=text, tag=body)
    parsed: list[_Item] = []
    for item in body.split(","):
        if not item.strip():
            raise _bad(text, "empty constraint (a stray ',' or nothing at all)")
        parsed.append(_parse_constraint(text, item.strip()))
    return VersionSpec(
        text=text,
        exact=parsed[0].exact if len(parsed) == 1 else None,
        constraints=tuple(c for item in parsed for c in item.constraints),
        prerelease=any(item.prerelease for item in parsed),
    )


def resolve(
    spec: str | VersionSpec | None,
    candidates: Iterable[Candidate],
    tags: Mapping[str, str] | None = None,
    *,
    ref: str = "",
) -> str:
    """The version `spec` selects among `candidates`; `ref` ("ns/name") only words errors.

    `latest` is computed from the candidates (a `latest` entry in `tags` is not consulted);
    other tags are looked up in `tags` (tag -> exact version).
    """
    parsed = spec if isinstance(spec, VersionSpec) else parse_spec(spec)
    pool = [(candidate, parse_version(candidate.version)) for candidate in candidates]
    if parsed.tag not in (None, LATEST):
        return _resolve_tag(parsed.text, parsed.tag, pool, tags or {}, ref)
    usable = [
        (version, candidate.version)
        for candidate, version in pool
        if (parsed.exact or not candidate.yanked) and parsed.matches(version)
    ]
    if usable:
        return max(usable, key=lambda pair: pair[0])[1]
    subject = f"no version of {ref}" if ref else "no version"
    raise NoMatchingVersion(
        f"{subject} matches {parsed.text!r} ({_available(pool)})", hint=_why_not(parsed, pool)
    )


def _resolve_tag(
    text: str,
    tag: str,
    pool: list[tuple[Candidate, semver.Version]],
    tags: Mapping[str, str],
    ref: str,
) -> str:
    """A named tag resolves to the version it points at, like an exact pin (even if yanked)."""
    subject = ref or "the function"
    target = tags.get(tag)
    if target is None:
        known = f"tags: {', '.join(sorted(tags))}" if tags else "it has no tags"
        guess = closest(tag, tags)
        raise NoMatchingVersion(
            f"{subject} has no tag {text!r} ({known})",
            hint=f"did you mean {guess!r}?" if guess else None,
        )
    if any(candidate.version == target for candidate, _ in pool):
        return target
    raise NoMatchingVersion(
        f"tag {text!r} of {subject} points to {target}, which is not available ({_available(pool)})"
    )


def _available(pool: list[tuple[Candidate, semver.Version]]) -> str:
    """The non-yanked versions, highest last, capped so the message stays readable."""
    live = [c.version for c, _ in sorted(pool, key=lambda pair: pair[1]) if not c.yanked]
    if not live:
        return "no versions available"
    shown = live[-_MAX_LISTED:]
    older = len(live) - len(shown)
    return f"available: {', '.join(shown)}" + (f"; {older} older not shown" if older else "")


def _why_not(parsed: VersionSpec, pool: list[tuple[Candidate, semver.Version]]) -> str | None:
    """Explain near misses: matching versions that are yanked, or prereleases the spec skips."""
    yanked = [c.version for c, v in pool if c.yanked and parsed.matches(v)]
    if yanked:
        return (
            f"{', '.join(sort_versions(yanked))} would match but "
            f"{'is' if len(yanked) == 1 else 'are'} yanked; pin an exact version to use it anyway"
        )
    with_pre = replace(parsed, prerelease=True)
    pre = sort_versions(
        c.version for c, v in pool if not c.yanked and v.prerelease and with_pre.matches(v)
    )
    if pre:
        return (
            f"prereleases ({', '.join(pre)}) are only considered when the spec "
            f"names one, e.g. '>={pre[0]}', or pin one exactly"
        )
    return None


class _Item(NamedTuple):
    constraints: list[Constraint]
    exact: str | None  # the pinned version when the item is an exact pin
    prerelease: bool  # whether the written version names a prerelease


def _parse_constraint(spec: str, item: str) -> _Item:
    """One comma-separated item of a spec."""
    if item == "*":
        return _Item([], None, False)
    op = item[: len(item) - len(item.lstrip("<>=!~^"))]
    text = item[len(op) :].strip()
    if op and op not in _COMPARISONS and op not in ("^", "~"):
        raise _bad(spec, f"unknown operator {op!r} (use ^, ~, >=, >, <=, <, == or !=)")
    if not text:
        raise _bad(spec, f"{op!r} must be followed by a version ({_VERSION_EXAMPLE})")
    if any(ch.isspace() for ch in text):
        raise _bad(spec, f"{item!r} has a space inside; separate constraints with ','")
    partial = _PARTIAL_RE.fullmatch(text)
    if partial:
        parts = [int(p) for p in partial.groups() if p is not None]
        version = semver.Version(*parts)
    elif is_valid_version(text):
        version = semver.Version.parse(text)
        parts = [version.major, version.minor, version.patch]
    elif not op:
        raise _bad(
            spec, f"{text!r} is neither a version ({_VERSION_EXAMPLE}) nor a tag (like stable)"
        )
    else:
        raise _bad(spec, f"{text!r} is not a version ({_VERSION_EXAMPLE}, or 1.2.0-rc.1)")
    named_pre = version.prerelease is not None
    if op in _COMPARISONS:
        exact = str(version) if op == "==" and not partial else None
        return _Item([Constraint(op, version)], exact, named_pre)
    if not op and not partial:
        return _Item([Constraint("==", version)], str(version), named_pre)
    upper = _caret_upper(parts) if op == "^" else _tilde_upper(parts)
    return _Item([Constraint(">=", version), Constraint("<", upper)], None, named_pre)


def _caret_upper(parts: list[int]) -> semver.Version:
    """npm's caret: changes may not touch the left-most non-zero part of those written."""
    if parts[0] or len(parts) == 1:
        return _below(parts[0] + 1, 0, 0)
    if parts[1] or len(parts) == 2:
        return _below(0, parts[1] + 1, 0)
    return _below(0, 0, parts[2] + 1)


def _tilde_upper(parts: list[int]) -> semver.Version:
    """Tilde (and a bare partial): patch changes when a minor is written, else minor changes."""
    if len(parts) == 1:
        return _below(parts[0] + 1, 0, 0)
    return _below(parts[0], parts[1] + 1, 0)


def _below(major: int, minor: int, patch: int) -> semver.Version:
    """The lowest version of that release line, so its prereleases stay out of the range."""
    return semver.Version(major, minor, patch, prerelease="0")


def _is_versionish(text: str) -> bool:
    return bool(_PARTIAL_RE.fullmatch(text)) or is_valid_version(text)


def _bad(spec: str, problem: str) -> InvalidVersion:
    return InvalidVersion(f"invalid version spec {spec!r}: {problem}")
