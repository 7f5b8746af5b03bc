"""`hub serve`: open the hub, seed the catalog once, then serve HTTP with uvicorn."""

from __future__ import annotations

import logging
from pathlib import Path

import uvicorn

from fnhub.hub.app import create_app
from fnhub.hub.services import seed
from fnhub.hub.settings import ServerSettings

logger = logging.getLogger("fnhub.hub")


def _configure_logging() -> None:
    """Show the hub's own INFO messages (uvicorn configures only its loggers)."""
    root = logging.getLogger("fnhub")
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.INFO)


def serve(settings: ServerSettings, seed_catalog: Path | None = None) -> None:
    """Run the hub until interrupted; `seed_catalog` (or settings.catalog_dir) is published first.

    Seeding errors (say, a catalog function changed without a version bump) are raised as
    fnhub errors before the server starts listening.
    """
    _configure_logging()
    app = create_app(settings)
    catalog = seed_catalog or settings.catalog_dir
    if catalog is not None:
        for result in seed.seed_catalog(app.state.hub, catalog):
            logger.info("catalog: %s %s (%s)", result.ref, result.status, result.digest)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")

