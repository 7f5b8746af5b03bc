"""Outside `/api/v1`: liveness, Prometheus metrics, and the include point of the web catalog."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Response
from sqlalchemy import text
from starlette.routing import Router

from fnhub.hub import web
from fnhub.hub.api.deps import HubDep, MetricsDep
from fnhub.hub.metrics import CONTENT_TYPE

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
    app.router.default = Router(routes=web.router.routes, default=app.router.default)
