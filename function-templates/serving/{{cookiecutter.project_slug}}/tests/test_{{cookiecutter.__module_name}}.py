"""Tests for {{ cookiecutter.name }}: the app in-process, then a real server started with
`hub run` and stopped with SIGTERM."""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import fnhub
import httpx
import pytest
from fastapi.testclient import TestClient

PROJECT = Path(__file__).resolve().parents[1]


def _load_module() -> ModuleType:
    """Import the entrypoint file from this folder, as the runner does."""
    target = fnhub.import_function(str(PROJECT)).manifest.spec.entrypoint.partition(":")[0]
    spec = importlib.util.spec_from_file_location("served", PROJECT / target)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


MODULE = _load_module()


def _write_model(folder: Path, **spec: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model = {"name": "test", "features": ["x", "y"], "weights": [2.0, -1.0], "bias": 0.5}
    (folder / "model.json").write_text(json.dumps(model | spec))
    return folder


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return _write_model(tmp_path / "model")


@pytest.fixture
def client(model_dir: Path) -> TestClient:
    return TestClient(MODULE.create_app(model_dir))


def test_predicts_one_value_per_instance(client: TestClient) -> None:
    response = client.post("/predict", json={"instances": [{"x": 1, "y": 2}, {"x": 0.5, "y": 0}]})
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": [0.5, 1.5]}


def test_missing_and_unknown_features_are_422_naming_them(client: TestClient) -> None:
    response = client.post("/predict", json={"instances": [{"x": 1, "y": 2}, {"x": 1, "z": 3}]})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "instances[1]: missing feature 'y'; instances[1]: unknown feature 'z'"
    )


@pytest.mark.parametrize("value", ['"1"', "true", "null", "NaN"])
def test_values_must_be_finite_numbers(client: TestClient, value: str) -> None:
    body = '{"instances": [{"x": ' + value + ', "y": 1}]}'  # raw JSON: NaN is not valid JSON
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("instances[0].x: ")


def test_empty_and_malformed_requests_are_422(client: TestClient) -> None:
    empty = client.post("/predict", json={"instances": []})
    assert empty.status_code == 422
    assert empty.json()["detail"] == (
        "instances: List should have at least 1 item after validation, not 0"
    )
    assert client.post("/predict", json={"rows": [{"x": 1, "y": 2}]}).status_code == 422


def test_healthz_and_metadata(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/metadata").json() == {"model": "test", "features": ["x", "y"]}


def test_bad_models_are_named(tmp_path: Path) -> None:
    cases = [
        (tmp_path / "nowhere", "model.json not found"),
        (_write_model(tmp_path / "short", weights=[1.0]), "'weights' must be 2 numbers"),
        (_write_model(tmp_path / "twice", features=["x", "x"]), "lists a name twice"),
        (_write_model(tmp_path / "bias", bias="high"), "'bias' must be a number"),
    ]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.json").write_text("{not json")
    cases.append((broken, "could not parse"))
    for folder, message in cases:
        with pytest.raises(ValueError, match=message):
            MODULE.create_app(folder)


def test_serve_refuses_bad_ports(model_dir: Path) -> None:
    for port in (0, 70000, "8000", True):
        with pytest.raises(ValueError, match="port must be an integer from 1 to 65535"):
            MODULE.serve(model_dir, port=port)
{%- if cookiecutter.sample_data %}


def test_the_sample_model() -> None:
    client = TestClient(MODULE.create_app(PROJECT / "model"))
    rows = [{"rooms": 3, "area_m2": 50}, {"rooms": 1, "area_m2": 20}]
    assert client.post("/predict", json={"instances": rows}).json() == {
        "predictions": [135.0, 55.0]
    }
{%- endif %}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_hub_run_serves_until_sigterm(model_dir: Path, tmp_path: Path) -> None:
    """The real thing: `hub run` on this folder, requests over HTTP, a graceful stop."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "fnhub.cli.main", "run", str(PROJECT),
               "-i", f"model={model_dir}", "-p", f"port={port}", "--out", str(tmp_path / "run"),
               "--json"]
    env = {**os.environ, "FNHUB_HOME": str(tmp_path / "home")}
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, server.communicate()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not come up within 30 s"
            time.sleep(0.1)
        response = httpx.post(f"{base}/predict", json={"instances": [{"x": 3, "y": 1}]})
        assert response.json() == {"predictions": [5.5]}

        server.send_signal(signal.SIGTERM)
        stdout, stderr = server.communicate(timeout=15)
        assert server.returncode == 0, stderr
        assert json.loads(stdout)["outputs"] == {}
        assert "Shutting down" in stderr  # uvicorn's graceful shutdown, not a kill
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()


def test_function_yaml_matches_the_code() -> None:
    spec = fnhub.import_function(str(PROJECT)).manifest.spec
    params = inspect.signature(MODULE.serve).parameters
    assert [p.name for p in spec.inputs] == list(params)
    for port in spec.inputs:
        default = params[port.name].default
        assert port.required == (default is inspect.Parameter.empty)
        if not port.required:
            assert port.default == default
    lines = (PROJECT / "requirements.txt").read_text().splitlines()
    assert [line for line in lines if line and not line.startswith("#")] == spec.requirements
