"""Outside `/api/v1`: liveness, Prometheus metrics and a minimal HTML list of functions."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import text

from fnhub.hub.api.deps import HubDep, MetricsDep, ReadAccess
from fnhub.hub.metrics import CONTENT_TYPE
from fnhub.hub.services import search

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


@router.get("/", response_class=HTMLResponse, dependencies=[ReadAccess])
def index(hub: HubDep) -> HTMLResponse:
    """The functions on this hub, by name (the full web catalog comes later)."""
    page = search.search(hub, sort="name", limit=search.MAX_LIMIT)
    rows = "\n".join(
        f"<tr><td>{escape(f.namespace)}/{escape(f.name)}</td>"
        f"<td>{escape(f.latest_version or '-')}</td><td>{escape(f.description)}</td></tr>"
        for f in page.items
    )
    more = (f"<p>{page.total - len(page.items)} more: see "
            "<a href=\"/api/v1/functions?sort=name\">the API</a>.</p>"
            if page.total > len(page.items) else "")
    return HTMLResponse(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>fnhub</title></head><body>"
        f"<h1>fnhub</h1><p>{page.total} functions &middot; <a href=\"/docs\">API docs</a></p>"
        "<table><thead><tr><th>function</th><th>latest</th><th>description</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>{more}</body></html>"
    )
