"""`hub build`: a function's container image, built and pushed through the Docker Engine API.

The build context holds exactly the function's package (packed, then unpacked, so
`.fnhubignore` applies) and fnhub's standard-library-only runtime; the Dockerfile is generated
from the manifest. The `docker` SDK talks to whatever `DOCKER_HOST` names: Docker itself, or
Podman's Docker-compatible service (`podman system service`).

What a function image holds, for the runners and workflow engines that start it:

    /opt/fnhub/function   the package's files (the working directory)
    /opt/fnhub/lib        `fnhub.runtime` (on PYTHONPATH); the entrypoint is
                          `python -m fnhub.runtime`, called with `--function-dir` and
                          `--entrypoint` (both also in the labels) plus the inputs
    labels                org.opencontainers.image.* (title, version, description, licenses,
                          source, revision) and io.fnhub.* (function, version, package digest,
                          entrypoint, function dir, and the inputs/outputs interface as JSON)

The base image is `spec.image.base`; it must provide `python` (and pip when the function has
requirements). `scratch` builds too (an image holding only the files), which is how the tests
build where no base image can be pulled.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from fnhub import runtime
from fnhub.config import HubEntry
from fnhub.core.errors import InvalidInput, RunError, Unauthorized
from fnhub.core.manifest import Manifest, load_manifest
from fnhub.core.packaging import pack, unpack
from fnhub.images import FUNCTION_DIR, ImageRef, function_image, served_digest

LIB_DIR = "/opt/fnhub/lib"
ENTRYPOINT = ["python", "-m", "fnhub.runtime"]
REGISTRY_USER = "fnhub"  # any name works: the registry reads the hub token in the password

Log = Callable[[str], None]


def quiet(_line: str) -> None:
    """The default log: say nothing."""


@dataclass(frozen=True)
class BuildContext:
    path: Path
    manifest: Manifest
    package_digest: str


@dataclass(frozen=True)
class BuiltImage:
    """An image built locally; `digest` is its manifest digest once pushed."""

    ref: ImageRef
    image_id: str
    digest: str | None = None


def labels(manifest: Manifest, package_digest: str) -> dict[str, str]:
    """The image's labels: OCI's standard keys and fnhub's own."""
    meta, spec = manifest.metadata, manifest.spec
    interface = {"inputs": [p.model_dump(mode="json") for p in spec.inputs],
                 "outputs": [p.model_dump(mode="json") for p in spec.outputs]}
    out = {
        "org.opencontainers.image.title": f"{meta.namespace}/{meta.name}",
        "org.opencontainers.image.version": meta.version,
        "org.opencontainers.image.description": meta.description or "",
        "io.fnhub.function": f"{meta.namespace}/{meta.name}",
        "io.fnhub.version": meta.version,
        "io.fnhub.package.digest": package_digest,
        "io.fnhub.entrypoint": spec.entrypoint,
        "io.fnhub.function-dir": FUNCTION_DIR,
        "io.fnhub.interface": json.dumps(interface, sort_keys=True, separators=(",", ":")),
    }
    if meta.license:
        out["org.opencontainers.image.licenses"] = meta.license
    if meta.source and meta.source.repository:
        out["org.opencontainers.image.source"] = meta.source.repository
    if meta.source and meta.source.commit:
        out["org.opencontainers.image.revision"] = meta.source.commit
    return out


def _quote(value: str) -> str:
    """A Dockerfile double-quoted string: no variable expansion, no line breaks."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return '"' + " ".join(escaped.splitlines()) + '"'


def dockerfile(manifest: Manifest, package_digest: str) -> str:
    """The Dockerfile of a function image (see the module docstring for its layout)."""
    label_lines = " \\\n      ".join(f"{key}={_quote(value)}"
                                     for key, value in labels(manifest, package_digest).items())
    lines = [f"FROM {manifest.spec.image.base}", f"LABEL {label_lines}",
             f"ENV PYTHONPATH={LIB_DIR} PYTHONUNBUFFERED=1", f"COPY lib/ {LIB_DIR}/"]
    if manifest.spec.requirements:
        lines += ["COPY requirements.txt /opt/fnhub/requirements.txt",
                  "RUN python -m pip install --no-cache-dir -r /opt/fnhub/requirements.txt"]
    lines += [f"COPY function/ {FUNCTION_DIR}/", f"WORKDIR {FUNCTION_DIR}",
              f"ENTRYPOINT {json.dumps(ENTRYPOINT)}"]
    return "\n".join(lines) + "\n"


def prepare_context(folder: Path, workdir: Path) -> BuildContext:
    """A build context in `workdir`: Dockerfile, the package's files and fnhub's runtime."""
    manifest = load_manifest(folder)
    context = workdir / "context"
    archive = workdir / "package.tar.gz"
    packed = pack(folder, archive)
    unpack(archive, context / "function")
    lib = context / "lib" / "fnhub"
    lib.mkdir(parents=True)
    (lib / "__init__.py").write_text("")
    shutil.copyfile(runtime.__file__, lib / "runtime.py")
    if manifest.spec.requirements:
        (context / "requirements.txt").write_text("\n".join(manifest.spec.requirements) + "\n")
    (context / "Dockerfile").write_text(dockerfile(manifest, packed.digest))
    return BuildContext(context, manifest, packed.digest)


def engine() -> docker.DockerClient:
    """The Docker Engine API named by DOCKER_HOST (Docker's or Podman's)."""
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise InvalidInput(
            f"cannot reach a Docker Engine API: {exc}",
            hint="start Docker, or Podman's service (`podman system service`), and point "
                 "DOCKER_HOST at its socket") from None
    return client


def _follow(events: Iterable[dict[str, Any]], what: str, log: Log) -> dict[str, Any]:
    """Relay a build or push stream to `log`; RunError on the engine's error event."""
    last: dict[str, Any] = {}
    for event in events:
        if "error" in event:
            detail = event.get("errorDetail", {}).get("message") or event["error"]
            raise RunError(f"{what} failed: {str(detail).strip()}")
        text = event.get("stream") or event.get("status")
        if text and text.strip():
            log(text.rstrip())
        if "aux" in event:
            last = event["aux"]
    return last


def build_image(context: BuildContext, ref: ImageRef, client: docker.DockerClient,
                log: Log = quiet) -> BuiltImage:
    try:
        events = client.api.build(path=str(context.path), tag=str(ref), rm=True, forcerm=True,
                                  decode=True)
        _follow(events, f"building {ref}", log)
        image = client.images.get(str(ref))
    except docker.errors.DockerException as exc:
        raise RunError(f"building {ref} failed: {exc}") from None
    return BuiltImage(ref, str(image.id))


def registry_auth(hub: HubEntry) -> dict[str, str] | None:
    """The engine's login to a hub's registry, the hub token as password; None: anonymous."""
    return {"username": REGISTRY_USER, "password": hub.token} if hub.token else None


def pull_image(name: str, hub: HubEntry, client: docker.DockerClient, log: Log = quiet) -> None:
    """Pull `name` (`registry/repository@sha256:...` or `:tag`), logged in to `hub`'s registry
    when its entry has a token."""
    repository, tag = docker.utils.parse_repository_tag(name)
    try:
        events = client.api.pull(repository, tag=tag, auth_config=registry_auth(hub),
                                 stream=True, decode=True)
        _follow(events, f"pulling {name}", log)
    except docker.errors.DockerException as exc:
        raise RunError(f"pulling {name} failed: {exc}") from None


def push_image(built: BuiltImage, hub: HubEntry, client: docker.DockerClient,
               log: Log = quiet) -> BuiltImage:
    """Push to the hub's registry (the engine logs in with the hub token); returns the image
    with the manifest digest the registry now serves for its tag."""
    auth = registry_auth(hub)
    if auth is None:
        raise Unauthorized(f"pushing to {hub.url} needs an API token",
                           hint="set FNHUB_TOKEN or run `hub login`")
    ref = built.ref
    try:
        events = client.api.push(f"{ref.registry}/{ref.repository}", tag=ref.tag,
                                 auth_config=auth, stream=True, decode=True)
        _follow(events, f"pushing {ref}", log)
    except docker.errors.DockerException as exc:
        raise RunError(f"pushing {ref} failed: {exc}") from None
    return BuiltImage(ref, built.image_id, served_digest(hub, ref))


def build_function_image(folder: Path, hub: HubEntry, workdir: Path, *, push: bool = False,
                         log: Log = quiet) -> BuiltImage:
    """Build the image of the function in `folder`, tagged for `hub`; push it if asked."""
    context = prepare_context(folder, workdir)
    meta = context.manifest.metadata
    ref = function_image(hub.url, meta.namespace, meta.name, meta.version)
    client = engine()
    try:
        built = build_image(context, ref, client, log)
        return push_image(built, hub, client, log) if push else built
    finally:
        client.close()
