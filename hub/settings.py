"""Server settings (design §8): `FNHUB_SERVER_*` variables, or `hub serve` flags passed in."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fnhub.core.errors import InvalidInput

MiB = 1024 * 1024
DEFAULT_OIDC_AUDIENCE = "fnhub"
_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(?:(\d+)\s*s|(second|minute|hour|day))\s*$")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
INDEX_KEY_FILE = "index-key.pem"


def parse_rate(text: str) -> tuple[int, int] | None:
    """`"60/minute"` -> (60, 60); `"5/10s"` -> (5, 10); `"off"` -> None (the rule is disabled)."""
    if text.strip().lower() == "off":
        return None
    match = _RATE.match(text.lower())
    if match is None or int(match[1]) < 1 or (match[2] is not None and int(match[2]) < 1):
        raise ValueError(f"invalid rate {text!r}: use N/second|minute|hour|day, N/SECONDSs "
                         "or off")
    period = int(match[2]) if match[2] is not None else _PERIODS[match[3]]
    return int(match[1]), period


def parse_duration(value: Any) -> Any:
    """`"30s"`, `"5m"`, `"2h"`, `"7d"` or plain seconds -> seconds; other values pass through."""
    if not isinstance(value, str):
        return value
    match = _DURATION.match(value.lower())
    if match is None:
        raise ValueError(f"invalid duration {value!r}: use N, Ns, Nm, Nh or Nd")
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]
    return int(match[1]) * unit


class ServerSettings(BaseSettings):
    """Where the hub keeps its data and how it listens; unset URLs default into `data_dir`."""

    model_config = SettingsConfigDict(env_prefix="FNHUB_SERVER_", extra="ignore")

    data_dir: Path = Path(".fnhub")
    database_url: str = ""
    storage_url: str = ""
    public_url: str | None = None
    private: bool = False
    admin_token: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_package_size: int = Field(default=100 * MiB, gt=0)
    catalog_dir: Path | None = None

    # S3 blob store (storage_url=s3://bucket/prefix); region and credentials come from the
    # standard AWS_* variables, as boto3 reads them.
    s3_endpoint_url: str | None = None  # MinIO, Ceph, moto...; None is AWS itself
    s3_presigned_downloads: bool = False  # package downloads: 307 to a presigned URL
    s3_presign_ttl: int = Field(default=300, ge=10, le=7 * 86400)  # seconds
    s3_part_size: int = Field(default=8 * MiB, ge=5 * MiB, le=512 * MiB)  # multipart chunks

    # Signs the OCI registry's bearer tokens; replicas must share it. Unset: a secret made
    # once and kept in the data dir, which serves only a single process or a shared disk.
    oci_token_secret: SecretStr | None = None

    # The Ed25519 key that signs every function's index (design §5): a PEM file, the same on
    # every replica. Unset: `<data_dir>/index-key.pem`, made at first start.
    index_key: Path | None = None
    # How long a signed index stays valid, in seconds ("30s" for tests). Unset: until the
    # next UTC midnight plus 7 days.
    index_expiry: int | None = Field(default=None, ge=1, le=366 * 86400)

    # Connection pool of a client/server database (PostgreSQL); SQLite ignores these.
    db_pool_size: int = Field(default=5, ge=1, le=100)
    db_max_overflow: int = Field(default=10, ge=0, le=100)
    db_pool_timeout: float = Field(default=30.0, gt=0)
    db_pool_recycle: int = Field(default=1800, ge=-1)  # seconds; -1 never recycles
    db_pool_pre_ping: bool = True

    # Logs: one JSON object per line (with the request id), or plain text for a terminal.
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # Trusted publishing: issuers beyond GitHub Actions and GitLab.com, each with the claim
    # layout it follows ({"https://ghes.example.com/_services/token": "github"}).
    oidc_issuers: dict[str, Literal["github", "gitlab"]] = Field(default_factory=dict)
    oidc_audience: str = ""  # default: public_url, else "fnhub"
    oidc_token_lifetime: int = Field(default=900, ge=60, le=86400)  # minted hub tokens, seconds
    oidc_jwks_ttl: int = Field(default=600, ge=0, le=86400)  # JWKS cache, seconds

    # Fixed-window rate limits, counted in the database so every replica shares them.
    rate_limit_enabled: bool = True
    rate_limit_publish: str = "60/minute"  # per token (or client IP without one)
    rate_limit_login: str = "30/minute"  # token minting, per client IP
    rate_limit_search: str = "600/minute"  # per token (or client IP without one)

    @field_validator("rate_limit_publish", "rate_limit_login", "rate_limit_search")
    @classmethod
    def _rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    @field_validator("index_expiry", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value)

    @field_validator("index_key", mode="before")
    @classmethod
    def _unset_if_blank(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("oidc_issuers")
    @classmethod
    def _issuers(cls, value: dict[str, Any]) -> dict[str, Any]:
        for issuer in value:
            parts = urlsplit(issuer)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"OIDC issuer {issuer!r} is not an http(s) URL")
        return {issuer.rstrip("/"): kind for issuer, kind in value.items()}

    @model_validator(mode="after")
    def _defaults(self) -> ServerSettings:
        """Anchor the data dir and derive the database and storage defaults from it."""
        self.data_dir = self.data_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'hub.db'}"
        if not self.storage_url:
            self.storage_url = str(self.data_dir / "blobs")
        if self.admin_token is not None and not self.admin_token.get_secret_value().strip():
            self.admin_token = None
        if self.index_key is not None:
            self.index_key = self.index_key.expanduser().resolve()
        if self.oci_token_secret is not None:
            secret = self.oci_token_secret.get_secret_value().strip()
            if not secret:
                self.oci_token_secret = None
            elif len(secret) < 32:
                raise ValueError("oci_token_secret must be at least 32 characters long")
        return self

    @property
    def audience(self) -> str:
        """The `aud` an OIDC token must carry to be exchanged at this hub."""
        return self.oidc_audience or (self.public_url or "").rstrip("/") or DEFAULT_OIDC_AUDIENCE

    def index_key_path(self) -> Path:
        """The index key's PEM file: the configured one, else one in the data dir."""
        return self.index_key or self.data_dir / INDEX_KEY_FILE

    def pool_options(self) -> dict[str, Any]:
        """Keyword arguments of `create_engine` for a pooled (non-SQLite) database."""
        return {"pool_size": self.db_pool_size, "max_overflow": self.db_max_overflow,
                "pool_timeout": self.db_pool_timeout, "pool_recycle": self.db_pool_recycle,
                "pool_pre_ping": self.db_pool_pre_ping}

    def s3_location(self) -> tuple[str, str] | None:
        """(bucket, key prefix ending in `/` or empty) for an `s3://` storage URL, else None."""
        parts = urlsplit(self.storage_url)
        if parts.scheme != "s3":
            return None
        if not parts.netloc or parts.query or parts.fragment:
            raise InvalidInput(f"storage URL {self.storage_url!r}: expected s3://bucket/prefix")
        prefix = parts.path.strip("/")
        return parts.netloc, f"{prefix}/" if prefix else ""

    def storage_path(self) -> Path:
        """The blob folder named by `storage_url` (a plain path or `file://`)."""
        url = self.storage_url
        parts = urlsplit(url)
        if parts.scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise InvalidInput(f"storage URL {url!r}: file:// URLs must name a local path")
            return Path(unquote(parts.path)).expanduser().resolve()
        if parts.scheme == "s3":
            raise InvalidInput(f"storage URL {url!r} names an S3 bucket, not a folder")
        if parts.scheme and len(parts.scheme) > 1:  # one letter is a Windows drive, not a scheme
            raise InvalidInput(
                f"storage URL {url!r}: unknown scheme {parts.scheme!r}",
                hint="use a folder path, a file:// URL or s3://bucket/prefix",
            )
        return Path(url).expanduser().resolve()
