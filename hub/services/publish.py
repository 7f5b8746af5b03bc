"""Publishing a version: every check first, then one blob commit and one transaction.

Once the caller's right to publish into the namespace is known, the checks run in this
order, and a failure at any step leaves no row and no blob behind: the URL's
namespace/name match the manifest; the manifest is valid; the package streams
into staging within the size limit; the archive is safe; its `function.yaml` (or, for a
feature set, `featureset.yaml`, and never both) is the uploaded manifest; the name is not
taken by an item of the other kind; the envelope verifies against a key registered to the
namespace; the signed subject names this NS/NAME@VERSION with the staged digest; the
version number was never used (deleted versions included). Concurrent uploads of one
version are decided in the write transaction (SQLite queues writers; elsewhere the unique
constraint fires): one wins, the others get VersionExists and their staged files are discarded.

The blob is committed to storage before the write transaction opens, never inside it, so a
slow store (an S3 upload) does not hold the database's write lock. Blobs are content-addressed,
so committing one that exists is harmless; when the transaction then fails, the blob is
deleted unless a live version uses it (a package names its own version, so only a concurrent
upload of the same version shares its digest), and anything a crash leaves is young and
unreferenced, which `hub admin gc` sweeps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import suppress
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from fnhub.core.api_models import VersionDetail
from fnhub.core.errors import (
    Conflict,
    InvalidInput,
    ManifestError,
    NotFound,
    SignatureInvalid,
    VersionExists,
)
from fnhub.core.items import ITEM_FILES, Item, item_file, item_kind, parse_item_text
from fnhub.core.manifest import Image, Manifest
from fnhub.core.names import check_name, check_namespace
from fnhub.core.packaging import check_archive, read_member
from fnhub.core.signing import Envelope, parse_envelope, verify_envelope
from fnhub.hub.context import Hub
from fnhub.hub.models import Function, Version, utcnow
from fnhub.hub.services import functions, keys, namespaces
from fnhub.hub.services.auth import Caller
from fnhub.hub.services.signatures import check_signed
from fnhub.hub.storage import Staged


def check_request(namespace: str, name: str, manifest_text: str) -> Item:
    """The uploaded manifest, once it is valid and names the function in the URL."""
    check_namespace(namespace)
    check_name(name)
    manifest = parse_item_text(manifest_text, source="manifest")
    meta = manifest.metadata
    if (meta.namespace, meta.name) != (namespace, name):
        raise InvalidInput(
            f"the manifest describes {meta.namespace}/{meta.name}, "
            f"but the upload goes to {namespace}/{name}"
        )
    return manifest


def authorize(hub: Hub, caller: Caller, namespace: str, name: str) -> None:
    """Fail before any upload when the caller could not publish `namespace/name`."""
    check_namespace(namespace)
    check_name(name)
    with hub.db.read() as session:
        namespaces.authorize(session, caller, namespace, create=False)


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Dotted paths where two JSON values differ (a few, for the error message)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            out += _differences(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
        return out
    return [] if a == b else [path or "(top)"]


def _check_package(staged: Staged, manifest: Item) -> None:
    """The archive is safe to unpack and carries exactly the uploaded manifest, and no
    manifest of the other kind."""
    members = check_archive(staged.path)
    wanted = item_file(manifest)
    if all(f in members for f in ITEM_FILES):
        raise ManifestError(f"the package holds both {' and '.join(ITEM_FILES)}")
    try:
        packaged_text = read_member(staged.path, wanted)
    except NotFound:  # a malformed package, not a missing resource (and no staging path)
        raise ManifestError(
            f"the package has no {wanted} at its top level",
            hint="pack the folder with `hub pack` or `hub publish`",
        ) from None
    packaged = parse_item_text(packaged_text, source=f"package {wanted}")
    if packaged != manifest:
        fields = _differences(manifest.to_dict(), packaged.to_dict())
        raise ManifestError(
            f"the uploaded manifest differs from the package's {wanted} "
            f"({', '.join(fields[:5])})",
            hint=f"upload the {wanted} that is inside the package",
        )


def _image(manifest: Item) -> Image | None:
    """The function's recorded image; a feature set has none."""
    return manifest.spec.image if isinstance(manifest, Manifest) else None


def _check_kind(function: Function, manifest: Item) -> None:
    """A name holds one kind of item: a feature set never becomes a function, or back."""
    if function.live_versions and (function.kind == "feature-set") != (
            item_kind(manifest) == "feature-set"):
        existing = "a feature set" if function.kind == "feature-set" else "a function"
        raise Conflict(f"{manifest.metadata.namespace}/{manifest.metadata.name} is {existing}; "
                       f"a {item_kind(manifest)} cannot be published under its name")


def _signers(envelope: Envelope, trusted: Mapping[str, Ed25519PublicKey]) -> list[str]:
    """The registered keys whose signatures on the envelope verify."""
    out = []
    for signature in envelope.signatures:
        if signature.keyid in trusted and signature.keyid not in out:
            with suppress(SignatureInvalid):
                verify_envelope(envelope, {signature.keyid: trusted[signature.keyid]})
                out.append(signature.keyid)
    return out


def _verify(session: Session, manifest: Item, envelope: Envelope, staged: Staged) -> list[str]:
    """Check signature, key trust and signed digests; returns the ids of the keys that signed."""
    namespace = manifest.metadata.namespace
    trusted = keys.trusted_keys(session, namespace)
    if not trusted:
        raise keys.no_keys_error(namespace)
    image = _image(manifest)
    check_signed(envelope, trusted, manifest.ref, staged.digest,
                 image.digest if image else None)
    return _signers(envelope, trusted)


def _function_row(session: Session, namespace_id: int, name: str) -> Function:
    """The function's row, created with its first version (a concurrent creator may win)."""
    query = select(Function).where(Function.namespace_id == namespace_id, Function.name == name)
    function = session.exec(query).first()
    if function is not None:
        return function
    try:
        with session.begin_nested():
            function = Function(namespace_id=namespace_id, name=name)
            session.add(function)
            session.flush()
    except IntegrityError:
        return session.exec(query).one()
    return function


def _taken(ref: str, deleted: bool) -> VersionExists:
    if deleted:
        return VersionExists(f"{ref} was published and deleted; version numbers are never reused",
                             hint="bump the version in function.yaml")
    return VersionExists(f"{ref} already exists; published versions are immutable",
                         hint="bump the version in function.yaml")


def _record(hub: Hub, caller: Caller, manifest: Item, envelope: Envelope,
            staged: Staged) -> VersionDetail:
    """Commit the blob, then insert the version; the transaction decides concurrent uploads."""
    meta = manifest.metadata
    hub.store.commit(staged)
    try:
        with hub.db.write() as session:
            namespace = namespaces.authorize(session, caller, meta.namespace, create=True)
            assert namespace is not None and namespace.id is not None
            signers = _verify(session, manifest, envelope, staged)
            function = _function_row(session, namespace.id, meta.name)
            _check_kind(function, manifest)
            previous = session.exec(
                select(Version).where(Version.function_id == function.id,
                                      Version.version == meta.version)
            ).first()
            if previous is not None:
                raise _taken(manifest.ref, previous.deleted)
            assert function.id is not None
            image = _image(manifest)
            row = Version(
                function_id=function.id, version=meta.version, manifest=manifest.to_dict(),
                package_digest=staged.digest, package_size=staged.size,
                envelope=envelope.model_dump(mode="json"), keyids=signers,
                image_ref=image.ref if image else None,
                image_digest=image.digest if image else None,
                published_by=caller.user_id,
            )
            try:
                with session.begin_nested():
                    session.add(row)
                    session.flush()
            except IntegrityError:
                raise _taken(manifest.ref, False) from None
            function.updated_at = utcnow()
            functions.refresh(session, function, meta.namespace)
            detail = functions.version_detail(meta.namespace, function, row)
    except BaseException:
        if not _blob_in_use(hub, staged.digest):
            hub.store.delete(staged.digest)
        raise
    return detail


def _blob_in_use(hub: Hub, digest: str) -> bool:
    with hub.db.read() as session:
        return session.exec(
            select(Version.id).where(Version.package_digest == digest,
                                     col(Version.deleted).is_(False))
        ).first() is not None


def publish_staged(hub: Hub, caller: Caller, namespace: str, name: str, *, manifest_text: str,
                   staged: Staged, envelope_text: str) -> VersionDetail:
    """Publish an upload already in staging; the staged file is committed or discarded."""
    try:
        manifest = check_request(namespace, name, manifest_text)
        _check_package(staged, manifest)
        envelope = parse_envelope(envelope_text)
        return _record(hub, caller, manifest, envelope, staged)
    finally:
        hub.store.discard(staged)


def publish(hub: Hub, caller: Caller, namespace: str, name: str, *, manifest_text: str,
            package: Iterable[bytes], envelope_text: str) -> VersionDetail:
    """Check, stage, verify and record one version (see the module docstring for the order)."""
    check_request(namespace, name, manifest_text)
    authorize(hub, caller, namespace, name)
    staged = hub.store.stage(package, max_size=hub.settings.max_package_size)
    return publish_staged(hub, caller, namespace, name, manifest_text=manifest_text,
                          staged=staged, envelope_text=envelope_text)
