"""Errors as the catalog's pages show them: an HTML page with the right status, and for a
page that does not exist, the pages the visitor most likely meant."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from fnhub.core.errors import FnhubError, NotFound

_TITLES = {400: "Bad request", 401: "Sign-in needed", 403: "Forbidden", 404: "Not found"}


@dataclass(frozen=True)
class Suggestion:
    label: str
    url: str


class PageNotFound(NotFound):
    """A page that does not exist, with the pages the visitor most likely meant."""

    def __init__(self, message: str, suggestions: list[Suggestion]) -> None:
        first = next((s.label for s in suggestions if s.url.startswith("/") and "?" not in s.url),
                     None)
        super().__init__(message, hint=f"did you mean {first}?" if first else None)
        self.suggestions = suggestions


def wants_page(request: Request) -> bool:
    """A browser asking for one of the catalog's pages (whose routes set `html_errors`)."""
    route = request.scope.get("route")
    return bool(getattr(route, "html_errors", False)) \
        and "text/html" in request.headers.get("accept", "")


def error_page(error: FnhubError) -> Response:
    """The HTML error page (only for a page route, so the catalog's templates are loaded)."""
    from fnhub.hub.web.render import render

    suggestions = error.suggestions if isinstance(error, PageNotFound) else []
    return render("error.html", {
        "title": _TITLES.get(error.status, "Error"), "message": error.message,
        "hint": error.hint, "suggestions": suggestions,
    }, status=error.status)
