"""Rate limiting at the edge: a pure ASGI middleware in front of the publish, login and
search endpoints (see fnhub.hub.services.ratelimit), answering 429 with `Retry-After`
(through `fnhub.hub.errors.render_error`, like every other error)."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from fnhub.core.errors import RateLimited
from fnhub.hub.context import Hub
from fnhub.hub.errors import render_error
from fnhub.hub.services import ratelimit

logger = logging.getLogger(__name__)


def _bearer(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


class RateLimitMiddleware:
    """Counts each guarded request in the database; over the limit, answers 429 itself.

    A failure to count (the database is down, say) lets the request through: the limiter
    must not become the outage. It is logged.
    """

    def __init__(self, app: ASGIApp, hub: Hub) -> None:
        self.app = app
        self.hub = hub
        self.rules = ratelimit.rules(hub.settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = (ratelimit.rule_name(scope["method"], scope["path"])
                if scope["type"] == "http" and self.rules else None)
        rule = self.rules.get(name) if name else None
        if rule is None:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        who = ratelimit.subject(rule, _bearer(scope), client[0] if client else None)
        try:
            wait = await run_in_threadpool(ratelimit.hit, self.hub.db, rule, who)
        except Exception:
            logger.exception("rate limit %s could not be counted; letting the request in",
                             rule.name)
            wait = None
        if wait is None:
            await self.app(scope, receive, send)
            return
        error = RateLimited(
            f"too many {rule.name} requests: the limit is {rule.limit} per {rule.period} s",
            hint=f"retry in {wait} s", retry_after=wait)
        response = render_error(Request(scope), error,
                                headers={"X-RateLimit-Limit": str(rule.limit)})
        await response(scope, receive, send)
