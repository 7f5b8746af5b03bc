"""The HTTP feature server (`hub features serve`, design §10): online lookups over HTTP.

`POST /features/v1/online` answers exactly what `FeatureStore.get_online_features` returns
(timestamps as RFC3339), with at most one round trip to the online store per request (the
requests a worker has in hand at once share one). Each worker
process builds its own store from the environment (FNHUB_FEATURES_OFFLINE/ONLINE, config.toml),
so `uvicorn --workers N` needs nothing shared but the stores themselves. The lookup runs on the
event loop: it is short, and one store connection per worker is never used by two threads.

The app is a plain ASGI callable, not a FastAPI app: it has one hot route, and a lookup of one
entity costs less than FastAPI's routing, dependency and middleware layers would add to it
(a profile of `wrk` against the FastAPI version spent most of each request there). Bodies are
parsed and answers written with orjson.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fnhub.core.errors import (
    FnhubError,
    InternalError,
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
)

if TYPE_CHECKING:
    from fnhub.features.online import Lookup
    from fnhub.features.store import FeatureStore, OnlineQuery

MAX_ENTITIES = 10_000
MAX_FEATURES = 1_000
MAX_ENTITY_COLUMNS = 64
# Room for MAX_ENTITIES keys of a few long columns; parsed, a body takes ~40x its size in
# memory, so this bounds what one request can cost a worker.
MAX_BODY = 4 * 1024 * 1024
ONLINE, HEALTHZ, METRICS = "/features/v1/online", "/healthz", "/metrics"
ROUTES = {ONLINE: "POST", HEALTHZ: "GET", METRICS: "GET"}
SERVER_EXTRA = 'the feature server needs uvicorn and prometheus-client: pip install "fnhub[server]"'
log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class OnlineRequest(BaseModel):
    """The body of `POST /features/v1/online`: entity columns of equal length."""

    model_config = ConfigDict(extra="forbid")

    features: list[str] = Field(min_length=1, max_length=MAX_FEATURES)
    # scalars only: a nested list or object is refused before any row is built
    entities: dict[str, list[int | float | str | bool | None]] = Field(
        min_length=1, max_length=MAX_ENTITY_COLUMNS)


def json_value(value: Any) -> Any:
    """A value as JSON: timestamps as RFC3339 (UTC, with its offset)."""
    return value.isoformat() if isinstance(value, datetime) else value


def entity_rows(entities: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Entity columns → rows, refusing ragged or oversized columns."""
    lengths = {name: len(values) for name, values in entities.items()}
    if len(set(lengths.values())) != 1:
        raise InvalidInput(f"every entity column needs the same number of values, got {lengths}")
    count = next(iter(lengths.values()))
    if count > MAX_ENTITIES:
        raise PayloadTooLarge(f"{count} entities in one request; at most {MAX_ENTITIES}")
    names = list(entities)
    return [dict(zip(names, row, strict=True)) for row in zip(*entities.values(), strict=True)]


def parse_request(body: bytes) -> OnlineRequest:
    """A request body as an OnlineRequest, or InvalidInput naming the problem."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidInput("the request body is not JSON") from None
    try:
        return OnlineRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidInput(f"{where}: {first['msg']}") from None


def online_query(store: FeatureStore, body: bytes) -> OnlineQuery:
    """One `POST /features/v1/online` body, checked and keyed, or the error naming why."""
    request = parse_request(body)
    return store.online_query(request.features, entity_rows(request.entities))


class FeatureServer:
    """The ASGI app: the three routes, Prometheus metrics, errors as `{"error": ...}` JSON, and
    the store closed at lifespan shutdown."""

    def __init__(self, store: FeatureStore) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.store = store
        self.registry = CollectorRegistry()
        self.requests = Counter("fnhub_features_requests", "Feature server requests",
                                ["path", "status"], registry=self.registry)
        self.latency = Histogram("fnhub_features_request_seconds", "Feature server latency",
                                 ["path", "status"], registry=self.registry,
                                 buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5,
                                          1, 5))
        # (path, status) -> the two labelled series: `.labels()` costs more than a lookup
        self._series: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._pending: list[tuple[list[tuple[str, list[str]]], asyncio.Future[Any]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.store.warm_up()
                except Exception as exc:  # answered per request then, like any store outage
                    log.warning("feature server: warming up the stores failed: %s", exc)
                # what was loaded at start-up lives as long as the worker: out of the
                # collector's sight, so full collections stay short (they were tail latency)
                gc.collect()
                gc.freeze()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.store.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        path = scope["path"]
        try:
            status, content_type, body = await self._answer(path, scope["method"], receive)
        except FnhubError as exc:
            status, content_type, body = exc.status, b"application/json", orjson.dumps(
                exc.to_payload())
        except Exception:
            log.exception("feature server: %s %s failed", scope["method"], path)
            error = InternalError("the feature server failed; details are in its log")
            status, content_type, body = 500, b"application/json", orjson.dumps(
                error.to_payload())
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        series = self._series.get((path, status))
        if series is None:
            labels = (path if path in ROUTES else "unmatched", str(status))
            series = (self.requests.labels(*labels), self.latency.labels(*labels))
            if path in ROUTES:
                self._series[(path, status)] = series
        series[0].inc()
        series[1].observe(time.perf_counter() - started)

    async def _answer(self, path: str, method: str, receive: Receive
                      ) -> tuple[int, bytes, bytes]:
        if path not in ROUTES:
            raise NotFound(f"no route {path}; the feature server answers "
                           f"POST {ONLINE}, GET {HEALTHZ} and GET {METRICS}")
        if method != ROUTES[path] and not (method == "HEAD" and ROUTES[path] == "GET"):
            raise MethodNotAllowed(f"{path} answers {ROUTES[path]}, not {method}")
        if path == ONLINE:
            query = online_query(self.store, await _body(receive))
            found = await self._lookup(query.requests)
            # orjson writes datetimes as RFC3339, the same text as json_value
            return 200, b"application/json", orjson.dumps(self.store.online_answer(query, found))
        if path == HEALTHZ:
            return 200, b"application/json", b'{"status":"ok"}'
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return 200, CONTENT_TYPE_LATEST.encode(), generate_latest(self.registry)


    async def _lookup(self, requests: list[tuple[str, list[str]]]) -> list[Lookup]:
        """The online store's answer to `requests`, sent together with those of every other
        request that reaches this point in the same turn of the event loop: under load a
        worker sends one lookup (one round trip) for several requests, not one each."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((requests, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        result: list[Lookup] = await future
        return result

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        try:
            found = self.store.online.lookup([r for requests, _ in pending for r in requests])
        except Exception as exc:  # every request of the batch answers with it
            for _requests, future in pending:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for requests, future in pending:
            if not future.done():
                future.set_result(found[start:start + len(requests)])
            start += len(requests)


async def _body(receive: Receive) -> bytes:
    """The whole request body, refused past MAX_BODY."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidInput("the client went away before sending its whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise PayloadTooLarge(f"the request body is over {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def create_app(store: FeatureStore | None = None) -> FeatureServer:
    """The ASGI app; without a store, one from the environment (uvicorn's factory)."""
    try:
        import prometheus_client  # noqa: F401 - checked here for a clear message
    except ImportError:
        raise FnhubError(SERVER_EXTRA) from None
    from fnhub.features.store import FeatureStore

    return FeatureServer(store or FeatureStore())


def serve(host: str, port: int, workers: int) -> None:
    """Run the server until SIGTERM/SIGINT (uvicorn finishes in-flight requests first)."""
    try:
        import uvicorn
    except ImportError:
        raise FnhubError(SERVER_EXTRA) from None
    uvicorn.run("fnhub.features.server:create_app", factory=True, host=host, port=port,
                workers=workers, log_level="warning", access_log=False,
                timeout_graceful_shutdown=30)
