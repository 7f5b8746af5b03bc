"""Publishing: upload a folder packed and signed by `fnhub.core.publishing.prepare`.

With an image (`hub publish --image`), the image is built from the folder and pushed first;
the package then carries a function.yaml recording the image's reference and manifest
digest, and the signed statement names that digest as its second subject.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fnhub.api_client import HubClient
from fnhub.build import Log, build_function_image, quiet
from fnhub.config import HubEntry
from fnhub.core.api_models import ImageInfo, VersionDetail
from fnhub.core.errors import NotFound
from fnhub.core.items import Item
from fnhub.core.publishing import Prepared, prepare


def upload(client: HubClient, prepared: Prepared) -> VersionDetail:
    meta = prepared.manifest.metadata
    return client.publish(meta.namespace, meta.name, prepared.manifest_text, prepared.archive,
                          prepared.envelope.model_dump_json())


def publish_folder(folder: Path, hub: HubEntry, key: Ed25519PrivateKey, workdir: Path, *,
                   image: bool = False, log: Log = quiet) -> VersionDetail:
    """Publish `folder`; with `image`, build and push its image to the hub first."""
    pushed = None
    if image:
        built = build_function_image(folder, hub, workdir / "image", push=True, log=log)
        pushed = ImageInfo(ref=str(built.ref), digest=built.digest)
    with HubClient(hub.url, hub.token) as client:
        return upload(client, prepare(folder, key, workdir, pushed))


def hub_digest(client: HubClient) -> Callable[[Item], str | None]:
    """What a hub holds for a manifest's exact version, as seen through its API."""
    def lookup(manifest: Item) -> str | None:
        meta = manifest.metadata
        try:
            return client.version(meta.namespace, meta.name, meta.version).package.digest
        except NotFound:
            return None
    return lookup
