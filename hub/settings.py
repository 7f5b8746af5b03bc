"""Server settings (design §8): `FNHUB_SERVER_*` variables, or `hub serve` flags passed in."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fnhub.errors import InvalidInput

MiB = 1024 * 1024


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
        return self

    def storage_path(self) -> Path:
        """The blob folder named by `storage_url` (a plain path or `file://`)."""
        url = self.storage_url
        parts = urlsplit(url)
        if parts.scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise InvalidInput(f"storage URL {url!r}: file:// URLs must name a local path")
            return Path(unquote(parts.path)).expanduser().resolve()
        if parts.scheme == "s3":
            raise InvalidInput(
                f"storage URL {url!r}: S3 storage is not supported by this hub yet",
                hint="use a folder path or a file:// URL",
            )
        if parts.scheme and len(parts.scheme) > 1:  # one letter is a Windows drive, not a scheme
            raise InvalidInput(
                f"storage URL {url!r}: unknown scheme {parts.scheme!r}",
                hint="use a folder path or a file:// URL",
            )
        return Path(url).expanduser().resolve()
