"""Function images on a hub's OCI registry: their names, and the manifest a registry serves.

The image of NS/NAME@VERSION lives on the hub it is published to, as
`<hub-host>/<ns>/<name>:<tag>`, the tag being the version with `+` (which tags may not
hold) written `_`, and holds the function in `FUNCTION_DIR` (the layout `hub build` makes,
see `fnhub.build`; defined here so the pipeline exporters share it without importing docker).
Verification never trusts a registry's headers: `served_digest` hashes the manifest bytes the
registry actually returns for a reference.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from fnhub import __version__
from fnhub.config import HubEntry
from fnhub.core.errors import FnhubError, HubUnavailable, InvalidInput, NotFound
from fnhub.core.manifest import Manifest

MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MAX_MANIFEST_SIZE = 4 * 1024 * 1024
FUNCTION_DIR = "/opt/fnhub/function"  # the function's files in its image (the workdir)


@dataclass(frozen=True)
class ContainerImage:
    """A function's image for `--env container`: `registry/repo:tag@sha256:...`, and the hub
    entry of its registry (whose token, if any, logs the engine in for the pull)."""

    name: str
    registry: HubEntry


@dataclass(frozen=True)
class ImageRef:
    """`registry/repository:tag`, e.g. `hub.example.com/alice/clean:1.0.0`."""

    registry: str
    repository: str
    tag: str

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}:{self.tag}"


def image_tag(version: str) -> str:
    return version.replace("+", "_")


def function_image(hub_url: str, namespace: str, name: str, version: str) -> ImageRef:
    """Where the image of NS/NAME@VERSION goes on the hub at `hub_url`."""
    parts = urlsplit(hub_url)
    if not parts.netloc or parts.path.strip("/"):
        raise InvalidInput(f"hub URL {hub_url!r}: images need the hub's registry at the root "
                           "of its host (/v2/), so the URL must not have a path")
    return ImageRef(parts.netloc, f"{namespace}/{name}", image_tag(version))


def recorded_image(manifest: Manifest, host: str | None) -> str | None:
    """`<ref>@<digest>` of the image a manifest records (`spec.image.digest`, set when the image
    is published); without `spec.image.ref`, the image's place on the hub at `host` (None for a
    local folder, which has no hub). None when no digest is recorded."""
    image, meta = manifest.spec.image, manifest.metadata
    if not image.digest:
        return None
    if image.ref:
        return f"{image.ref.split('@')[0]}@{image.digest}"
    if host is None:
        raise InvalidInput(f"{meta.namespace}/{meta.name} records an image digest but no image "
                           "ref (spec.image.ref), and a local folder has no registry",
                           hint="set spec.image.ref in its function.yaml")
    return f"{host}/{meta.namespace}/{meta.name}:{image_tag(meta.version)}@{image.digest}"


def parse_image_ref(text: str) -> ImageRef:
    """`host[:port]/path:tag`; the host is required (images are always on a named registry)."""
    registry, slash, rest = text.partition("/")
    repository, colon, tag = rest.rpartition(":")
    if not slash or not colon or not repository or not tag or "/" in tag or not (
            "." in registry or ":" in registry or registry == "localhost"):
        raise InvalidInput(f"invalid image reference {text!r}: expected HOST/NAMESPACE/NAME:TAG")
    return ImageRef(registry, repository, tag)


def served_digest(registry: HubEntry, ref: ImageRef) -> str:
    """The sha256 of the manifest bytes `registry` serves for `ref` (its tag)."""
    headers = {"Accept": ", ".join(MANIFEST_TYPES), "User-Agent": f"fnhub/{__version__}"}
    if registry.token:
        headers["Authorization"] = f"Bearer {registry.token}"
    url = f"{registry.url.rstrip('/')}/v2/{ref.repository}/manifests/{ref.tag}"
    sha = hashlib.sha256()
    size = 0
    try:
        with httpx.stream("GET", url, headers=headers, timeout=30) as response:
            if response.status_code == 404:
                raise NotFound(f"image {ref} is not in its registry")
            if not response.is_success:
                response.read()
                raise _registry_error(response, ref)
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_MANIFEST_SIZE:
                    raise InvalidInput(f"the manifest of image {ref} is larger than 4 MiB")
                sha.update(chunk)
    except httpx.TransportError as exc:
        raise HubUnavailable(f"cannot reach the registry of image {ref}: {exc}") from None
    return "sha256:" + sha.hexdigest()


def _registry_error(response: httpx.Response, ref: ImageRef) -> FnhubError:
    """A registry's `{"errors": [...]}` answer as the fnhub error of its status."""
    try:
        message = "; ".join(str(e.get("message", e.get("code")))
                            for e in response.json().get("errors", []))
    except (ValueError, AttributeError):
        message = ""
    error = FnhubError.from_payload(None, response.status_code)
    return type(error)(f"registry refused reading image {ref} (HTTP {response.status_code})"
                       + (f": {message}" if message else ""))
