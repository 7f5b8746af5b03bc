"""The registry's tables (created by migration 0002).

Blob and manifest bytes live in the hub's blob store under their digest; these rows say
which repository holds which content, so a blob pushed to one repository is not readable
through another until it is pushed or mounted there. Upload sessions are rows plus staged
files (one per received chunk), so any hub process can continue a session.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from fnhub.hub.models import UTCDateTime, utcnow

DIGEST_LEN = 71  # "sha256:" + 64 hex


def _fk(target: str, *, primary_key: bool = False, index: bool = True) -> Any:
    return Field(sa_column=Column(Integer, ForeignKey(target, ondelete="CASCADE"),
                                  nullable=False, primary_key=primary_key,
                                  index=index and not primary_key))


class OciRepository(SQLModel, table=True):
    """`<namespace>/<name>`: pushing into it needs the rights to publish into the namespace."""

    __tablename__ = "oci_repositories"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=255, unique=True)
    namespace_id: int = _fk("namespaces.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OciBlobLink(SQLModel, table=True):
    """A blob readable through a repository (pushed or mounted there)."""

    __tablename__ = "oci_blob_links"

    repository_id: int = _fk("oci_repositories.id", primary_key=True)
    digest: str = Field(max_length=DIGEST_LEN, primary_key=True)
    size: int = Field(sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OciManifest(SQLModel, table=True):
    """A manifest or index stored byte-exact; the fields the referrers API answers with."""

    __tablename__ = "oci_manifests"
    __table_args__ = (UniqueConstraint("repository_id", "digest"),)

    id: int | None = Field(default=None, primary_key=True)
    repository_id: int = _fk("oci_repositories.id")
    digest: str = Field(max_length=DIGEST_LEN)
    media_type: str = Field(max_length=255)
    size: int = Field(sa_type=BigInteger)
    artifact_type: str | None = Field(default=None, max_length=255)
    subject_digest: str | None = Field(default=None, max_length=DIGEST_LEN, index=True)
    annotations: dict[str, str] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OciTag(SQLModel, table=True):
    __tablename__ = "oci_tags"
    __table_args__ = (UniqueConstraint("repository_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    repository_id: int = _fk("oci_repositories.id")
    name: str = Field(max_length=128)
    manifest_id: int = _fk("oci_manifests.id")
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OciUpload(SQLModel, table=True):
    """A blob upload session; `size` is the number of bytes received in order so far."""

    __tablename__ = "oci_uploads"

    id: str = Field(sa_column=Column(String(32), primary_key=True))
    repository_id: int = _fk("oci_repositories.id")
    size: int = Field(default=0, sa_type=BigInteger)
    store_handle: str | None = Field(default=None, max_length=1024)  # the store's (S3 upload id)
    # the digest of the bytes received, while they all came in one chunk (hashed on arrival)
    digest: str | None = Field(default=None, max_length=DIGEST_LEN)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class OciUploadPart(SQLModel, table=True):
    """A part of a session's bytes, where the blob store keeps it (`path`: its locator)."""

    __tablename__ = "oci_upload_parts"

    upload_id: str = Field(sa_column=Column(
        String(32), ForeignKey("oci_uploads.id", ondelete="CASCADE"), primary_key=True))
    seq: int = Field(primary_key=True)
    path: str = Field(max_length=1024)
    digest: str = Field(max_length=DIGEST_LEN)
    size: int = Field(sa_type=BigInteger)
