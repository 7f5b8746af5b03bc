"""The API's interactive docs, `/docs` (Swagger UI), served whole by the hub.

FastAPI's own pages load their JavaScript, CSS and favicon from a CDN, so on an air-gapped hub
they stay blank (and every visit tells the CDN who reads the docs). This page loads the copy
of swagger-ui-dist that the `fastapi-offline` package ships, served under `/-/docs/`; Swagger
UI's validator badge, which would send the spec's URL to validator.swagger.io, is off. There is
no `/redoc`: ReDoc fetches its logo from its CDN whatever the page says.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_PREFIX = "/-/docs"
ASSETS_DIR = Path(str(resources.files("fastapi_offline") / "static"))
DOCS_URL, OAUTH2_REDIRECT_URL = "/docs", "/docs/oauth2-redirect"

router = APIRouter(include_in_schema=False)


def _asset(request: Request, name: str) -> str:
    return _rooted(request, f"{ASSETS_PREFIX}/{name}")


def _rooted(request: Request, path: str) -> str:
    """`path` behind the proxy prefix the hub is served under, if any."""
    return f"{request.scope.get('root_path', '')}{path}"


@router.get(DOCS_URL)
def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=_rooted(request, request.app.openapi_url),
        title=f"{request.app.title} API",
        swagger_js_url=_asset(request, "swagger-ui-bundle.js"),
        swagger_css_url=_asset(request, "swagger-ui.css"),
        swagger_favicon_url=_asset(request, "favicon.png"),
        oauth2_redirect_url=OAUTH2_REDIRECT_URL,
        swagger_ui_parameters={"validatorUrl": None})


@router.get(OAUTH2_REDIRECT_URL)
def swagger_ui_oauth2_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


def include_docs(app: FastAPI) -> None:
    """Serve /docs and its files (the app is made with docs_url=redoc_url=None)."""
    app.include_router(router)
    app.mount(ASSETS_PREFIX, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
