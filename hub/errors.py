"""The one place an exception becomes an HTTP answer: `render_error(request, exc)`.

Whatever went wrong is first turned into an error of the tree in `fnhub.core.errors` (request
validation problems become InvalidInput naming the field, unknown routes and methods
NoSuchEndpoint and MethodNotAllowed, anything unexpected InternalError without internals:
the traceback goes to the log). Then one body is chosen by where the request went:

- under `/v2/` (the OCI registry): `{"errors": [{"code", "message", "detail"}]}` with the
  spec's codes (`fnhub.hub.oci.errors`);
- a catalog page asked for by a browser (`Accept: text/html`): the HTML error page;
- everywhere else: `{"error": {"code", "message"[, "hint"]}}` (DESIGN §6).

Every exception handler of the app and the rate-limit middleware answer through it. A blob
store that fails raises StorageUnavailable (503), which is also logged with its cause and
counted in `fnhub_storage_errors_total`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from fnhub.core.errors import (
    Conflict,
    FnhubError,
    Forbidden,
    InternalError,
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    StorageUnavailable,
    Unauthorized,
)
from fnhub.hub.metrics import route_of
from fnhub.hub.oci import errors as oci_errors
from fnhub.hub.web.errors import error_page, wants_page

logger = logging.getLogger("fnhub.hub")
API_HINT = "the API is described at /docs"
UNEXPECTED = "internal server error; the hub logged the details"


class NoSuchEndpoint(NotFound):
    """No route matches the request's path (the OCI registry answers it as UNSUPPORTED)."""


_BY_HTTP_STATUS: dict[int, type[FnhubError]] = {
    400: InvalidInput, 401: Unauthorized, 403: Forbidden, 404: NoSuchEndpoint,
    405: MethodNotAllowed, 409: Conflict, 413: PayloadTooLarge, 429: RateLimited,
}


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
    """Every problem of a request FastAPI refused, each naming its field, in one line."""
    problems = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "malformed")
            problems.append(f"request body is not valid JSON: {reason}")
            continue
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{_where(tuple(error.get('loc', ())))}: {message}")
    return "; ".join(problems) or "invalid request"


def as_fnhub_error(request: Request, exc: BaseException) -> FnhubError:
    """The error of the tree that `exc` means for the caller."""
    if isinstance(exc, FnhubError):
        return exc
    if isinstance(exc, RequestValidationError):
        return InvalidInput(validation_message(exc))
    if isinstance(exc, StarletteHTTPException):
        status = exc.status_code
        cls = _BY_HTTP_STATUS.get(status, InvalidInput if status < 500 else InternalError)
        hint = None if oci_errors.is_registry_path(request.url.path) else API_HINT
        if cls is NoSuchEndpoint:
            return cls(f"no such endpoint: {request.method} {request.url.path}", hint=hint)
        if cls is MethodNotAllowed:
            return cls(f"method {request.method} is not allowed on {request.url.path}",
                       hint=hint)
        return cls(str(exc.detail))
    return InternalError(UNEXPECTED)


def _headers(error: FnhubError, exc: BaseException,
             extra: dict[str, str] | None) -> dict[str, str]:
    headers = dict(exc.headers or {}) if isinstance(exc, StarletteHTTPException) else {}
    if isinstance(error, RateLimited) and error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return headers | (extra or {})


def _log(request: Request, error: FnhubError, exc: BaseException) -> None:
    where = f"{request.method} {request.url.path}"
    if isinstance(error, StorageUnavailable):
        logger.error("%s: blob storage failed: %s", where, exc.__cause__ or exc)
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None:
            metrics.storage_errors.labels(request.method, route_of(request.scope)).inc()
    elif error is not exc and isinstance(error, InternalError):
        logger.error("%s failed unexpectedly", where, exc_info=exc)
    elif error.status >= 500:
        logger.error("%s failed: %s", where, error.message)


def render_error(request: Request, exc: BaseException,
                 headers: dict[str, str] | None = None) -> Response:
    """The answer to a request that failed with `exc`: OCI body, HTML page or JSON body."""
    error = as_fnhub_error(request, exc)
    _log(request, error, exc)
    extra = _headers(error, exc, headers)
    if oci_errors.is_registry_path(request.url.path):
        unknown_route = "UNSUPPORTED" if isinstance(error, NoSuchEndpoint) else None
        return oci_errors.error_response(request, error, extra, code=unknown_route)
    if wants_page(request):
        page = error_page(error)
        page.headers.update(extra)
        return page
    return JSONResponse(error.to_payload(), status_code=error.status, headers=extra or None)


def install_handlers(app: FastAPI) -> None:
    """Every exception reaching the app is answered by `render_error`. FnhubError (storage
    failures included) is handled inside the middleware stack, so metrics see its status;
    `Exception` is Starlette's last resort, outside it."""

    async def handle(request: Request, exc: Exception) -> Response:
        return render_error(request, exc)

    for exc_class in (FnhubError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(exc_class, handle)
