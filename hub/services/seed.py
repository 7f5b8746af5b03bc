"""Seeding a hub with the curated catalog (namespace `library`), signed by the hub itself.

The hub's library key is generated once into `<data_dir>/keys/library.key` (0600) and
registered to `library`. Each catalog folder is packed, signed and sent through the same
publish service as any upload. Seeding is idempotent: a version already published with the
same digest is skipped; one published with a different digest is an error (bump the version).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import select

from fnhub.api_models import KeyRegister
from fnhub.errors import Conflict, InvalidInput
from fnhub.hub.context import Hub
from fnhub.hub.models import Version
from fnhub.hub.services import auth, functions, keys, publish
from fnhub.manifest import MANIFEST_FILE, Manifest, load_manifest
from fnhub.names import DEFAULT_NAMESPACE
from fnhub.packaging import pack
from fnhub.signing import (
    generate_key,
    key_id,
    load_private_key,
    make_statement,
    public_key_to_b64,
    save_private_key,
    sign_statement,
)

LIBRARY_KEY = Path("keys") / "library.key"
CHUNK = 1 << 20


@dataclass(frozen=True)
class SeedResult:
    ref: str  # NS/NAME@VERSION
    digest: str
    status: Literal["published", "unchanged"]


def library_key(hub: Hub) -> Ed25519PrivateKey:
    """The hub's signing key for `library`, generated on first use and registered there."""
    path = hub.settings.data_dir / LIBRARY_KEY
    if path.exists():
        key = load_private_key(path)
    else:
        key = generate_key()
        save_private_key(key, path)
    public = key.public_key()
    with hub.db.read() as session:
        registered = key_id(public) in keys.trusted_keys(session, DEFAULT_NAMESPACE)
    if not registered:
        keys.register(hub, auth.operator(hub), KeyRegister(
            namespace=DEFAULT_NAMESPACE, public_key=public_key_to_b64(public), name="hub library"))
    return key


def catalog_folders(catalog_dir: Path) -> list[Path]:
    """The function folders (holding a function.yaml) directly under `catalog_dir`, sorted."""
    if not catalog_dir.is_dir():
        raise InvalidInput(f"catalog folder {catalog_dir} does not exist")
    return sorted(p for p in catalog_dir.iterdir() if (p / MANIFEST_FILE).is_file())


def _published_digest(hub: Hub, manifest: Manifest) -> str | None:
    meta = manifest.metadata
    with hub.db.read() as session:
        function = functions.find_function(session, meta.namespace, meta.name)
        if function is None:
            return None
        return session.exec(
            select(Version.package_digest)
            .where(Version.function_id == function.id, Version.version == meta.version)
        ).first()


def seed_function(hub: Hub, folder: Path, key: Ed25519PrivateKey) -> SeedResult:
    """Pack, sign and publish one catalog folder, unless that exact package is there already."""
    manifest = load_manifest(folder)
    meta = manifest.metadata
    if meta.namespace != DEFAULT_NAMESPACE:
        raise InvalidInput(
            f"{folder / MANIFEST_FILE}: catalog functions belong to namespace "
            f"{DEFAULT_NAMESPACE!r}, not {meta.namespace!r}"
        )
    with tempfile.TemporaryDirectory(prefix="fnhub-seed-") as tmp:
        archive = Path(tmp) / f"{meta.name}-{meta.version}.tar.gz"
        packed = pack(folder, archive)
        published = _published_digest(hub, manifest)
        if published == packed.digest:
            return SeedResult(manifest.ref, packed.digest, "unchanged")
        if published is not None:
            raise Conflict(
                f"{manifest.ref} is already published with digest {published}, "
                f"but {folder} now packs to {packed.digest}",
                hint=f"bump metadata.version in {folder / MANIFEST_FILE}",
            )
        source = meta.source.model_dump(exclude_none=True) if meta.source else {}
        predicate = {"metadata": meta.model_dump(mode="json", exclude_none=True),
                     "source": source}
        envelope = sign_statement(make_statement(manifest.ref, packed.digest,
                                                 predicate=predicate), key)
        with archive.open("rb") as fh:
            publish.publish(
                hub, auth.operator(hub), meta.namespace, meta.name,
                manifest_text=(folder / MANIFEST_FILE).read_text(encoding="utf-8"),
                package=iter(lambda: fh.read(CHUNK), b""),
                envelope_text=envelope.model_dump_json(),
            )
    return SeedResult(manifest.ref, packed.digest, "published")


def seed_catalog(hub: Hub, catalog_dir: Path) -> list[SeedResult]:
    """Publish every catalog function that is not on the hub yet."""
    folders = catalog_folders(catalog_dir)
    if not folders:
        return []
    key = library_key(hub)
    return [seed_function(hub, folder, key) for folder in folders]
