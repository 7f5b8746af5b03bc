"""The one exception hierarchy of fnhub, shared by the SDK, the CLI and the hub.

    FnhubError                      code            HTTP
    ├── InvalidInput                invalid_input   400
    │   ├── ManifestError           invalid_manifest 422
    │   ├── InvalidURI              invalid_uri     400
    │   ├── InvalidVersion          invalid_version 400
    │   ├── UnsafePackage           unsafe_package  400
    │   └── PayloadTooLarge         payload_too_large 413
    ├── NotFound                    not_found       404
    │   └── NoMatchingVersion       no_matching_version 404
    ├── Conflict                    conflict        409
    │   └── VersionExists           version_exists  409
    ├── Unauthorized                unauthorized    401
    ├── Forbidden                   forbidden       403
    ├── MethodNotAllowed            method_not_allowed 405
    ├── RateLimited                 rate_limited    429
    ├── VerificationError           verification_failed 400
    │   ├── DigestMismatch          digest_mismatch 400
    │   ├── SignatureInvalid        signature_invalid 400
    │   ├── UntrustedKey            untrusted_key   400
    │   ├── HubAnswerMismatch       hub_answer_mismatch 400
    │   └── StaleIndex              stale_index     400
    ├── HubUnavailable              hub_unavailable 503
    │   └── StorageUnavailable      storage_unavailable 503
    ├── OfflineError                offline         503
    ├── InternalError               internal_error  500
    └── RunError                    run_failed      500
        └── MissingRequirements     missing_requirements 400

Each class has a stable `code`; the hub turns errors into `{"error": {"code", "message"}}`
with `status`, and the client turns the code back into the same class (`from_payload`).
Every code the hub puts on the wire is one of these classes (a subclass may share its
parent's code, as the hub's own refinements do).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

# what every one-line error of the two programs ends with (fnhub.core.console.failure)
DEBUG_HINT = "FNHUB_DEBUG=1 shows the traceback"

if TYPE_CHECKING:
    from pydantic import ValidationError


class FnhubError(Exception):
    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.hint:
            body["hint"] = self.hint
        return {"error": body}

    @staticmethod
    def from_payload(payload: Any, status: int) -> FnhubError:
        """Rebuild the typed error a hub sent; unknown codes fall back by HTTP status."""
        error = payload.get("error") if isinstance(payload, dict) else None
        if not isinstance(error, dict):
            return _BY_STATUS.get(status, FnhubError)(f"hub answered HTTP {status}")
        cls = _BY_CODE.get(str(error.get("code")), _BY_STATUS.get(status, FnhubError))
        return cls(str(error.get("message", "")), hint=error.get("hint"))


class InvalidInput(FnhubError):
    code = "invalid_input"
    status = 400


class ManifestError(InvalidInput):
    code = "invalid_manifest"
    status = 422


class InvalidURI(InvalidInput):
    code = "invalid_uri"


class InvalidVersion(InvalidInput):
    code = "invalid_version"


class UnsafePackage(InvalidInput):
    code = "unsafe_package"


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"
    status = 413


class NotFound(FnhubError):
    code = "not_found"
    status = 404


class NoMatchingVersion(NotFound):
    code = "no_matching_version"


class Conflict(FnhubError):
    code = "conflict"
    status = 409


class VersionExists(Conflict):
    code = "version_exists"


class Unauthorized(FnhubError):
    code = "unauthorized"
    status = 401


class Forbidden(FnhubError):
    code = "forbidden"
    status = 403


class MethodNotAllowed(FnhubError):
    """An endpoint that exists, asked with a method it does not answer."""

    code = "method_not_allowed"
    status = 405


class RateLimited(FnhubError):
    """Too many requests of one kind from one token or address; the hub says when to retry."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, hint: str | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class VerificationError(FnhubError):
    code = "verification_failed"
    status = 400


class DigestMismatch(VerificationError):
    code = "digest_mismatch"


class SignatureInvalid(VerificationError):
    code = "signature_invalid"


class UntrustedKey(VerificationError):
    code = "untrusted_key"


class HubAnswerMismatch(VerificationError):
    """A hub (or whatever answers in its name) said something other than what was asked for:
    another function, a version outside the spec, a malformed name, version or digest."""

    code = "hub_answer_mismatch"


class StaleIndex(VerificationError):
    """A signed index older than one already seen (rollback) or past its expiry (freeze)."""

    code = "stale_index"


class HubUnavailable(FnhubError):
    code = "hub_unavailable"
    status = 503


class StorageUnavailable(HubUnavailable):
    """The hub is up but its blob store fails (S3 unreachable or refusing, a full or broken
    disk): a hub-side outage, so a client treats it as the hub being unavailable."""

    code = "storage_unavailable"


class OfflineError(FnhubError):
    code = "offline"
    status = 503


class InternalError(FnhubError):
    """Something failed on the hub that is not the caller's doing (details only in its log)."""

    code = "internal_error"
    status = 500


class RunError(FnhubError):
    code = "run_failed"
    status = 500


class MissingRequirements(RunError):
    code = "missing_requirements"
    status = 400


def _all_subclasses(cls: type[FnhubError]) -> list[type[FnhubError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_all_subclasses(sub))
    return out


_BY_CODE: dict[str, type[FnhubError]] = {}
for _class in _all_subclasses(FnhubError):  # a parent comes first and keeps its code
    _BY_CODE.setdefault(_class.code, _class)
_BY_STATUS: dict[int, type[FnhubError]] = {
    400: InvalidInput, 401: Unauthorized, 403: Forbidden, 404: NotFound, 405: MethodNotAllowed,
    409: Conflict, 413: PayloadTooLarge, 422: InvalidInput, 429: RateLimited,
    500: InternalError, 503: HubUnavailable,
}


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """`spec.inputs[1].type: unknown type 'strng'`: one line per problem, field path first.

    Here rather than beside the manifest so that checking a signature or an index does not
    load the YAML parser."""
    lines = []
    for err in exc.errors():
        path = prefix
        for part in err["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            else:
                path += f".{part}" if path else str(part)
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "missing":
            message = "required field is missing"
        lines.append(f"{path or '(top)'}: {message}")
    return "; ".join(lines)
