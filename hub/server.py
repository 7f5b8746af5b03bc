"""`hub serve`: open the hub, seed the catalog once, then serve HTTP with uvicorn."""

from __future__ import annotations

import logging
from pathlib import Path

import uvicorn

from fnhub.core.signing import key_id
from fnhub.hub import logs
from fnhub.hub.app import create_app
from fnhub.hub.services import seed
from fnhub.hub.settings import ServerSettings

logger = logging.getLogger("fnhub.hub")


def serve(settings: ServerSettings, seed_catalog: Path | None = None) -> None:
    """Run the hub until interrupted; `seed_catalog` (or settings.catalog_dir) is published first.

    Seeding errors (say, a catalog function changed without a version bump) are raised as
    fnhub errors before the server starts listening.
    """
    logs.configure(settings.log_format, settings.log_level)
    app = create_app(settings)
    logger.info("index key %s (%s)", key_id(app.state.hub.index_key.public_key()),
                settings.index_key_path())
    catalog = seed_catalog or settings.catalog_dir
    if catalog is not None:
        for result in seed.seed_catalog(app.state.hub, catalog):
            logger.info("catalog: %s %s (%s)", result.ref, result.status, result.digest)
    # uvicorn's loggers go through the hub's format; the hub logs access lines itself.
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                log_config=None, access_log=False)

