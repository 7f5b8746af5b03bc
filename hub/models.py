"""The hub's tables. Alembic migrations (`migrations/versions/`) create them; keep both in step.

Uniqueness lives in the database (one function per namespace+name, one version per
function+version, one tag per function+name, one key per namespace+keyid), so concurrent
writers are decided by constraints, never by a check-then-insert race.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

# Named constraints, so later migrations (SQLite batch mode included) can refer to them.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


def _fk(target: str) -> Any:
    return Field(sa_column=Column(Integer, ForeignKey(target, ondelete="CASCADE"), nullable=False,
                                  index=True))


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Token(SQLModel, table=True):
    """An API token; only the sha256 of the secret is kept."""

    __tablename__ = "tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = _fk("users.id")
    name: str = Field(max_length=100)
    token_hash: str = Field(max_length=64, unique=True)
    scopes: list[str] = Field(default_factory=list, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Namespace(SQLModel, table=True):
    __tablename__ = "namespaces"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class NamespaceOwner(SQLModel, table=True):
    __tablename__ = "namespace_owners"

    namespace_id: int = Field(
        sa_column=Column(Integer, ForeignKey("namespaces.id", ondelete="CASCADE"),
                         primary_key=True)
    )
    user_id: int = Field(
        sa_column=Column(Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    )


class PublisherKey(SQLModel, table=True):
    """An Ed25519 public key allowed to sign the namespace's packages."""

    __tablename__ = "publisher_keys"
    __table_args__ = (UniqueConstraint("namespace_id", "keyid"),)

    id: int | None = Field(default=None, primary_key=True)
    namespace_id: int = _fk("namespaces.id")
    keyid: str = Field(max_length=64)
    public_key: str = Field(max_length=100)  # base64 of the raw 32 bytes
    name: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Function(SQLModel, table=True):
    """A function's card; the descriptive fields mirror its displayed version."""

    __tablename__ = "functions"
    # each search sort's column with `live_versions`, so a sorted page tests an index entry
    # before reading its row (migration 0011)
    __table_args__ = (UniqueConstraint("namespace_id", "name"),
                      *(Index(f"ix_functions_by_{column}", column, "live_versions")
                        for column in ("name", "downloads", "updated_at")))

    id: int | None = Field(default=None, primary_key=True)
    namespace_id: int = _fk("namespaces.id")
    name: str = Field(max_length=64)
    description: str = ""
    kind: str = Field(default="job", max_length=20)
    categories: list[str] = Field(default_factory=list, sa_type=JSON)
    labels: dict[str, str] = Field(default_factory=dict, sa_type=JSON)
    latest_version: str | None = Field(default=None, max_length=200)
    live_versions: int = 0  # versions not deleted; the function is listed while > 0
    downloads: int = 0
    # The signed index's serial: raised with every change of the function or of its
    # namespace's keys, never lowered (see services/index.py).
    index_serial: int = Field(default=0, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class FunctionCategory(SQLModel, table=True):
    """The categories of a function's displayed version, for portable filtering."""

    __tablename__ = "function_categories"

    function_id: int = Field(
        sa_column=Column(Integer, ForeignKey("functions.id", ondelete="CASCADE"),
                         primary_key=True)
    )
    category: str = Field(max_length=100, primary_key=True, index=True)


class Version(SQLModel, table=True):
    """One published version. A deleted one keeps its row so its number stays taken."""

    __tablename__ = "versions"
    __table_args__ = (UniqueConstraint("function_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    function_id: int = _fk("functions.id")
    version: str = Field(max_length=200)
    manifest: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    package_digest: str = Field(max_length=71, index=True)  # "sha256:" + 64 hex
    package_size: int = Field(sa_type=BigInteger)
    envelope: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    keyids: list[str] = Field(default_factory=list, sa_type=JSON)  # registered keys that signed
    image_ref: str | None = Field(default=None, max_length=500)
    image_digest: str | None = Field(default=None, max_length=71)
    yanked: bool = False
    yank_reason: str | None = Field(default=None, max_length=1000)
    published_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    published_by: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    )
    downloads: int = 0
    deleted: bool = False
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Tag(SQLModel, table=True):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("function_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    function_id: int = _fk("functions.id")
    name: str = Field(max_length=64)
    version_id: int = _fk("versions.id")
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class IndexKey(SQLModel, table=True):
    """The hub's index keys, oldest first: the last one signs; each later one carries the
    rotation (a DSSE envelope) by which the key before it handed over."""

    __tablename__ = "index_keys"

    id: int | None = Field(default=None, primary_key=True)
    keyid: str = Field(max_length=64, unique=True)
    public_key: str = Field(max_length=100)  # base64 of the raw 32 bytes
    rotation: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TrustedPublisher(SQLModel, table=True):
    """A CI workflow allowed to publish into a namespace with an OIDC token (no stored secret).

    The constraints are matched against the token's claims; "" means "any". Empty strings
    rather than NULLs keep the uniqueness constraint effective on every database.
    """

    __tablename__ = "trusted_publishers"
    __table_args__ = (UniqueConstraint("namespace_id", "issuer", "repository", "workflow", "ref",
                                       "environment", name="uq_trusted_publishers_rule"),)

    id: int | None = Field(default=None, primary_key=True)
    namespace_id: int = _fk("namespaces.id")
    issuer: str = Field(max_length=255)
    repository: str = Field(max_length=255)
    workflow: str = Field(default="", max_length=255)
    ref: str = Field(default="", max_length=255)
    environment: str = Field(default="", max_length=255)
    created_by: int = _fk("users.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OidcTokenUse(SQLModel, table=True):
    """An OIDC token already exchanged (issuer + jti), kept until it expires: one use only."""

    __tablename__ = "oidc_token_uses"

    issuer: str = Field(max_length=255, primary_key=True)
    jti: str = Field(max_length=255, primary_key=True)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class RateLimitWindow(SQLModel, table=True):
    """Requests counted for one rate-limit key in one fixed window (epoch seconds)."""

    __tablename__ = "rate_limit_windows"

    key: str = Field(max_length=255, primary_key=True)
    window_start: int = Field(sa_type=BigInteger, primary_key=True)
    count: int = 0
    expires_at: int = Field(sa_type=BigInteger, index=True)
