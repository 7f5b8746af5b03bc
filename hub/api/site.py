"""Outside `/api/v1`: liveness, Prometheus metrics, and the include point of the web catalog."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Response
from sqlalchemy import text
from starlette.routing import Router
from starlette.types import ASGIApp, Receive, Scope, Send

from fnhub.hub.api.deps import HubDep, MetricsDep
from fnhub.hub.metrics import CONTENT_TYPE
from fnhub.hub.web.urls import API_SEGMENTS

router = APIRouter(tags=["site"])


@router.get("/healthz")
def healthz(hub: HubDep) -> dict[str, str]:
    """Liveness: answers once the database answers."""
    with hub.db.read() as session:
        session.execute(text("SELECT 1"))
    return {"status": "ok"}


@router.get("/metrics", response_class=Response)
def metrics(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type=CONTENT_TYPE)


def include_catalog(app: FastAPI) -> None:
    """Serve the web catalog (`fnhub.hub.web`) for every request no other route answers.

    As the app's fallback rather than one more included router, its `/{namespace}/{name}`
    pages can never shadow another route, whatever order routes are added in (even after
    this call); what the catalog does not serve either gets the app's own 404 or 405.
    """
    app.router.default = _LazyCatalog(app.router.default)


class _LazyCatalog:
    """The catalog's routes, imported when a request first reaches them rather than at start.

    A hub serving only the API and the OCI registry never loads Jinja2, the Markdown
    renderer and the compiled templates (~4 MiB of its memory). Paths under an API prefix
    skip the catalog, as its routes would: a registry client's 404 loads nothing either.
    """

    def __init__(self, default: ASGIApp) -> None:
        self.default = default
        self.catalog: Router | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        first = scope.get("path", "/").lstrip("/").split("/", 1)[0]
        if first in API_SEGMENTS:
            await self.default(scope, receive, send)
            return
        if self.catalog is None:
            from fnhub.hub.web.routes import router

            self.catalog = Router(routes=router.routes, default=self.default)
        await self.catalog(scope, receive, send)
