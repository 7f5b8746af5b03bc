"""Rate limiting at the edge: a pure ASGI middleware in front of the publish, login and
search endpoints and of every request with credentials (failed authentication, per client
address; see fnhub.hub.services.ratelimit), answering 429 with `Retry-After` (through
`fnhub.hub.errors.render_error`, like every other error)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fnhub.core.errors import RateLimited
from fnhub.hub.context import Hub
from fnhub.hub.errors import render_error
from fnhub.hub.services import ratelimit

logger = logging.getLogger(__name__)
T = TypeVar("T")


def _bearer(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


def _has_credentials(scope: Scope) -> bool:
    return any(key == b"authorization" and value.strip()
               for key, value in scope.get("headers", []))


async def _counted(what: str, count: Callable[[], T], *, in_memory: bool = False) -> T | None:
    """Run a counter; None (and a log line) when it fails. Counts kept in memory (SQLite's)
    are taken right here, as they do no I/O; the shared ones (PostgreSQL's) in a worker
    thread, so the event loop never waits on the database."""
    try:
        return count() if in_memory else await run_in_threadpool(count)
    except Exception:
        logger.exception("rate limit %s could not be counted; letting the request in", what)
        return None


def _too_many(scope: Scope, message: str, wait: int, limit: int) -> Response:
    """The 429, rendered like every other error (JSON, OCI body or page)."""
    error = RateLimited(message, hint=f"retry in {wait} s", retry_after=wait)
    return render_error(Request(scope), error, headers={"X-RateLimit-Limit": str(limit)})


class RateLimitMiddleware:
    """Counts each guarded request (and each failed authentication); over a limit, answers
    429 itself.

    A failure to count (the database is down, say) lets the request through: the limiter
    must not become the outage. It is logged.
    """

    def __init__(self, app: ASGIApp, hub: Hub) -> None:
        self.app = app
        self.hub = hub
        self.rules = ratelimit.rules(hub.settings)
        self.failures = ratelimit.AuthFailures.from_settings(hub.db, hub.settings)
        self.in_memory = hub.db.dialect == "sqlite"  # its counts live in memory (ratelimit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else None
        watched = self.failures is not None and _has_credentials(scope)
        if watched:
            refusal = await self._blocked(scope, address)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        refusal = await self._over_rule(scope, address)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if not watched:
            await self.app(scope, receive, send)
            return
        statuses: list[int] = []

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])
            await send(message)

        await self.app(scope, receive, watch)
        if statuses[:1] == [401]:
            assert self.failures is not None
            await _counted("failed authentications", partial(self.failures.failed, address),
                           in_memory=self.in_memory)

    async def _blocked(self, scope: Scope, address: str | None) -> Response | None:
        assert self.failures is not None
        wait = await _counted("failed authentications", partial(self.failures.blocked, address),
                              in_memory=self.in_memory)
        if wait is None:
            return None
        rule = self.failures.rule
        return _too_many(scope, f"too many failed authentications from this address: the limit "
                                f"is {rule.limit} per {rule.period} s", wait, rule.limit)

    async def _over_rule(self, scope: Scope, address: str | None) -> Response | None:
        name = ratelimit.rule_name(scope["method"], scope["path"]) if self.rules else None
        rule = self.rules.get(name) if name else None
        if rule is None:
            return None
        who = ratelimit.subject(rule, _bearer(scope), address)
        wait = await _counted(rule.name, partial(ratelimit.hit, self.hub.db, rule, who),
                              in_memory=self.in_memory)
        if wait is None:
            return None
        return _too_many(
            scope,
            f"too many {rule.name} requests: the limit is {rule.limit} per {rule.period} s",
            wait, rule.limit)
