"""`hub serve`: run the hub server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fnhub.core.errors import InvalidInput


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
    from fnhub.hub.server import serve as run_server
    from fnhub.hub.services.seed import bundled_catalog
    from fnhub.hub.settings import ServerSettings

    overrides = {"host": host, "port": port, "data_dir": data_dir, "database_url": database_url,
                 "storage_url": storage_url}
    settings = ServerSettings(**{k: v for k, v in overrides.items() if v is not None})
    catalog = (settings.catalog_dir or bundled_catalog()) if seed_catalog else None
    if catalog is not None and not catalog.is_dir():
        raise InvalidInput(f"--seed-catalog: no catalog folder at {catalog.resolve()}",
                           hint="FNHUB_SERVER_CATALOG_DIR names a folder of function folders")
    run_server(settings, seed_catalog=catalog)
