"""Repository names, tags, digests and references as the Distribution Spec spells them.

A repository is `<namespace>/<name>[/<more>...]`: its first component is a hub namespace
(whose owners may push), the rest follow the spec's path-component rule.
"""

from __future__ import annotations

import re

from fnhub.core.names import namespace_problem
from fnhub.hub.oci.errors import DigestInvalid, NameInvalid, TagInvalid

MAX_NAME = 255
COMPONENT_RE = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}")
ANY_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")


def check_repository(name: str) -> str:
    """`name`, or NAME_INVALID saying which rule it breaks."""
    components = name.split("/")
    if len(name) > MAX_NAME:
        raise NameInvalid(f"repository name {name[:80]!r}... is longer than {MAX_NAME} "
                          "characters")
    if len(components) < 2:
        raise NameInvalid(f"repository name {name!r} must be NAMESPACE/NAME",
                          hint="images live in a hub namespace, e.g. alice/my-function")
    if problem := namespace_problem(components[0]):
        raise NameInvalid(f"repository name {name!r}: namespace {components[0]!r} {problem}")
    for component in components[1:]:
        if not COMPONENT_RE.fullmatch(component):
            raise NameInvalid(
                f"repository name {name!r}: component {component!r} must be lowercase letters "
                "and digits separated by '.', '_', '__' or dashes")
    return name


def namespace_of(repository: str) -> str:
    return repository.split("/", 1)[0]


def check_digest(digest: str) -> str:
    """A `sha256:<64 hex>` digest (the only algorithm this registry stores)."""
    if DIGEST_RE.fullmatch(digest):
        return digest
    if ANY_DIGEST_RE.fullmatch(digest) and not digest.startswith("sha256:"):
        raise DigestInvalid(f"digest {digest[:80]!r} uses an unsupported algorithm; "
                            "this registry stores sha256 digests")
    raise DigestInvalid(f"invalid digest {digest[:80]!r}: expected sha256:<64 hex digits>")


def is_digest(reference: str) -> bool:
    return ":" in reference


def check_tag(tag: str) -> str:
    if not TAG_RE.fullmatch(tag):
        raise TagInvalid(f"invalid tag {tag[:80]!r}: up to 128 letters, digits, '_', '.' and "
                         "'-', not starting with '.' or '-'")
    return tag


def check_reference(reference: str) -> str:
    """A manifest reference: a digest when it holds a colon, else a tag."""
    return check_digest(reference) if is_digest(reference) else check_tag(reference)
