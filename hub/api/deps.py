"""Dependencies shared by the route handlers: the hub context and who is calling."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from fnhub.core.errors import Unauthorized
from fnhub.hub.context import Hub
from fnhub.hub.metrics import Metrics
from fnhub.hub.services import auth
from fnhub.hub.services.auth import Caller

# The dependencies are `async def`: FastAPI runs a plain `def` one in a worker thread, and
# three thread hand-offs per request (hub, caller, access) cost a read request more than
# the work they do. Only checking a token reads the database, in a worker thread.

API_PREFIX = "/api/v1"
_bearer = HTTPBearer(auto_error=False, description="an fnhub API token (`fnhub_...`)")


async def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def metrics_of(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


async def get_metrics(request: Request) -> Metrics:
    return metrics_of(request)


HubDep = Annotated[Hub, Depends(get_hub)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


async def optional_caller(
    hub: HubDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller | None:
    """The token's caller; None without a token. A token that is present must be valid."""
    if credentials is None:
        return None
    return await run_in_threadpool(auth.authenticate, hub, credentials.credentials)


async def reader(hub: HubDep, caller: Annotated[Caller | None, Depends(optional_caller)]) -> None:
    """Reads are public, unless the hub is private: then any valid token may read."""
    if caller is None and hub.settings.private:
        raise Unauthorized("this hub is private: reading needs a token",
                           hint="send Authorization: Bearer <token> (`hub login`)")


async def require_caller(caller: Annotated[Caller | None, Depends(optional_caller)]) -> Caller:
    """Writes need a token."""
    if caller is None:
        raise Unauthorized("this request needs an API token",
                           hint="send Authorization: Bearer <token> (`hub login`)")
    return caller


CallerDep = Annotated[Caller, Depends(require_caller)]
ReadAccess = Depends(reader)


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether an `If-None-Match` header names `etag` (weak forms and `*` included)."""
    if not header:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags
