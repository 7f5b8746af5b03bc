"""The registry's errors, and the error body clients of `/v2/` expect.

Under `/v2/` an error is `{"errors": [{"code", "message", "detail"}]}` with the spec's codes
(BLOB_UNKNOWN, DIGEST_INVALID, NAME_INVALID, ...). The classes below are fnhub errors (each
subclasses the fitting class of `fnhub.core.errors`, so status and meaning stay the same) that
also carry their spec code and, where the protocol needs them, response headers. Any other
fnhub error raised on the way (say, Forbidden from the namespace rules) gets the spec code
of its class (an unknown endpoint or method is UNSUPPORTED, a failing store or anything
unexpected UNKNOWN). A 401 always carries the Bearer challenge of the token flow.
`fnhub.hub.errors.render_error` answers with `error_response` under `/v2/`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from fnhub.core.errors import (
    Conflict,
    DigestMismatch,
    FnhubError,
    Forbidden,
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
)

PREFIX = "/v2"
TOKEN_PATH = PREFIX + "/token"
API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}


class RegistryError(FnhubError):
    """Mixed into the registry's errors: the spec's code, and headers the answer must carry."""

    oci_code: ClassVar[str] = "UNKNOWN"

    def __init__(self, message: str, *, hint: str | None = None, detail: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message, hint=hint)
        self.detail = detail
        self.headers = headers or {}


class BlobUnknown(RegistryError, NotFound):
    oci_code = "BLOB_UNKNOWN"


class BlobUploadUnknown(RegistryError, NotFound):
    oci_code = "BLOB_UPLOAD_UNKNOWN"


class BlobUploadInvalid(RegistryError, InvalidInput):
    oci_code = "BLOB_UPLOAD_INVALID"


class RangeInvalid(BlobUploadInvalid):
    """A chunk that does not start where the upload stands."""

    status = 416


class RangeNotSatisfiable(RegistryError, InvalidInput):
    """A blob read whose Range starts past the blob's end."""

    oci_code = "RANGE_NOT_SATISFIABLE"
    status = 416


class DigestInvalid(RegistryError, DigestMismatch):
    oci_code = "DIGEST_INVALID"


class ManifestBlobUnknown(RegistryError, InvalidInput):
    oci_code = "MANIFEST_BLOB_UNKNOWN"


class ManifestInvalid(RegistryError, InvalidInput):
    oci_code = "MANIFEST_INVALID"


class ManifestUnknown(RegistryError, NotFound):
    oci_code = "MANIFEST_UNKNOWN"


class NameInvalid(RegistryError, InvalidInput):
    oci_code = "NAME_INVALID"


class NameUnknown(RegistryError, NotFound):
    oci_code = "NAME_UNKNOWN"


class TagInvalid(RegistryError, InvalidInput):
    oci_code = "TAG_INVALID"


class TooLarge(RegistryError, PayloadTooLarge):
    oci_code = "SIZE_INVALID"


class PaginationInvalid(RegistryError, InvalidInput):
    oci_code = "PAGINATION_NUMBER_INVALID"


class Denied(RegistryError, Forbidden):
    oci_code = "DENIED"


class NeedsToken(RegistryError, Unauthorized):
    """401 with a challenge naming the scope to ask the token endpoint for."""

    oci_code = "UNAUTHORIZED"

    def __init__(self, message: str, *, scope: str | None = None,
                 insufficient: bool = False, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.scope = scope
        self.insufficient = insufficient


_BY_CLASS: tuple[tuple[type[FnhubError], str], ...] = (
    (MethodNotAllowed, "UNSUPPORTED"),
    (RateLimited, "TOOMANYREQUESTS"),
    (Unauthorized, "UNAUTHORIZED"),
    (Forbidden, "DENIED"),
    (Conflict, "DENIED"),
    (DigestMismatch, "DIGEST_INVALID"),
    (PayloadTooLarge, "SIZE_INVALID"),
    (NotFound, "NAME_UNKNOWN"),
    (InvalidInput, "UNSUPPORTED"),
)


def is_registry_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def base_url(request: Request) -> str:
    """The hub's external URL: FNHUB_SERVER_PUBLIC_URL, else what the client called."""
    public: str | None = request.app.state.hub.settings.public_url
    return (public or str(request.base_url)).rstrip("/")


def service_name(request: Request) -> str:
    """The `service` of challenges and tokens: the hub's host as clients reach it."""
    public: str | None = request.app.state.hub.settings.public_url
    if public:
        return public.split("://", 1)[-1].split("/", 1)[0]
    return request.headers.get("host") or request.url.netloc


def challenge(request: Request, scope: str | None = None, insufficient: bool = False) -> str:
    """`Bearer realm=...,service=...[,scope=...]`: where and for what to get a token."""
    parts = [f'realm="{base_url(request)}{TOKEN_PATH}"', f'service="{service_name(request)}"']
    if scope:
        parts.append(f'scope="{scope}"')
    if insufficient:
        parts.append('error="insufficient_scope"')
    return "Bearer " + ",".join(parts)


def error_response(request: Request, exc: FnhubError, headers: dict[str, str] | None = None,
                   code: str | None = None) -> Response:
    """The OCI error answer for an fnhub error raised while serving `/v2/` (`code` when the
    caller knows the spec's code better than the error's class says)."""
    answer = {**API_VERSION, **(headers or {})}
    detail: Any = None
    if isinstance(exc, RegistryError):
        code = exc.oci_code
        answer.update(exc.headers)
        detail = exc.detail
    else:
        code = code or next((c for cls, c in _BY_CLASS if isinstance(exc, cls)), "UNKNOWN")
    if exc.hint and detail is None:
        detail = {"hint": exc.hint}
    if exc.status == 401:
        scope = exc.scope if isinstance(exc, NeedsToken) else None
        insufficient = isinstance(exc, NeedsToken) and exc.insufficient
        answer["WWW-Authenticate"] = challenge(request, scope, insufficient)
    return JSONResponse({"errors": [{"code": code, "message": exc.message, "detail": detail}]},
                        status_code=exc.status, headers=answer)
