"""The hub's own commands (`hub serve`, `hub admin`), contributed to the `hub` CLI through the
`fnhub.commands` entry point: the client never imports the hub. The entry point returns a
table the CLI loads lazily (nothing here imports a command until it runs). Without the server
extra the commands are still listed, and say what to install."""

from __future__ import annotations

import importlib.util

import typer

from fnhub.core.errors import InvalidInput

# The server extra's distinctive imports: when one is missing, the commands cannot run.
_SERVER_MODULES = ("fastapi", "uvicorn", "sqlmodel", "alembic")


def _missing_server_module() -> str | None:
    return next((m for m in _SERVER_MODULES if importlib.util.find_spec(m) is None), None)


def register() -> dict[str, tuple[str, str]]:
    """`serve` and `admin` as the CLI's lazy table: name -> ("module:attribute", help)."""
    if _missing_server_module() is None:
        return {
            "serve": ("fnhub.hub.commands.serve:serve", "Run the hub server."),
            "admin": ("fnhub.hub.commands.admin:app", "Maintain a hub's storage and database: "
                                                      "migrate, fsck, gc, backup, restore, "
                                                      "rotate-index-key."),
        }
    return {name: ("fnhub.hub.commands:needs_server", "Needs fnhub[server].")
            for name in ("serve", "admin")}


needs_server = typer.Typer(add_completion=False, invoke_without_command=True,
                           context_settings={"allow_extra_args": True,
                                             "ignore_unknown_options": True})


@needs_server.callback()
def _needs_server(ctx: typer.Context) -> None:
    """Needs fnhub[server].

    Example: `pip install "fnhub[server]"`, then `hub serve --seed-catalog`
    """
    raise InvalidInput(f"`hub {ctx.info_name}` needs fnhub[server] "
                       f"({_missing_server_module()} is missing)",
                       hint='pip install "fnhub[server]"')
