"""The hub's FastAPI application: routers, metrics, and the one place errors become JSON.

Every error answer is `{"error": {"code", "message"[, "hint"]}}`: fnhub errors with their
own status, request validation problems as 400 naming the field, unknown routes and methods
as 404/405, a failing blob store (S3 unreachable or refusing, a full or broken disk) as a 503
`storage_unavailable` naming the failure, and anything unexpected as a 500 without internals
(the traceback is logged).
Under `/v2/` (the OCI registry) the same errors take the OCI body instead,
`{"errors": [{"code", "message", "detail"}]}` with the spec's codes.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from boto3.exceptions import S3TransferFailedError, S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from fnhub.core import __version__
from fnhub.core.errors import FnhubError, InvalidInput
from fnhub.hub.api import functions, index, keys, namespaces, oidc, site, tokens
from fnhub.hub.context import Hub
from fnhub.hub.logs import RequestContextMiddleware
from fnhub.hub.metrics import Metrics, MetricsMiddleware, route_of
from fnhub.hub.middleware import RateLimitMiddleware
from fnhub.hub.oci import errors as oci_errors
from fnhub.hub.oci import router as oci_router
from fnhub.hub.services import auth
from fnhub.hub.services import index as indexes
from fnhub.hub.settings import ServerSettings

logger = logging.getLogger("fnhub.hub")

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
# What a failing blob store raises ("missing" answers are NotFound already); an OSError counts
# only with an errno of a failing disk, anything else stays an unexpected 500.
_STORAGE_ERRORS = (BotoCoreError, ClientError, S3UploadFailedError, S3TransferFailedError,
                   OSError)
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS})


def _error(status: int, code: str, message: str, hint: str | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if hint:
        body["hint"] = hint
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _where(loc: tuple[Any, ...]) -> str:
    """`query parameter 'limit'`, `body field 'spec.inputs[0]'`, `request body`."""
    source, path = (loc[0], loc[1:]) if loc else ("request", ())
    dotted = ""
    for part in path:
        dotted += f"[{part}]" if isinstance(part, int) else (f".{part}" if dotted else str(part))
    if source == "body":
        return f"body field {dotted!r}" if dotted else "request body"
    return f"{source} parameter {dotted!r}" if dotted else str(source)


def validation_message(exc: RequestValidationError) -> str:
    problems = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "malformed")
            problems.append(f"request body is not valid JSON: {reason}")
            continue
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{_where(tuple(error.get('loc', ())))}: {message}")
    return "; ".join(problems) or "invalid request"


def storage_problem(exc: BaseException | None) -> str | None:
    """A short reason when `exc` is the blob store failing (no endpoint, bucket key or path:
    those go to the log), None when it is something else."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"S3 answered {error.get('Code', 'an error')}: {error.get('Message', '')}"
    if isinstance(exc, BotoCoreError):
        return f"S3 request failed ({type(exc).__name__})"
    if isinstance(exc, (S3UploadFailedError, S3TransferFailedError)):
        return storage_problem(exc.__context__) or "S3 transfer failed"
    if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
        return f"disk error: {exc.strerror}"
    return None


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FnhubError)
    async def fnhub_error(request: Request, exc: FnhubError) -> Response:
        if exc.status >= 500:
            logger.error("%s %s failed: %s", request.method, request.url.path, exc.message)
        if oci_errors.is_registry_path(request.url.path):
            return oci_errors.error_response(request, exc)
        return JSONResponse(exc.to_payload(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        return await fnhub_error(request, InvalidInput(validation_message(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        if oci_errors.is_registry_path(request.url.path):
            return oci_errors.http_error_response(request, exc.status_code, message)
        code = _HTTP_CODES.get(exc.status_code, "invalid_input" if exc.status_code < 500
                               else "internal_error")
        hint = "the API is described at /docs" if exc.status_code in (404, 405) else None
        return _error(exc.status_code, code, message, hint, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("%s %s failed unexpectedly", request.method, request.url.path)
        message = "internal server error; the hub logged the details"
        if oci_errors.is_registry_path(request.url.path):
            return oci_errors.http_error_response(request, 500, message)
        return _error(500, "internal_error", message)

    async def storage_failed(request: Request, exc: Exception) -> Response:
        """503 (registered per class, so the metrics middleware sees the 503 it sends)."""
        problem = storage_problem(exc)
        if problem is None:
            return await unexpected(request, exc)
        request.app.state.metrics.storage_errors.labels(request.method,
                                                        route_of(request.scope)).inc()
        logger.error("%s %s: blob storage failed: %s", request.method, request.url.path, exc)
        message = f"the hub's blob storage is unavailable: {problem}"
        if oci_errors.is_registry_path(request.url.path):
            return oci_errors.http_error_response(request, 503, message)
        return _error(503, "storage_unavailable", message,
                      "retry later; the hub's operator finds the details in its log")

    for error_class in _STORAGE_ERRORS:
        app.add_exception_handler(error_class, storage_failed)


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
    site.include_catalog(app)
    _install_error_handlers(app)
    return app
