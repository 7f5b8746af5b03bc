"""Naming rules for functions and namespaces (design §2), shared by manifest, URIs and the hub."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from fnhub.core.errors import InvalidInput

NAME_RE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*$")
NAMESPACE_RE = re.compile(r"^[a-z0-9]+([_-][a-z0-9]+)*$")
MAX_LEN = 64
DEFAULT_NAMESPACE = "library"
# first path segments the hub serves itself (API, OCI registry, web assets): never namespaces
RESERVED_NAMESPACES = frozenset({"api", "v2", "static", "docs", "redoc", "healthz", "metrics"})


def name_problem(name: str) -> str | None:
    """Why `name` is not a valid function name, or None when it is."""
    if not name:
        return "must not be empty"
    if len(name) > MAX_LEN:
        return f"is longer than {MAX_LEN} characters"
    if not NAME_RE.fullmatch(name):
        return "must be lowercase letters and digits, separated by single '.', '_' or '-'"
    return None


def namespace_problem(namespace: str) -> str | None:
    if not namespace:
        return "must not be empty"
    if len(namespace) > MAX_LEN:
        return f"is longer than {MAX_LEN} characters"
    if not NAMESPACE_RE.fullmatch(namespace):
        return "must be lowercase letters and digits, separated by single '_' or '-'"
    if namespace in RESERVED_NAMESPACES:
        return "is reserved for the hub's own pages and APIs"
    return None


def check_name(name: str) -> str:
    if problem := name_problem(name):
        raise InvalidInput(f"invalid function name {name!r}: {problem}")
    return name


def check_namespace(namespace: str) -> str:
    if problem := namespace_problem(namespace):
        raise InvalidInput(f"invalid namespace {namespace!r}: {problem}")
    return namespace


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The existing name a user most likely meant (`_` and `-` are never silently swapped)."""
    candidates = list(candidates)
    folded = {c.replace("_", "-"): c for c in candidates}
    if name.replace("_", "-") in folded:
        return folded[name.replace("_", "-")]
    matches = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return matches[0] if matches else None
