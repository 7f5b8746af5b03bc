"""{{ cookiecutter.description.rstrip('.') }}.

An fnhub serving function. `serve` loads the model, listens, and blocks until SIGINT (Ctrl+C)
or SIGTERM (`kill`, `docker stop`, Kubernetes); then it lets the requests in flight finish
(graceful shutdown) and returns normally, with no outputs, so the run ends with exit code 0.
`create_app` gives the FastAPI app without a server, for tests or to mount elsewhere.

To serve your own model, replace `LinearModel` and `load_model`; keep the endpoints.

No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations at run
time.
"""

import contextlib
import copy
import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

MAX_INSTANCES = 10_000  # rows in one request; bounds the memory a single call can take
GRACEFUL_SECONDS = 5  # how long requests in flight may take to finish after a stop signal
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]  # no "3", true, NaN


class LinearModel:
    """prediction = bias + sum(weight * feature): a stand-in for your model."""

    def __init__(self, name: str, features: list[str], weights: list[float], bias: float):
        self.name, self.features, self.weights, self.bias = name, features, weights, bias

    def predict(self, rows: list[dict[str, float]]) -> list[float]:
        return [
            self.bias + sum(w * row[f] for f, w in zip(self.features, self.weights, strict=True))
            for row in rows
        ]


def load_model(model_dir: Path) -> LinearModel:
    """Read `model.json` from a model directory; every problem is a ValueError naming it."""
    path = Path(model_dir) / "model.json"
    if not path.is_file():
        raise ValueError(f"model.json not found in {model_dir}")
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"could not parse {path}: {exc}") from None
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: expected a JSON object")
    features, weights, bias = spec.get("features"), spec.get("weights"), spec.get("bias", 0.0)
    if not isinstance(features, list) or not features or not all(
        isinstance(f, str) and f for f in features
    ):
        raise ValueError(f"{path}: 'features' must be a non-empty list of names")
    if len(set(features)) != len(features):
        raise ValueError(f"{path}: 'features' lists a name twice")
    if not isinstance(weights, list) or len(weights) != len(features) or not all(
        _is_number(w) for w in weights
    ):
        raise ValueError(f"{path}: 'weights' must be {len(features)} numbers, one per feature")
    if not _is_number(bias):
        raise ValueError(f"{path}: 'bias' must be a number")
    return LinearModel(str(spec.get("name", "model")), features, weights, bias)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instances: list[dict[str, Number]] = Field(min_length=1, max_length=MAX_INSTANCES)


class PredictResponse(BaseModel):
    predictions: list[float] = Field(description="One prediction per instance, in order")


def create_app(model_dir: Path) -> FastAPI:
    """The app for one model directory: /healthz, /metadata and /predict."""
    model = load_model(Path(model_dir))
    features = set(model.features)
    app = FastAPI(
        title="{{ cookiecutter.name }}",
        version="{{ cookiecutter.version }}",
        description=f"Predictions of {model.name} from: {', '.join(model.features)}",
    )
    app.add_exception_handler(RequestValidationError, _validation_error)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Answers once the model is loaded and the server listens."""
        return {"status": "ok"}

    @app.get("/metadata")
    def metadata() -> dict[str, Any]:
        return {"model": model.name, "features": model.features}

    @app.post("/predict")
    def predict(body: PredictRequest) -> PredictResponse:
        """One prediction per instance; each instance maps every feature to a number."""
        problems = []
        for i, row in enumerate(body.instances):
            problems += [f"instances[{i}]: missing feature {f!r}" for f in model.features
                         if f not in row]
            problems += [f"instances[{i}]: unknown feature {k!r}" for k in row
                         if k not in features]
        if problems:
            raise HTTPException(status_code=422, detail="; ".join(problems))
        return PredictResponse(predictions=model.predict(body.instances))

    return app


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """A 422 whose `detail` says where and what is wrong, like the feature checks do, without
    echoing the input (NaN or Infinity in it would not be valid JSON)."""
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ""
        for part in error["loc"][1:] if error["loc"][:1] == ("body",) else error["loc"]:
            where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else str(part)
        problems.append(f"{where or 'body'}: {error['msg']}")
    return JSONResponse(status_code=422, content={"detail": "; ".join(problems)})


def serve(model: Path, host: str = "127.0.0.1", port: int = 8000) -> dict[str, Any]:
    """Serve `model` on host:port until SIGINT or SIGTERM, then return normally (no outputs)."""
    if not isinstance(host, str) or not host:
        raise ValueError(f"host must be a non-empty string, got {host!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"port must be an integer from 1 to 65535, got {port!r}")
    app = create_app(Path(model))  # a bad model fails here, before anything listens
    server = uvicorn.Server(uvicorn.Config(
        app, host=host, port=port, log_config=_log_config(),
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
    ))
    with _stop_signals_end_quietly(server):
        try:
            server.run()
        except SystemExit:  # uvicorn exits this way when it cannot start, e.g. port in use
            raise OSError(f"could not serve on {host}:{port} (see the log above)") from None
    return {}


def _log_config() -> dict[str, Any]:
    """uvicorn's logging with the access log on stderr too: stdout belongs to the caller
    (`hub run --json` prints its result there)."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    return config


@contextlib.contextmanager
def _stop_signals_end_quietly(server: uvicorn.Server) -> Iterator[None]:
    """Make a stop signal end `serve()` with a normal return instead of killing the process.

    uvicorn shuts down gracefully on SIGINT/SIGTERM, then restores the handlers it found and
    raises the signal again; with Python's defaults that would kill the process (SIGTERM) or
    raise KeyboardInterrupt (SIGINT). The handlers it finds are these, which only ask the
    server to stop, so a signal arriving before uvicorn takes over is not lost either.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signals only reach the main thread
        return

    def stop(signum: int, frame: "FrameType | None") -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
