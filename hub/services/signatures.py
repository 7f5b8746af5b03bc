"""Whether a version's signature holds: at publish time (refusing the upload) and on every
view of the catalog (a badge).

Signature status is computed, not remembered: a version counts as verified when its stored
DSSE envelope verifies against a key registered to its namespace *now* and signs exactly its
package (and image) digest, so a tampered envelope or an unregistered key shows at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlmodel import Session, col, select

from fnhub.core.errors import VerificationError
from fnhub.core.signing import (
    Envelope,
    Statement,
    check_subjects,
    parse_envelope,
    verify_envelope,
)
from fnhub.hub.models import Function, Namespace, Version
from fnhub.hub.services.keys import Registered, RegisteredKey, registered_keys


def check_signed(envelope: Envelope, trusted: Mapping[str, Ed25519PublicKey], ref: str,
                 digest: str, image_digest: str | None) -> Statement:
    """The envelope's statement, once a trusted key's signature verifies and it signs
    exactly `ref` with these digests; VerificationError (saying why) otherwise."""
    statement = verify_envelope(envelope, trusted)
    check_subjects(statement, ref, digest, image_digest=image_digest)
    return statement


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


def verification(envelope: dict[str, Any], ref: str, digest: str, image_digest: str | None,
                 keys: Mapping[str, RegisteredKey]) -> Verification:
    """Check a stored envelope against the namespace's registered keys and the digests."""
    try:
        parsed = parse_envelope(envelope)
    except VerificationError as exc:
        return Verification(False, exc.message)
    signers = tuple(Signer(s.keyid, s.keyid in keys, keys[s.keyid].name if s.keyid in keys
                           else None) for s in parsed.signatures)
    try:
        check_signed(parsed, {k: v.public for k, v in keys.items()}, ref, digest, image_digest)
    except VerificationError as exc:
        return Verification(False, exc.message, signers)
    namespace = ref.split("/")[0]
    return Verification(True, f"signed by a key registered to {namespace!r}", signers)


def latest_verified(session: Session, refs: list[tuple[str, str]],
                    keys: Registered | None = None) -> set[tuple[str, str]]:
    """Which of the functions `refs` have a latest version whose signature verifies (with
    the namespaces' keys from `keys`, or read here when not given): two queries at most."""
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
        keys = registered_keys(session, (ns for ns, _ in refs))
    return {(ns, fn) for ns, fn, version, digest, image, envelope in rows
            if (ns, fn) in wanted
            and verification(envelope, f"{ns}/{fn}@{version}", digest, image,
                             keys[ns]).verified}
