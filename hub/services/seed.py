"""Seeding a hub with the curated catalog (namespace `library`), signed by the hub itself.

The hub's library key is generated once into `<data_dir>/keys/library.key` (0600) and
registered to `library`. Each catalog folder is packed, signed and sent through the same
publish service as any upload. Seeding is idempotent: a version already published with the
same digest is skipped; one published with a different digest is an error (bump the version).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import select

from fnhub.core.api_models import KeyRegister
from fnhub.core.errors import InvalidInput
from fnhub.core.items import Item
from fnhub.core.names import DEFAULT_NAMESPACE
from fnhub.core.publishing import CatalogResult, Prepared, catalog_folders, publish_catalog
from fnhub.core.signing import (
    generate_key,
    key_id,
    load_private_key,
    public_key_to_b64,
    save_private_key,
)
from fnhub.hub.context import Hub
from fnhub.hub.models import Version
from fnhub.hub.services import auth, functions, keys, publish

LIBRARY_KEY = Path("keys") / "library.key"
CHUNK = 1 << 20
_HUB_PACKAGE = Path(__file__).resolve().parent.parent


def bundled_catalog() -> Path:
    """The catalog shipped with the hub: `fnhub/hub/catalog` in an installed wheel (package
    data), the repository's `catalog/` beside `hub/` in a source checkout (editable install)."""
    for folder in (_HUB_PACKAGE / "catalog", _HUB_PACKAGE.parent / "catalog"):
        if folder.is_dir():
            return folder
    raise InvalidInput(f"this installation ships no catalog (looked in {_HUB_PACKAGE})",
                       hint="set FNHUB_SERVER_CATALOG_DIR to a catalog folder")


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


def _published_digest(hub: Hub, manifest: Item) -> str | None:
    meta = manifest.metadata
    with hub.db.read() as session:
        function = functions.find_function(session, meta.namespace, meta.name)
        if function is None:
            return None
        return session.exec(
            select(Version.package_digest)
            .where(Version.function_id == function.id, Version.version == meta.version)
        ).first()


def _send(hub: Hub, prepared: Prepared) -> None:
    meta = prepared.manifest.metadata
    if meta.namespace != DEFAULT_NAMESPACE:
        raise InvalidInput(f"{meta.name}: catalog functions belong to namespace "
                           f"{DEFAULT_NAMESPACE!r}, not {meta.namespace!r}")
    with prepared.archive.open("rb") as fh:
        publish.publish(hub, auth.operator(hub), meta.namespace, meta.name,
                        manifest_text=prepared.manifest_text,
                        package=iter(lambda: fh.read(CHUNK), b""),
                        envelope_text=prepared.envelope.model_dump_json())


def seed_catalog(hub: Hub, catalog_dir: Path) -> list[CatalogResult]:
    """Publish every catalog function that is not on the hub yet (same rules as
    `hub catalog publish`, through the same code)."""
    folders = catalog_folders(catalog_dir)
    if not folders:
        return []
    key = library_key(hub)
    with tempfile.TemporaryDirectory(prefix="fnhub-seed-") as tmp:
        return publish_catalog(folders, key, Path(tmp),
                               published_digest=lambda m: _published_digest(hub, m),
                               send=lambda prepared: _send(hub, prepared))
