"""`/api/v1/functions`: search, cards, versions, resolution, packages, publishing, yank, tags."""

from __future__ import annotations

import hashlib
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from fnhub.core.api_models import (
    Attestations,
    FunctionDetail,
    Resolution,
    SearchResults,
    SortOrder,
    TagRequest,
    VersionDetail,
    YankRequest,
)
from fnhub.core.errors import FnhubError
from fnhub.hub.api.deps import (
    API_PREFIX,
    CallerDep,
    HubDep,
    MetricsDep,
    ReadAccess,
    etag_matches,
)
from fnhub.hub.api.uploads import read_publish_form
from fnhub.hub.services import functions, publish, search

router = APIRouter(prefix=API_PREFIX + "/functions", tags=["functions"])
BASE = "/{ns}/{name}"
VERSION = BASE + "/versions/{version}"
IMMUTABLE = "max-age=31536000, immutable"
_REVALIDATED = {304: {"description": "the client's copy (If-None-Match) is current"}}


def _revalidated(request: Request, hub: HubDep, answer: BaseModel) -> Response:
    """`answer` as JSON with an ETag (a hash of the answer) and `no-cache`, so clients and
    proxies keep it and revalidate cheaply: 304 when `If-None-Match` names it."""
    body = answer.model_dump_json(by_alias=True).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag,
               "Cache-Control": ("private, " if hub.settings.private else "public, ") + "no-cache"}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)

_PUBLISH_BODY = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "required": ["manifest", "envelope", "package"],
            "properties": {
                "manifest": {"type": "string", "description": "the function.yaml text"},
                "envelope": {"type": "string", "description": "DSSE envelope (JSON text)"},
                "package": {"type": "string", "format": "binary",
                            "description": "the .tar.gz package"},
            },
        }}},
    }
}


@router.get("", dependencies=[ReadAccess])
def search_functions(
    hub: HubDep,
    q: Annotated[str | None, Query(max_length=search.MAX_QUERY)] = None,
    category: Annotated[str | None, Query(max_length=100)] = None,
    kind: Literal["job", "serving", "feature-set", "function"] | None = None,
    namespace: Annotated[str | None, Query(max_length=64)] = None,
    sort: SortOrder = "relevance",
    limit: Annotated[int, Query(ge=1, le=search.MAX_LIMIT)] = 20,
    offset: Annotated[int, Query(ge=0, le=search.MAX_OFFSET)] = 0,
) -> SearchResults:
    return search.search(hub, q=q, category=category, kind=kind, namespace=namespace,
                         sort=sort, limit=limit, offset=offset)


@router.get(BASE, dependencies=[ReadAccess])
def get_function(ns: str, name: str, hub: HubDep) -> FunctionDetail:
    return functions.get_function(hub, ns, name)


@router.get(BASE + "/resolve", dependencies=[ReadAccess], response_model=Resolution,
            responses=_REVALIDATED)
def resolve(ns: str, name: str, request: Request, hub: HubDep,
            version: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    return _revalidated(request, hub, functions.resolve_version(hub, ns, name, version))


@router.get(VERSION, dependencies=[ReadAccess], response_model=VersionDetail,
            responses=_REVALIDATED)
def get_version(ns: str, name: str, version: str, request: Request, hub: HubDep) -> Response:
    return _revalidated(request, hub, functions.get_version(hub, ns, name, version))


@router.get(VERSION + "/attestations", dependencies=[ReadAccess])
def get_attestations(ns: str, name: str, version: str, hub: HubDep) -> Attestations:
    return Attestations(envelopes=functions.attestations(hub, ns, name, version))


@router.get(
    VERSION + "/package", dependencies=[ReadAccess], response_class=StreamingResponse,
    responses={200: {"content": {"application/gzip": {}}, "description": "the package"},
               304: {"description": "the client's copy (If-None-Match) is current"},
               307: {"description": "fetch the package from this presigned storage URL"}},
)
def download_package(ns: str, name: str, version: str, request: Request, hub: HubDep,
                     metrics: MetricsDep) -> Response:
    """The archive, streamed (or a 307 to a presigned storage URL, where configured); its
    digest is the ETag and it never changes."""
    info = functions.package_info(hub, ns, name, version)
    etag = f'"{info.digest}"'
    cache = ("private, " if hub.settings.private else "public, ") + IMMUTABLE
    headers = {"ETag": etag, "Cache-Control": cache}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    package = functions.download(hub, ns, name, version)
    metrics.downloads.inc()
    if package.redirect:
        return RedirectResponse(package.redirect, status_code=307,
                                headers={"ETag": etag, "Cache-Control": "no-store"})
    headers |= {"Content-Length": str(package.size),
                "Content-Disposition": f'attachment; filename="{package.filename}"'}
    return StreamingResponse(metrics.sent("package", package.chunks),
                             media_type="application/gzip", headers=headers)


@router.post(BASE + "/versions", status_code=201, openapi_extra=_PUBLISH_BODY)
async def publish_version(ns: str, name: str, request: Request, hub: HubDep,
                          caller: CallerDep, metrics: MetricsDep) -> VersionDetail:
    """Publish a version (multipart: manifest, envelope, package); 409 if it exists."""
    try:
        await run_in_threadpool(publish.authorize, hub, caller, ns, name)
        form = await read_publish_form(
            request, hub.store, hub.settings.max_package_size,
            on_manifest=partial(publish.check_request, ns, name),
        )
        metrics.received("package", form.package.size)
        detail = await run_in_threadpool(partial(
            publish.publish_staged, hub, caller, ns, name, manifest_text=form.manifest,
            staged=form.package, envelope_text=form.envelope,
        ))
    except FnhubError as exc:
        metrics.publishes.labels(exc.code).inc()
        raise
    metrics.publishes.labels("ok").inc()
    return detail


@router.post(VERSION + "/yank")
def yank(ns: str, name: str, version: str, body: YankRequest, hub: HubDep,
         caller: CallerDep) -> VersionDetail:
    return functions.yank(hub, caller, ns, name, version, body.reason)


@router.post(VERSION + "/unyank")
def unyank(ns: str, name: str, version: str, hub: HubDep, caller: CallerDep) -> VersionDetail:
    return functions.unyank(hub, caller, ns, name, version)


@router.delete(VERSION, status_code=204)
def delete_version(ns: str, name: str, version: str, hub: HubDep, caller: CallerDep) -> None:
    """Delete a version; its number stays reserved forever."""
    functions.delete_version(hub, caller, ns, name, version)


@router.put(BASE + "/tags/{tag}")
def set_tag(ns: str, name: str, tag: str, body: TagRequest, hub: HubDep,
            caller: CallerDep) -> FunctionDetail:
    return functions.set_tag(hub, caller, ns, name, tag, body.version)
