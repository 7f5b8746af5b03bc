"""Client configuration: `~/.config/fnhub/config.toml` (XDG) overridden by `FNHUB_*` variables."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fnhub.core.errors import InvalidInput

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_HUB = "http://127.0.0.1:8080"


class HubEntry(BaseModel):
    url: str
    token: str | None = None

    @property
    def netloc(self) -> str:
        return urlsplit(self.url).netloc


class FeaturesTable(BaseModel):
    """The `[features]` table: where the feature store keeps its data (design §10)."""

    offline: str | None = None  # a folder, file:// or s3://bucket/prefix
    online: str | None = None  # a SQLite path or sqlite:///, redis://, postgresql://


class ConfigFile(BaseModel):
    """What `config.toml` holds: the hubs, tried in order for unqualified URIs, and the
    feature store's locations."""

    hubs: list[HubEntry] = Field(default_factory=list)
    features: FeaturesTable = Field(default_factory=FeaturesTable)


ENV_PREFIX = "FNHUB_"


class EnvSettings(BaseModel):
    """The `FNHUB_*` variables, matched without regard to case (`FNHUB_FEATURES_OFFLINE` is
    `features_offline`). A plain model: pydantic-settings would cost every `hub` command a
    tenth of its start-up to import, for seven variables."""

    model_config = ConfigDict(extra="ignore")

    hub: str | None = None
    token: str | None = None
    home: Path | None = None
    config_dir: Path | None = None
    offline: bool = False
    features_offline: str | None = None
    features_online: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> EnvSettings:
        values = {key[len(ENV_PREFIX):].lower(): value for key, value in environ.items()
                  if key.upper().startswith(ENV_PREFIX)}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problem = exc.errors()[0]
            raise InvalidInput(f"invalid {ENV_PREFIX}{str(problem['loc'][0]).upper()}: "
                               f"{problem['msg']}") from None


class Config(BaseModel):
    hubs: list[HubEntry]
    home: Path
    config_dir: Path
    offline: bool
    features: FeaturesTable = Field(default_factory=FeaturesTable)

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def keys_dir(self) -> Path:
        return self.config_dir / "keys"

    def hub_for_host(self, host: str) -> HubEntry:
        """The configured hub serving `host`, or a new entry for it (http for loopback hosts)."""
        for entry in self.hubs:
            if entry.netloc == host:
                return entry
        loopback = host.split(":")[0] in ("localhost", "127.0.0.1", "[::1]")
        return HubEntry(url=f"{'http' if loopback else 'https'}://{host}")


def normalize_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(f"invalid hub URL {url!r}: expected http(s)://HOST[:PORT]")
    return url.strip().rstrip("/")


def _read_file(path: Path) -> ConfigFile:
    if not path.is_file():
        return ConfigFile()
    try:
        return ConfigFile.model_validate(tomllib.loads(path.read_text()))
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise InvalidInput(f"{path}: invalid configuration: {exc}") from None


def load_config() -> Config:
    env = EnvSettings.from_environ()
    config_dir, home = env.config_dir, env.home
    if config_dir is None or home is None:  # the platform's folders, looked up only when needed
        import platformdirs

        config_dir = config_dir or Path(platformdirs.user_config_dir("fnhub"))
        home = home or Path(platformdirs.user_cache_dir("fnhub"))
    file = _read_file(config_dir / "config.toml")
    hubs = list(file.hubs)
    features = FeaturesTable(offline=env.features_offline or file.features.offline,
                             online=env.features_online or file.features.online)
    if env.hub:
        url = normalize_url(env.hub)
        known = next((h for h in hubs if h.url == url), None)
        hubs = [h for h in hubs if h.url != url]
        hubs.insert(0, HubEntry(url=url, token=env.token or (known.token if known else None)))
    elif env.token and hubs:
        hubs[0] = HubEntry(url=hubs[0].url, token=env.token)
    if not hubs:
        hubs = [HubEntry(url=DEFAULT_HUB, token=env.token)]
    return Config(hubs=hubs, home=home, config_dir=config_dir, offline=env.offline,
                  features=features)


def save_login(config: Config, url: str, token: str | None) -> Path:
    """Put `url` first in config.toml with its token; the file is private (0600)."""
    url = normalize_url(url)
    current = _read_file(config.config_file)
    hubs = [HubEntry(url=url, token=token)] + [h for h in current.hubs if h.url != url]
    config.config_dir.mkdir(parents=True, exist_ok=True)
    data: dict[str, object] = {"hubs": [h.model_dump(exclude_none=True) for h in hubs]}
    if features := current.features.model_dump(exclude_none=True):
        data["features"] = features  # kept as the user wrote it
    tmp = config.config_file.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        tomli_w.dump(data, fh)
    os.replace(tmp, config.config_file)
    return config.config_file
