"""Test content for the registry: blobs, manifests, OCI layouts, and a raw pushing client."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest(data), "size": len(data), **extra}


def layer(files: dict[str, bytes]) -> tuple[bytes, bytes]:
    """A gzipped tar layer holding `files` (deterministic), and its uncompressed tar."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), 0o644, 0
            tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), tar_bytes


def config(diff_ids: list[str], arch: str = "amd64", **labels: str) -> bytes:
    return json.dumps({
        "architecture": arch, "os": "linux",
        "config": {"Labels": labels, "Cmd": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }, sort_keys=True).encode()


@dataclass
class Image:
    """An image's blobs (config and layers) and its manifest bytes."""

    manifest: bytes
    blobs: dict[str, bytes]
    media_type: str = OCI_MANIFEST

    @property
    def digest(self) -> str:
        return digest(self.manifest)


def make_image(n_layers: int = 3, *, seed: str = "a", docker: bool = False,
               arch: str = "amd64", **manifest_fields: Any) -> Image:
    layers = [layer({f"layer{i}/{seed}.txt": f"{seed} layer {i}\n".encode() * (i + 1)})
              for i in range(n_layers)]
    cfg = config([digest(tar) for _, tar in layers], arch=arch, seed=seed)
    media, cfg_type, layer_type = ((DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER) if docker
                                   else (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER))
    doc = {"schemaVersion": 2, "mediaType": media, "config": descriptor(cfg_type, cfg),
           "layers": [descriptor(layer_type, gz) for gz, _ in layers], **manifest_fields}
    blobs = {digest(cfg): cfg, **{digest(gz): gz for gz, _ in layers}}
    return Image(json.dumps(doc, indent=2).encode(), blobs, media)


def write_layout(root: Path, tag: str, images: list[Image], index: bytes | None = None) -> Path:
    """An OCI image layout holding `images` under `tag` (or `index`, naming them, under it)."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    for image in images:
        for content in (*image.blobs.values(), image.manifest):
            (blobs / digest(content).removeprefix("sha256:")).write_bytes(content)
    top = index if index is not None else images[0].manifest
    top_type = OCI_INDEX if index is not None else images[0].media_type
    (blobs / digest(top).removeprefix("sha256:")).write_bytes(top)
    ref = descriptor(top_type, top, annotations={"org.opencontainers.image.ref.name": tag})
    (root / "index.json").write_text(json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [ref]}))
    return root


def make_index(images: list[Image]) -> bytes:
    manifests = [descriptor(image.media_type, image.manifest,
                            platform={"os": "linux", "architecture": arch})
                 for image, arch in zip(images, ("amd64", "arm64"), strict=False)]
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                       "manifests": manifests}).encode()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def errors(response: httpx.Response) -> list[str]:
    """The OCI error codes of a response, after checking the body's shape."""
    body = response.json()
    assert set(body) == {"errors"}, body
    for error in body["errors"]:
        assert set(error) == {"code", "message", "detail"}, error
    return [e["code"] for e in body["errors"]]


@dataclass
class Pusher:
    """Pushes through the plain HTTP API with a hub token (a TestClient or a live client)."""

    http: httpx.Client
    token: str | None

    @property
    def headers(self) -> dict[str, str]:
        return auth(self.token) if self.token else {}

    def blob(self, repo: str, data: bytes) -> httpx.Response:
        return self.http.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest(data)},
                              content=data, headers=self.headers)

    def manifest(self, repo: str, ref: str, body: bytes,
                 media_type: str = OCI_MANIFEST) -> httpx.Response:
        return self.http.put(f"/v2/{repo}/manifests/{ref}", content=body,
                             headers={**self.headers, "Content-Type": media_type})

    def image(self, repo: str, ref: str, image: Image) -> str:
        for data in image.blobs.values():
            response = self.blob(repo, data)
            assert response.status_code == 201, response.text
        response = self.manifest(repo, ref, image.manifest, image.media_type)
        assert response.status_code == 201, response.text
        return response.headers["Docker-Content-Digest"]
