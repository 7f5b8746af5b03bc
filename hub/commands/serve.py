"""`hub serve`: run the hub server."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from fnhub.core.errors import InvalidInput

# The server runs as this program, in place of the CLI (same process, by exec): the CLI's
# libraries (Typer, Click's commands, Rich, the command table's entry points; ~2 MiB) do not
# stay in the memory of a process that serves for weeks. Settings travel as FNHUB_SERVER_*.
SERVER_PROGRAM = "from fnhub.hub.server import main; main()"


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Where the hub keeps its data.")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL.")] = None,
    storage_url: Annotated[str | None, typer.Option(
        help="Blob store: a folder, or s3://BUCKET/PREFIX.")] = None,
    seed_catalog: Annotated[bool, typer.Option(
        "--seed-catalog", help="Publish the catalog shipped with fnhub (or "
                               "FNHUB_SERVER_CATALOG_DIR), signed, into `library` at start.")
    ] = False,
) -> None:
    """Run the hub server.

    Example: `hub serve --data-dir ./.fnhub --port 8080 --seed-catalog`
    """
    from fnhub.hub.settings import ServerSettings

    overrides = {"host": host, "port": port, "data_dir": data_dir, "database_url": database_url,
                 "storage_url": storage_url}
    given = {k: v for k, v in overrides.items() if v is not None}
    settings = ServerSettings(**given)  # bad settings are refused here, as CLI errors
    catalog = None
    if seed_catalog:
        from fnhub.hub.services.seed import bundled_catalog

        catalog = settings.catalog_dir or bundled_catalog()
        if not catalog.is_dir():
            raise InvalidInput(f"--seed-catalog: no catalog folder at {catalog.resolve()}",
                               hint="FNHUB_SERVER_CATALOG_DIR names a folder of function "
                                    "folders")
    if os.name != "posix":  # no exec that keeps the process: serve from this one
        from fnhub.hub.server import serve as run_server

        run_server(settings, seed_catalog=catalog)
        return
    env = {f"FNHUB_SERVER_{name.upper()}": str(value) for name, value in given.items()}
    if catalog is not None:
        env["FNHUB_SERVER_CATALOG_DIR"] = str(catalog)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-c", SERVER_PROGRAM], {**os.environ, **env})
