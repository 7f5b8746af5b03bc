"""What every command needs: the configuration, the hub a URI points at, the installer."""

from __future__ import annotations

from fnhub.api_client import HubClient
from fnhub.config import Config, HubEntry, load_config
from fnhub.core.console import warn
from fnhub.core.errors import InvalidURI, OfflineError
from fnhub.core.uri import FunctionURI, parse_uri
from fnhub.core.versions import parse_spec
from fnhub.install import Installer


def config() -> Config:
    return load_config()


def default_hub(cfg: Config) -> HubEntry:
    if cfg.offline:
        raise OfflineError("this command needs the hub, and offline mode is on (FNHUB_OFFLINE=1)")
    return cfg.hubs[0]


def hub_for(cfg: Config, uri: FunctionURI) -> HubEntry:
    return cfg.hub_for_host(uri.host) if uri.host else default_hub(cfg)


def client(hub: HubEntry) -> HubClient:
    return HubClient(hub.url, hub.token)


def installer(cfg: Config, insecure_skip_verify: bool = False) -> Installer:
    return Installer(cfg, insecure_skip_verify=insecure_skip_verify, warn=warn)


def exact_uri(text: str) -> FunctionURI:
    """A URI naming one exact version, for commands that change a version (yank, tag)."""
    uri = parse_uri(text)
    if uri.version is None or parse_spec(uri.version).exact is None:
        raise InvalidURI(f"{text!r} must name an exact version, like {uri.ref}:1.0.0")
    return uri
