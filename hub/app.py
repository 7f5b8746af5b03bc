"""The hub's FastAPI application: routers, middleware, metrics and error handlers.

Every error is answered by `fnhub.hub.errors.render_error` (JSON, the OCI body under `/v2/`
or an HTML page for the catalog's pages).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from fnhub.core import __version__
from fnhub.hub.api import docs, functions, index, keys, namespaces, oidc, site, tokens
from fnhub.hub.context import Hub
from fnhub.hub.errors import install_handlers
from fnhub.hub.logs import RequestContextMiddleware
from fnhub.hub.metrics import Metrics, MetricsMiddleware
from fnhub.hub.middleware import RateLimitMiddleware
from fnhub.hub.oci import router as oci_router
from fnhub.hub.services import auth
from fnhub.hub.services import index as indexes
from fnhub.hub.settings import ServerSettings


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """Open the hub (migrating its database, minting the admin token) and build its app."""
    settings = settings or ServerSettings()
    hub = Hub.open(settings)
    admin_token_file = auth.ensure_admin_token(hub)
    hub.index_key = indexes.ensure_key(hub)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        hub.close()

    app = FastAPI(
        title="fnhub",
        version=__version__,
        description="A registry of reusable, signed ML functions.",
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # served from shipped files instead of a CDN
    )
    app.state.hub = hub
    app.state.metrics = metrics
    app.state.admin_token_file = admin_token_file
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(RateLimitMiddleware, hub=hub)
    app.add_middleware(RequestContextMiddleware)  # outermost: every answer has X-Request-ID
    for module in (functions, index, namespaces, keys, tokens, site, oci_router):
        app.include_router(module.router)
    app.include_router(oidc.router)
    docs.include_docs(app)
    site.include_catalog(app)
    install_handlers(app)
    return app
