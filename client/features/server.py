"""The HTTP feature server (`hub features serve`, design §10): online lookups over HTTP.

`POST /features/v1/online` answers exactly what `FeatureStore.get_online_features` returns
(timestamps as RFC3339), with one round trip to the online store per request. Each worker
process builds its own store from the environment (FNHUB_FEATURES_OFFLINE/ONLINE, config.toml),
so `uvicorn --workers N` needs nothing shared but the stores themselves. The lookup runs on the
event loop: it is short, and one store connection per worker is never used by two threads.
(No `from __future__ import annotations`: FastAPI reads the handlers' annotations at runtime.)
"""

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fnhub.core.errors import FnhubError, InvalidInput, PayloadTooLarge

if TYPE_CHECKING:
    from fastapi import FastAPI

    from fnhub.features.store import FeatureStore

MAX_ENTITIES = 10_000
MAX_FEATURES = 1_000
SERVER_EXTRA = 'the feature server needs FastAPI and uvicorn: pip install "fnhub[server]"'


class OnlineRequest(BaseModel):
    """The body of `POST /features/v1/online`: entity columns of equal length."""

    model_config = ConfigDict(extra="forbid")

    features: list[str] = Field(min_length=1, max_length=MAX_FEATURES)
    entities: dict[str, list[Any]] = Field(min_length=1)


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
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("the request body is not JSON") from None
    try:
        return OnlineRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidInput(f"{where}: {first['msg']}") from None


def online_features(store: "FeatureStore", body: bytes) -> dict[str, list[Any]]:
    """The answer to one `POST /features/v1/online`."""
    request = parse_request(body)
    result = store.get_online_features(request.features, entity_rows(request.entities))
    return {k: [json_value(v) for v in values] for k, values in result.items()}


def create_app(store: "FeatureStore | None" = None) -> "FastAPI":
    """The ASGI app; without a store, one from the environment (uvicorn's factory)."""
    try:
        from fastapi import FastAPI, Request
        from fastapi.responses import JSONResponse, Response
        from prometheus_client import (
            CONTENT_TYPE_LATEST,
            CollectorRegistry,
            Counter,
            Histogram,
            generate_latest,
        )
    except ImportError:
        raise FnhubError(SERVER_EXTRA) from None
    from fnhub.features.store import FeatureStore

    feature_store = store or FeatureStore()
    registry = CollectorRegistry()
    requests = Counter("fnhub_features_requests", "Feature server requests",
                       ["path", "status"], registry=registry)
    latency = Histogram("fnhub_features_request_seconds", "Feature server latency",
                        ["path", "status"], registry=registry,
                        buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5))
    @asynccontextmanager
    async def lifespan(_app: "FastAPI") -> AsyncIterator[None]:
        yield
        feature_store.close()

    app = FastAPI(title="fnhub feature server", docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)

    @app.middleware("http")
    async def measure(request: Request, call_next: Any) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        labels = (request.url.path, str(response.status_code))
        requests.labels(*labels).inc()
        latency.labels(*labels).observe(time.perf_counter() - started)
        return response

    @app.exception_handler(FnhubError)
    async def fnhub_error(_request: Request, exc: FnhubError) -> JSONResponse:
        return JSONResponse(exc.to_payload(), status_code=exc.status)

    @app.post("/features/v1/online")
    async def online(request: Request) -> JSONResponse:
        return JSONResponse(online_features(feature_store, await request.body()))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def serve(host: str, port: int, workers: int) -> None:
    """Run the server until SIGTERM/SIGINT (uvicorn finishes in-flight requests first)."""
    try:
        import uvicorn
    except ImportError:
        raise FnhubError(SERVER_EXTRA) from None
    uvicorn.run("fnhub.features.server:create_app", factory=True, host=host, port=port,
                workers=workers, log_level="warning", timeout_graceful_shutdown=30)
