"""Serve a scikit-learn model over HTTP with FastAPI and uvicorn (fnhub catalog: model-server).

The request schema is built from the model's own feature columns, so a client gets a precise
422 for a missing or unknown column and `/openapi.json` documents exactly what to send.

No `from __future__ import annotations` here: FastAPI reads the endpoint's annotations at
runtime, and the request model is a local created per app.
"""

import contextlib
import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import pandas as pd
import skops.io as sio
import uvicorn
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, create_model

TASKS = ("classification", "regression")
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.")
MAX_INSTANCES = 10_000  # one request's rows; bounds the memory a single call can take
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class PredictResponse(BaseModel):
    predictions: list[Any] = Field(description="One prediction per instance, in order")
    probabilities: list[dict[str, float]] | None = Field(
        default=None,
        description="Classifiers with predict_proba only: one {class: probability} per instance",
    )


def serve(model: Path, host: str = "127.0.0.1", port: int = 8000) -> dict[str, Any]:
    """Serve `model` on host:port until SIGINT or SIGTERM, then return normally (no outputs)."""
    if not isinstance(host, str) or not host:
        raise ValueError(f"host must be a non-empty string, got {host!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"port must be an integer from 1 to 65535, got {port!r}")
    app = create_app(Path(model))  # a bad model fails here, before anything listens
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
    )
    with _stop_signals_end_quietly(server):
        try:
            server.run()
        except SystemExit:  # uvicorn exits this way when it cannot start, e.g. port in use
            raise OSError(
                f"could not serve on {host}:{port} (see the error logged above)"
            ) from None
    return {}


@contextlib.contextmanager
def _stop_signals_end_quietly(server: uvicorn.Server) -> Iterator[None]:
    """Make a stop signal end `serve()` with a normal return instead of killing the process.

    uvicorn shuts down gracefully on SIGINT/SIGTERM, then restores the handlers it found and
    raises the signal again; with Python's defaults that would kill the process (SIGTERM) or
    raise KeyboardInterrupt (SIGINT). The handlers it finds are these, which only ask the
    server to stop, so a signal arriving before uvicorn takes over is not lost either.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signals only reach the main thread; uvicorn does not listen for them here
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def create_app(model_dir: Path) -> FastAPI:
    """The app for one model directory: /healthz, /metadata and /predict."""
    estimator, metadata = load_model(Path(model_dir))
    features: list[str] = metadata["features"]
    classifier = metadata["task"] == "classification" and hasattr(estimator, "predict_proba")
    by_name = hasattr(estimator, "feature_names_in_")  # fitted on a DataFrame, not an array
    instance = instance_model(features)
    predict_request = create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid"),
        instances=(list[instance], Field(min_length=1, max_length=MAX_INSTANCES)),
    )

    app = FastAPI(
        title=f"model-server: {metadata['estimator']}",
        description=f"{metadata['task']} on {len(features)} features: {', '.join(features)}",
        version="1.0.0",
    )
    app.add_exception_handler(RequestValidationError, _validation_error)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metadata")
    def get_metadata() -> dict[str, Any]:
        """The model's model.json."""
        return metadata

    @app.post("/predict", response_model=PredictResponse, response_model_exclude_none=True)
    def predict(body: predict_request) -> dict[str, Any]:  # type: ignore[valid-type]
        """Predict one value per instance; classifiers also give class probabilities."""
        frame = pd.DataFrame(
            [row.model_dump(by_alias=True) for row in body.instances], columns=features
        )
        X = frame if by_name else frame.to_numpy()
        answer: dict[str, Any] = {"predictions": estimator.predict(X).tolist()}
        if classifier:
            classes = [str(c) for c in estimator.classes_.tolist()]
            answer["probabilities"] = [
                dict(zip(classes, map(float, row), strict=True))
                for row in estimator.predict_proba(X)
            ]
        return answer

    return app


def instance_model(features: list[str]) -> type[BaseModel]:
    """One row: a required, finite float per feature, and nothing else.

    Column names need not be Python identifiers (`sepal length (cm)`), so each field gets a
    generated name and the column as its alias, which is what JSON and the schema use.
    """
    fields: dict[str, Any] = {
        f"f{i}": (
            Annotated[float, Field(alias=name, title=name, strict=True, allow_inf_nan=False)],
            ...,
        )
        for i, name in enumerate(features)
    }
    return create_model("Instance", __config__=ConfigDict(extra="forbid"), **fields)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's usual 422 `detail` plus one readable `message` naming each bad column."""
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        loc = loc[1:] if loc[:1] == ("body",) else loc
        column_error = {"missing": "missing", "extra_forbidden": "unknown"}.get(error["type"])
        if column_error and len(loc) == 3 and loc[0] == "instances":
            problems.append(f"{_path(loc[:2])}: {column_error} column {loc[2]!r}")
        else:
            problems.append(f"{_path(loc)}: {error['msg']}")
    # Without the offending inputs: they can be large, and NaN or Infinity is not valid JSON.
    detail = [{k: v for k, v in e.items() if k not in ("input", "url")} for e in exc.errors()]
    return JSONResponse(
        status_code=422,
        content={"detail": jsonable_encoder(detail), "message": "; ".join(problems)},
    )


def _path(loc: tuple[Any, ...]) -> str:
    """("instances", 0) -> "instances[0]"; a location inside the raw body -> "body[12]"."""
    text = "body" if not loc or isinstance(loc[0], int) else ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def load_model(model_dir: Path) -> tuple[Any, dict[str, Any]]:
    """Read model.json and model.skops, refusing types outside scikit-learn, NumPy and SciPy.

    skops rebuilds objects without pickle, and only types it is told to trust; trusting just
    these libraries means a crafted file cannot make the server run code of its choosing.
    """
    if not model_dir.is_dir():
        raise ValueError(f"model directory not found: {model_dir}")
    meta_path, model_path = model_dir / "model.json", model_dir / "model.skops"
    for path in (meta_path, model_path):
        if not path.is_file():
            raise ValueError(f"{path.name} missing from model directory {model_dir}")
    metadata = _read_metadata(meta_path)
    try:
        untrusted = sio.get_untrusted_types(file=model_path)
    except Exception as exc:  # a non-zip file or a broken archive
        raise ValueError(f"could not read {model_path.name}: {exc}") from exc
    refused = [name for name in untrusted if not name.startswith(TRUSTED_PREFIXES)]
    if refused:
        raise ValueError(
            f"refusing to load {model_path.name}: it needs types outside scikit-learn, NumPy "
            f"and SciPy: {', '.join(refused)}"
        )
    try:
        estimator = sio.load(model_path, trusted=untrusted)
    except Exception as exc:
        raise ValueError(f"could not load {model_path.name}: {exc}") from exc
    _check_estimator(estimator, metadata)
    return estimator, metadata


def _read_metadata(path: Path) -> dict[str, Any]:
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"could not parse {path.name}: {exc}") from exc
    if not isinstance(metadata, dict):
        raise ValueError(f"{path.name} must hold a JSON object")
    features = metadata.get("features")
    if (
        not isinstance(features, list)
        or not features
        or not all(isinstance(f, str) and f for f in features)
    ):
        raise ValueError(f"{path.name}: 'features' must be a non-empty list of column names")
    if len(set(features)) != len(features):
        raise ValueError(f"{path.name}: 'features' lists a column twice")
    if metadata.get("task") not in TASKS:
        raise ValueError(
            f"{path.name}: unknown task {metadata.get('task')!r} (choices: {', '.join(TASKS)})"
        )
    if not isinstance(metadata.get("estimator"), str):
        raise ValueError(f"{path.name}: 'estimator' must name the estimator class")
    return metadata


def _check_estimator(estimator: Any, metadata: dict[str, Any]) -> None:
    """The loaded object must predict, on exactly the columns model.json promises."""
    if not callable(getattr(estimator, "predict", None)):
        raise ValueError(f"model.skops holds a {type(estimator).__name__}, which cannot predict")
    features = metadata["features"]
    fitted = getattr(estimator, "feature_names_in_", None)
    if fitted is not None and list(fitted) != features:
        raise ValueError(
            f"model.json features ({', '.join(features)}) differ from the ones the model "
            f"was fitted on ({', '.join(map(str, fitted))})"
        )
    n_fitted = getattr(estimator, "n_features_in_", len(features))
    if n_fitted != len(features):
        raise ValueError(
            f"model.json lists {len(features)} features but the model expects {n_fitted}"
        )
    if metadata["task"] == "classification" and not hasattr(estimator, "classes_"):
        raise ValueError(f"task is classification but {type(estimator).__name__} has no classes")
