"""The manifest media types the registry stores, and what it checks before storing one.

A manifest is kept byte-exact under the sha256 of its bytes. Before that, its JSON must be
one of the four supported shapes (OCI image manifest and index, Docker schema 2 manifest and
manifest list), agree with the Content-Type it was sent with, and name its content with
sha256 descriptors; the service then checks that the content exists in the repository.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fnhub.core.errors import format_validation_error
from fnhub.hub.oci.errors import ManifestInvalid
from fnhub.hub.oci.names import DIGEST_RE

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MEDIA_TYPES = (*IMAGE_TYPES, *INDEX_TYPES)
MAX_MANIFEST_SIZE = 4 * 1024 * 1024


class Descriptor(BaseModel):
    model_config = ConfigDict(extra="allow")

    mediaType: str = Field(min_length=1, max_length=255)
    digest: str
    size: int = Field(ge=0)
    artifactType: str | None = Field(default=None, max_length=255)
    annotations: dict[str, str] | None = None

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        if not DIGEST_RE.fullmatch(value):
            raise ValueError("must be a sha256 digest (sha256:<64 hex digits>)")
        return value


class _Document(BaseModel):
    model_config = ConfigDict(extra="allow")

    schemaVersion: int
    mediaType: str | None = None
    artifactType: str | None = Field(default=None, max_length=255)
    subject: Descriptor | None = None
    annotations: dict[str, str] | None = None

    @field_validator("schemaVersion")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != 2:
            raise ValueError("must be 2")
        return value


class ImageManifest(_Document):
    config: Descriptor
    layers: list[Descriptor]


class ImageIndex(_Document):
    manifests: list[Descriptor]


@dataclass(frozen=True)
class Parsed:
    """What the service needs of a manifest: its content, subject and referrer fields."""

    media_type: str
    blobs: list[Descriptor] = field(default_factory=list)  # config and layers
    children: list[Descriptor] = field(default_factory=list)  # an index's manifests
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)


def _media_type(content_type: str | None, declared: Any) -> str:
    sent = (content_type or "").split(";", 1)[0].strip().lower() or None
    if declared is not None and not isinstance(declared, str):
        raise ManifestInvalid("manifest field 'mediaType' must be a string")
    if sent and declared and sent != declared:
        raise ManifestInvalid(
            f"the manifest says mediaType {declared!r} but was sent as {sent!r}")
    media_type = declared or sent
    if media_type not in MEDIA_TYPES:
        raise ManifestInvalid(
            f"unsupported manifest media type {media_type!r}",
            hint="push an OCI image manifest or index, or a Docker schema 2 manifest or list")
    return media_type


def parse(body: bytes, content_type: str | None) -> Parsed:
    """Check a pushed manifest's JSON; MANIFEST_INVALID names what is wrong."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestInvalid(f"manifest is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ManifestInvalid("manifest must be a JSON object")
    media_type = _media_type(content_type, data.get("mediaType"))
    model = ImageManifest if media_type in IMAGE_TYPES else ImageIndex
    try:
        doc = model.model_validate(data)
    except ValidationError as exc:
        raise ManifestInvalid(f"invalid manifest: {format_validation_error(exc)}") from None
    annotations = doc.annotations or {}
    if isinstance(doc, ImageManifest):
        artifact_type = doc.artifactType or doc.config.mediaType
        return Parsed(media_type, blobs=[doc.config, *doc.layers], subject=doc.subject,
                      artifact_type=artifact_type, annotations=annotations)
    return Parsed(media_type, children=doc.manifests, subject=doc.subject,
                  artifact_type=doc.artifactType, annotations=annotations)
