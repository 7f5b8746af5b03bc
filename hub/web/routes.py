"""The web catalog's routes: home, namespace, function and version pages, and static files.

Clean URLs: `/library`, `/library/describe`, `/library/describe/1.2.0`. The hub serves
these routes as its fallback (`fnhub.hub.api.site.include_catalog`), and a first path
segment that starts an API (`api`, `v2`) never matches them, so API paths keep their
JSON answers. Errors on a page become an HTML page with the right status for browsers
(404 pages list the names the visitor likely meant) and the API's JSON error body for
other clients (both by `fnhub.hub.errors.render_error`). Every page says how long the
server took in a `Server-Timing` header.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.convertors import Convertor, register_url_convertor

from fnhub.core.errors import FnhubError
from fnhub.hub.api.deps import HubDep, ReadAccess
from fnhub.hub.context import Hub
from fnhub.hub.errors import render_error
from fnhub.hub.web import views
from fnhub.hub.web.render import ASSETS, STATIC_PREFIX, render
from fnhub.hub.web.urls import API_SEGMENTS, function_url


class _PageSegment(Convertor[str]):
    """A first path segment that is not one of the API prefixes."""

    regex = r"(?!(?:" + "|".join(API_SEGMENTS) + r")(?:/|$))[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("fnhub_page", _PageSegment())


class PageRoute(APIRoute):
    """A route answering in HTML, errors included, with its server time in `Server-Timing`."""

    html_errors = True  # `render_error` answers a browser with the HTML error page

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = await handler(request)
            except (FnhubError, RequestValidationError) as exc:
                response = render_error(request, exc)
            elapsed = (time.perf_counter() - started) * 1000
            response.headers["Server-Timing"] = f"app;dur={elapsed:.1f}"
            return response

        return page


assets = APIRouter(include_in_schema=False)
pages = APIRouter(route_class=PageRoute, include_in_schema=False, dependencies=[ReadAccess])
Page = Annotated[int, Query(ge=1, le=views.MAX_PAGE)]


@assets.get(STATIC_PREFIX + "{name}")
def static(name: str, request: Request) -> Response:
    asset = ASSETS.get(name)
    if asset is None:
        return Response("no such file", status_code=404, media_type="text/plain")
    headers = {"ETag": asset.etag, "Cache-Control": "public, max-age=31536000, immutable"}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@pages.get("/")
def home(
    hub: HubDep,
    q: Annotated[str, Query(max_length=256)] = "",
    category: str = "",
    kind: str = "",
    sort: str = "relevance",
    page: Page = 1,
) -> Response:
    """Search and browse: filters by category and kind, sorting, pages of results."""
    filters = views.Filters(q=q.strip(), category=category, kind=kind, sort=sort or "relevance",
                            page=page)
    return render("home.html", {"view": views.home(hub, filters)})


@pages.get("/{namespace:fnhub_page}")
def namespace(hub: HubDep, namespace: str, page: Page = 1) -> Response:
    """A namespace: its owners, its signing keys and its functions."""
    return render("namespace.html", {"view": views.namespace_page(hub, namespace, page)})


def _hub_url(request: Request, hub: Hub) -> str:
    """This hub's address, for the `FNHUB_HUB=...` line beside the snippets."""
    return (hub.settings.public_url or str(request.base_url)).rstrip("/")


def _function(request: Request, hub: Hub, namespace: str, name: str,
              version: str | None) -> Response:
    view = views.function_page(hub, namespace, name, version)
    if isinstance(view, views.Redirect):
        return RedirectResponse(view.url, status_code=302)
    return render("function.html", {"view": view, "hub_url": _hub_url(request, hub)})


@pages.get("/{namespace:fnhub_page}/{name}")
def function(request: Request, hub: HubDep, namespace: str, name: str,
             version: str | None = None) -> Response:
    """A function at its latest version; `?version=` (the version picker) redirects."""
    if version:
        return RedirectResponse(function_url(namespace, name, version), status_code=303)
    return _function(request, hub, namespace, name, None)


@pages.get("/{namespace:fnhub_page}/{name}/{version}")
def function_version(request: Request, hub: HubDep, namespace: str, name: str,
                     version: str) -> Response:
    """One version of a function; a tag or range (`latest`, `^1`) redirects to its version."""
    return _function(request, hub, namespace, name, version)


router = APIRouter()
router.include_router(assets)
router.include_router(pages)
