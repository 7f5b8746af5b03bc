"""The hub's own commands (`hub serve`, `hub admin`), contributed to the `hub` CLI through the
`fnhub.commands` entry point: the client never imports the hub. Without the server extra
they are still listed, and say what to install."""

from __future__ import annotations

import importlib.util

import typer

from fnhub.core.errors import InvalidInput

# The server extra's distinctive imports: when one is missing, the commands cannot run.
_SERVER_MODULES = ("fastapi", "uvicorn", "sqlmodel", "alembic")


def _missing_server_module() -> str | None:
    return next((m for m in _SERVER_MODULES if importlib.util.find_spec(m) is None), None)


def register(app: typer.Typer) -> None:
    """Add `serve` and `admin` to the CLI (or stand-ins that name the missing extra)."""
    missing = _missing_server_module()
    if missing is None:
        from fnhub.hub.commands import admin, serve

        app.command()(serve.serve)
        app.add_typer(admin.app, name="admin")
        return

    def needs_server(ctx: typer.Context) -> None:
        raise InvalidInput(f"`hub {ctx.info_name}` needs fnhub[server] ({missing} is missing)",
                           hint='pip install "fnhub[server]"')

    for name in ("serve", "admin"):
        app.command(name, help="Needs fnhub[server].", context_settings={
            "allow_extra_args": True, "ignore_unknown_options": True})(needs_server)
