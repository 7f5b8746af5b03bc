"""What every command needs: the configuration, the hub a URI points at, the installer."""

from __future__ import annotations

import sys
from typing import Any

import typer

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


def usage_error(ctx: typer.Context, message: str) -> Exception:
    """A usage error (exit 2) of the click typer runs on, for `raise`."""
    exceptions = sys.modules[typer.BadParameter.__module__]
    error: Exception = exceptions.UsageError(message, ctx)
    return error


def ask(ctx: typer.Context, prompt: str, *, flag: str, **options: Any) -> str:
    """Prompt for a value (or read one line when standard input is not a terminal, as in
    `... | hub login`); input ending first (or Ctrl-C) is a usage error naming the flag that
    gives the value instead."""
    answer = ""
    try:
        if sys.stdin is not None and sys.stdin.isatty():
            answer = typer.prompt(prompt, **options)
        elif sys.stdin is not None:
            answer = sys.stdin.readline().strip()
    except (EOFError, KeyboardInterrupt, typer.Abort):
        answer = ""
    if not answer:
        raise usage_error(ctx, f"no {prompt} given: standard input ended; pass {flag}")
    return answer
