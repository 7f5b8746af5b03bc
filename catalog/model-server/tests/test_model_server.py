"""Tests for the model-server catalog function: the app in-process, then a real server process."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import skops.io as sio
from fastapi.testclient import TestClient
from sklearn import datasets
from sklearn.linear_model import LinearRegression, LogisticRegression

from catalog.testing import load_module, save_model
from fnhub.core.manifest import load_manifest

FOLDER = Path(__file__).resolve().parents[1]
IRIS = datasets.load_iris(as_frame=True)
FEATURES = list(IRIS.data.columns)
CLEAR_ROWS = [0, 50, 100]  # a setosa, a versicolor and a virginica the model is sure about
MODULE = load_module(FOLDER)


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    estimator = LogisticRegression(max_iter=1000).fit(IRIS.data, IRIS.target)
    return save_model(estimator, tmp_path_factory.mktemp("iris") / "model", FEATURES)


@pytest.fixture(scope="module")
def client(iris_model: Path) -> TestClient:
    return TestClient(MODULE.create_app(iris_model))


def _rows(indices: list[int]) -> list[dict[str, float]]:
    return IRIS.data.iloc[indices].to_dict(orient="records")


def test_predicts_clear_cut_iris_rows(client: TestClient) -> None:
    response = client.post("/predict", json={"instances": _rows(CLEAR_ROWS)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["predictions"] == [0, 1, 2]
    assert [set(p) for p in body["probabilities"]] == [{"0", "1", "2"}] * 3
    for expected, probabilities in zip(["0", "1", "2"], body["probabilities"], strict=True):
        assert sum(probabilities.values()) == pytest.approx(1.0)
        assert max(probabilities, key=probabilities.__getitem__) == expected


def test_missing_and_unknown_columns_are_422_naming_them(client: TestClient) -> None:
    good, bad = _rows([0, 1])
    del bad["petal width (cm)"]
    bad["colour"] = 1.0
    response = client.post("/predict", json={"instances": [good, bad]})
    assert response.status_code == 422
    body = response.json()
    assert body["message"] == (
        "instances[1]: missing column 'petal width (cm)'; instances[1]: unknown column 'colour'"
    )
    assert {tuple(e["loc"]) for e in body["detail"]} == {
        ("body", "instances", 1, "petal width (cm)"),
        ("body", "instances", 1, "colour"),
    }


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"instances": []}', "instances: List should have at least 1 item"),
        (b'{"rows": []}', "instances: Field required"),
        (b"not json", "body[0]: JSON decode error"),
    ],
)
def test_malformed_requests_are_422(client: TestClient, payload: bytes, message: str) -> None:
    response = client.post(
        "/predict", content=payload, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert message in response.json()["message"]


@pytest.mark.parametrize("value", ['"5.1"', "true", "null", "NaN", "Infinity"])
def test_values_must_be_finite_numbers(client: TestClient, value: str) -> None:
    row = json.dumps(_rows([0])[0]).replace("5.1", value, 1)
    response = client.post(
        "/predict",
        content=f'{{"instances": [{row}]}}'.encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    body = response.json()
    assert body["message"].startswith("instances[0].sepal length (cm): ")
    assert "input" not in body["detail"][0]  # NaN or Infinity would not be valid JSON


def test_openapi_schema_lists_the_features(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    instance = schemas["Instance"]
    assert list(instance["properties"]) == FEATURES
    assert instance["required"] == FEATURES
    assert instance["additionalProperties"] is False
    assert {p["type"] for p in instance["properties"].values()} == {"number"}
    assert schemas["PredictRequest"]["properties"]["instances"]["items"] == {
        "$ref": "#/components/schemas/Instance"
    }


def test_healthz_and_metadata(client: TestClient, iris_model: Path) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    metadata = client.get("/metadata").json()
    assert metadata == json.loads((iris_model / "model.json").read_text())
    assert metadata["classes"] == [0, 1, 2] and metadata["features"] == FEATURES


def test_regressor_fitted_on_an_array(tmp_path: Path) -> None:
    diabetes = datasets.load_diabetes(as_frame=True)
    estimator = LinearRegression().fit(diabetes.data.to_numpy(), diabetes.target)
    folder = save_model(estimator, tmp_path / "model", list(diabetes.data.columns))
    client = TestClient(MODULE.create_app(folder))
    rows = diabetes.data.iloc[:5]
    response = client.post("/predict", json={"instances": rows.to_dict(orient="records")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"predictions"}  # no probabilities for a regressor
    np.testing.assert_allclose(body["predictions"], estimator.predict(rows.to_numpy()))


class Shady:
    """Not a scikit-learn type: skops must not be told to trust it."""

    def predict(self, X: Any) -> list[int]:
        return [0] * len(X)


def test_refuses_types_outside_sklearn_numpy_scipy(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    sio.dump(Shady(), folder / "model.skops")
    (folder / "model.json").write_text(
        json.dumps({"estimator": "Shady", "task": "regression", "features": ["a"]})
    )
    with pytest.raises(ValueError, match=r"refusing to load model\.skops: .*\bShady\b"):
        MODULE.create_app(folder)


def test_bad_model_directories_are_named(tmp_path: Path, iris_model: Path) -> None:
    with pytest.raises(ValueError, match="model directory not found"):
        MODULE.create_app(tmp_path / "nowhere")

    def variant(name: str, **meta: Any) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "model.skops").write_bytes((iris_model / "model.skops").read_bytes())
        base = json.loads((iris_model / "model.json").read_text())
        (folder / "model.json").write_text(json.dumps(base | meta))
        return folder

    cases = [
        (variant("renamed", features=["a", "b", "c", "d"]), "differ from the ones the model"),
        (variant("task", task="clustering"), r"unknown task 'clustering' \(choices"),
        (variant("nofeatures", features=[]), "'features' must be a non-empty list"),
        (variant("twice", features=FEATURES[:3] + FEATURES[:1]), "lists a column twice"),
    ]
    garbage = variant("garbage")
    (garbage / "model.skops").write_bytes(b"\x89PNG\r\n\x1a\n not a model")
    cases.append((garbage, r"could not read model\.skops"))
    nojson = variant("nojson")
    (nojson / "model.json").unlink()
    cases.append((nojson, r"model\.json missing from model directory"))
    broken = variant("broken")
    (broken / "model.json").write_text("{not json")
    cases.append((broken, r"could not parse model\.json"))
    for folder, message in cases:
        with pytest.raises(ValueError, match=message):
            MODULE.create_app(folder)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_refuses_bad_ports(iris_model: Path) -> None:
    for port in (0, 70000, "8000", True):
        with pytest.raises(ValueError, match="port must be an integer from 1 to 65535"):
            MODULE.serve(iris_model, port=port)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(OSError, match=rf"could not serve on 127\.0\.0\.1:{port}"):
            MODULE.serve(iris_model, port=port)


RUNNER = """\
import importlib.util
import sys
from pathlib import Path

spec = importlib.util.spec_from_file_location("serve_entry", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
result = module.serve(model=Path(sys.argv[2]), port=int(sys.argv[3]))
print("serve returned", result, flush=True)
"""


def _wait_until_healthy(process: subprocess.Popen[str], base: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, process.communicate()[1]
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the server did not come up within 30 s"
        time.sleep(0.1)


@pytest.mark.slow
def test_real_server_processes_stop_cleanly_on_sigterm_and_sigint(
    tmp_path: Path, iris_model: Path
) -> None:
    """Two servers start side by side (to halve the wait); each gets one stop signal."""
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    servers = {}
    for stop in (signal.SIGTERM, signal.SIGINT):
        port = _free_port()
        command = [sys.executable, str(runner), str(FOLDER / "serve.py"), str(iris_model)]
        process = subprocess.Popen(
            [*command, str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        servers[stop] = (process, f"http://127.0.0.1:{port}")
    try:
        for stop, (process, base) in servers.items():
            _wait_until_healthy(process, base)
            response = httpx.post(f"{base}/predict", json={"instances": _rows(CLEAR_ROWS)})
            assert response.status_code == 200
            assert response.json()["predictions"] == [0, 1, 2]

            process.send_signal(stop)
            stdout, stderr = process.communicate(timeout=10)
            assert process.returncode == 0, f"{stop.name}: {stderr}"
            assert stdout.splitlines()[-1] == "serve returned {}"  # after uvicorn's access log
            assert "Shutting down" in stderr  # uvicorn's graceful shutdown, not a kill
    finally:
        for process, _ in servers.values():
            if process.poll() is None:
                process.kill()
                process.communicate()


def test_manifest_declares_a_serving_function() -> None:
    """The rest (no outputs, inputs as the signature) is in tests/catalog/test_contract.py."""
    manifest = load_manifest(FOLDER)
    assert manifest.ref == "library/model-server@1.0.0"
    assert manifest.spec.entrypoint == "serve.py:serve"
    assert manifest.spec.kind == "serving"
    assert manifest.metadata.categories == ["model-serving"]
