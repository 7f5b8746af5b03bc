"""Prometheus metrics: requests by route, latency, publishes, downloads, payload bytes and
storage failures.

Each app has its own registry (several apps may live in one process, as in the tests).
Requests are labelled by route template (`/api/v1/functions/{ns}/{name}`), never by the
raw path, so the number of series stays bounded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fnhub_http_requests", "HTTP requests handled",
            ["method", "route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "fnhub_http_request_duration_seconds", "Time to answer an HTTP request",
            ["method", "route"], registry=self.registry,
        )
        self.publishes = Counter(
            "fnhub_publishes", "Publish attempts by outcome (ok or an error code)",
            ["outcome"], registry=self.registry,
        )
        self.downloads = Counter(
            "fnhub_package_downloads", "Package downloads started", registry=self.registry,
        )
        self.payload_bytes = Counter(
            "fnhub_payload_bytes",
            "Package and blob bytes the hub itself received (publishes, blob uploads) or sent "
            "(downloads it streamed; not those redirected to presigned storage URLs)",
            ["direction", "kind"], registry=self.registry,
        )
        self.storage_errors = Counter(
            "fnhub_storage_errors", "Requests that failed because the blob store did",
            ["method", "route"], registry=self.registry,
        )

    def received(self, kind: str, size: int) -> None:
        """Count `size` bytes of a `package` or `blob` that arrived whole."""
        self.payload_bytes.labels("received", kind).inc(size)

    def sent(self, kind: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """Pass `chunks` through, counting each as it goes out (so cut-off downloads count
        what was actually sent)."""
        counter = self.payload_bytes.labels("sent", kind)
        for chunk in chunks:
            counter.inc(len(chunk))
            yield chunk

    def render(self) -> bytes:
        return generate_latest(self.registry)


def route_of(scope: Scope) -> str:
    """The matched route's template, the label requests are counted by."""
    return getattr(scope.get("route"), "path", None) or "unmatched"


class MetricsMiddleware:
    """Counts and times every HTTP request (pure ASGI, so streaming responses pass through)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = route_of(scope)
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - start)
