"""Talking to a hub as someone: serve, login, tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fnhub.api_client import HubClient
from fnhub.api_models import TokenCreate
from fnhub.cli import context
from fnhub.cli.output import console, emit_json
from fnhub.config import normalize_url, save_login
from fnhub.errors import InvalidInput

tokens_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Where the hub keeps its data.")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL.")] = None,
    storage_url: Annotated[str | None, typer.Option(
        help="Blob store: a folder, or s3://BUCKET/PREFIX.")] = None,
    seed_catalog: Annotated[bool, typer.Option(
        "--seed-catalog", help="Publish ./catalog (or FNHUB_SERVER_CATALOG_DIR), signed, "
                               "into `library` at start.")] = False,
) -> None:
    """Run the hub server.

    Example: `hub serve --data-dir ./.fnhub --port 8080 --seed-catalog`
    """
    try:
        from fnhub.hub.server import serve as run_server
        from fnhub.hub.settings import ServerSettings
    except ImportError as exc:
        raise InvalidInput(f"the hub server is not installed ({exc.name} is missing)",
                           hint='pip install "fnhub[server]"') from None
    overrides = {"host": host, "port": port, "data_dir": data_dir, "database_url": database_url,
                 "storage_url": storage_url}
    settings = ServerSettings(**{k: v for k, v in overrides.items() if v is not None})
    catalog = (settings.catalog_dir or Path("catalog")) if seed_catalog else None
    if catalog is not None and not catalog.is_dir():
        raise InvalidInput(f"--seed-catalog: no catalog folder at {catalog.resolve()}",
                           hint="run from the repository root or set FNHUB_SERVER_CATALOG_DIR")
    run_server(settings, seed_catalog=catalog)


def login(
    hub: Annotated[str | None, typer.Option(help="Hub URL (default: the current hub).")] = None,
    token: Annotated[str | None, typer.Option(help="API token (asked for when left out).")
                     ] = None,
) -> None:
    """Save a hub URL and token in config.toml (mode 0600), after checking them.

    Example: `hub login --hub https://hub.example.com --token fnhub_...`
    """
    cfg = context.config()
    url = normalize_url(hub or cfg.hubs[0].url)
    token = token or typer.prompt("token", hide_input=True)
    with HubClient(url, token) as client:
        who = client.whoami()
    path = save_login(cfg, url, token)
    console.print(f"logged in to {url} as {who.user} (saved in {path})")


@tokens_app.command("create")
def create_token(
    name: Annotated[str, typer.Argument(help="A label for the token.")],
    scope: Annotated[list[str], typer.Option(help="read, publish:NS, publish:*, admin "
                                                  "(repeatable).")],
    user: Annotated[str | None, typer.Option(help="Mint for this user (admins only).")] = None,
    expires_in: Annotated[int | None, typer.Option(help="Lifetime in seconds.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create an API token; it is shown once.

    Example: `hub tokens create ci --scope publish:alice --user alice`
    """
    request = TokenCreate(name=name, scopes=scope, user=user, expires_in=expires_in)
    with context.client(context.default_hub(context.config())) as client:
        created = client.create_token(request)
    if as_json:
        emit_json(created)
    else:
        console.print(created.token)
