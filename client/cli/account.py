"""Talking to a hub as someone: login, tokens."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from fnhub.api_client import HubClient
from fnhub.cli import context
from fnhub.config import normalize_url, save_login
from fnhub.core.api_models import TokenCreate
from fnhub.core.console import console, emit_json

tokens_app = typer.Typer(help="Create, list and revoke API tokens.\n\n"
                              "Example: `hub tokens list`", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def login(
    ctx: typer.Context,
    hub: Annotated[str | None, typer.Option(help="Hub URL (default: the current hub).")] = None,
    token: Annotated[str | None, typer.Option(help="API token (asked for when left out).")
                     ] = None,
) -> None:
    """Save a hub URL and token in config.toml (mode 0600), after checking them.

    Example: `hub login --hub https://hub.example.com --token fnhub_...`
    """
    cfg = context.config()
    url = normalize_url(hub or cfg.hubs[0].url)
    token = token or context.ask(ctx, "token", hide_input=True, flag="--token TOKEN")
    with HubClient(url, token) as client:
        who = client.whoami()
        index_key = client.index_key()
    path = save_login(cfg, url, token)
    console.print(f"logged in to {url} as {who.user} (saved in {path})")
    if index_key is not None:
        console.print(f"the hub's index key: {index_key.keyid} (`hub serve` printed it at start;"
                      f" the first install pins it, or now: hub keys trust-hub {url} KEYID)")


@tokens_app.command("create")
def create_token(
    name: Annotated[str, typer.Argument(help="A label for the token.")],
    scope: Annotated[list[str], typer.Option(help="read, publish:NS, publish:*, admin "
                                                  "(repeatable).")],
    user: Annotated[str | None, typer.Option(help="Mint for this user (admins only).")] = None,
    expires_in: Annotated[int | None, typer.Option(min=1, help="Lifetime in seconds.")] = None,
    as_json: JsonOpt = False,
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


@tokens_app.command("list")
def list_tokens(as_json: JsonOpt = False) -> None:
    """List your API tokens (never their secrets).

    Example: `hub tokens list --json`
    """
    with context.client(context.default_hub(context.config())) as client:
        tokens = client.tokens()
    if as_json:
        emit_json(tokens)
        return
    table = Table("id", "name", "user", "scopes", "created", "expires")
    for t in tokens:
        table.add_row(str(t.id), t.name, t.user, " ".join(t.scopes),
                      t.created_at.strftime("%Y-%m-%d %H:%M"),
                      t.expires_at.strftime("%Y-%m-%d %H:%M") if t.expires_at else "never")
    console.print(table)


@tokens_app.command("revoke")
def revoke_token(
    token_id: Annotated[int, typer.Argument(metavar="ID", min=1, help="From `hub tokens list`.")],
) -> None:
    """Revoke one of your tokens (admins: anyone's); requests with it fail from now on.

    Example: `hub tokens revoke 3`
    """
    with context.client(context.default_hub(context.config())) as client:
        client.revoke_token(token_id)
    console.print(f"revoked token {token_id}")
