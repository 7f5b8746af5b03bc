"""The HTTP feature server (issue #17 Build 1): the same answer as get_online_features, one
online-store round trip per request, bad input answered 4xx with a message, metrics, and
graceful shutdown of the real `hub features serve --workers 2` process."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from fnhub.core.errors import InvalidInput
from fnhub.features.online import OnlineStore, normalize
from fnhub.features.server import (
    MAX_BODY,
    MAX_ENTITIES,
    MAX_ENTITY_COLUMNS,
    create_app,
    json_value,
)
from fnhub.features.store import FeatureStore
from tests.features.conftest import make_store
from tests.features.factories import write_featureset
from tests.features.test_online import redis_url
from tests.helpers import ENV_VARS, HUB_BIN, ROOT, free_port

T = pd.Timestamp("2026-03-10", tz="UTC")
FEATURES = [{"name": "conv_rate", "type": "float"}, {"name": "trips", "type": "int"},
            {"name": "last_seen", "type": "timestamp"}]
REFS = ["drivers:last_seen", "drivers:conv_rate", "vehicles:age"]


def filled_store(root: Path) -> FeatureStore:
    """Two sets, materialized at T: drivers 1..3 (2 has no row), vehicles keyed by str."""
    store = make_store(root)
    store.apply(write_featureset(root / "sets", "drivers", features=FEATURES))
    store.apply(write_featureset(root / "sets", "vehicles", created=None,
                                 entities=[{"name": "vehicle", "type": "str"}],
                                 features=[{"name": "age", "type": "int"}]))
    store.ingest("drivers", pd.DataFrame({
        "driver_id": [1, 3], "event_timestamp": [T - pd.Timedelta(hours=1)] * 2,
        "created": [T - pd.Timedelta(hours=1)] * 2, "conv_rate": [0.5, 0.7],
        "trips": [10, 30], "last_seen": [T - pd.Timedelta(hours=2), T]}))
    store.ingest("vehicles", pd.DataFrame({"vehicle": ["a"], "age": [4],
                                           "event_timestamp": [T - pd.Timedelta(hours=1)]}))
    store.materialize(end=T.to_pydatetime())
    return store


@pytest.fixture
def served(tmp_path: Path) -> tuple[TestClient, FeatureStore]:
    store = filled_store(tmp_path)
    with TestClient(create_app(store)) as client:
        yield client, store


def test_answer_equals_get_online_features(served: tuple[TestClient, FeatureStore]) -> None:
    client, store = served
    entities = {"driver_id": [3, 2, 1], "vehicle": ["a", "b", "a"]}
    answer = client.post("/features/v1/online", json={"features": REFS, "entities": entities})
    assert answer.status_code == 200, answer.text
    rows = [{"driver_id": d, "vehicle": v} for d, v in zip(*entities.values(), strict=True)]
    expected = store.get_online_features(REFS, rows)
    assert list(answer.json()) == ["driver_id", "vehicle", *REFS]  # order kept over the wire
    assert answer.json() == {k: [json_value(v) for v in vs] for k, vs in expected.items()}
    assert answer.json()["drivers:last_seen"] == ["2026-03-10T00:00:00+00:00", None,
                                                  "2026-03-09T22:00:00+00:00"]
    assert answer.json()["vehicles:age"] == [4, None, 4]


def test_one_online_round_trip_per_request(served: tuple[TestClient, FeatureStore],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Every set and entity of a request is fetched by one lookup, never per entity/set."""
    client, store = served
    calls: list[str] = []
    online = store.online
    for method in ("read", "state", "lookup"):
        original = getattr(online, method)

        def spy(*args: Any, _name: str = method, _original: Any = original) -> Any:
            calls.append(_name)
            return _original(*args)
        monkeypatch.setattr(online, method, spy)
    answer = client.post("/features/v1/online", json={
        "features": REFS, "entities": {"driver_id": list(range(50)), "vehicle": ["a"] * 50}})
    assert answer.status_code == 200
    assert isinstance(online, OnlineStore) and calls.count("lookup") == 1
    # SQLite's lookup is the base class's loop; Redis and PostgreSQL override it (one call)
    assert calls.count("read") == 2  # one per set, each batching all 50 entities


def test_a_worker_connects_and_reads_the_registry_at_start_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first request of a worker costs what every other does: no connect, no registry
    read (with wrk's latency correction one such stall was the whole p99 over Redis)."""
    filled_store(tmp_path).close()
    store = make_store(tmp_path)
    assert store._online is None  # opened lazily outside the server
    with TestClient(create_app(store)) as client:
        assert store._online is not None
        reads: list[str] = []
        location = store.offline.location
        original = location.read_json
        monkeypatch.setattr(type(location), "read_json",
                            lambda self, path: reads.append(path) or original(path))
        for _ in range(3):
            answer = client.post("/features/v1/online", json={
                "features": REFS, "entities": {"driver_id": [1], "vehicle": ["a"]}})
            assert answer.status_code == 200, answer.text
        assert reads == []


def test_one_redis_round_trip_per_request(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted at the socket: each request sends Redis one packed pipeline (the state and
    every key of every set), and nothing else (the connection was opened at start-up)."""
    import redis.connection

    names = [f"drivers-{secrets.token_hex(4)}", f"riders-{secrets.token_hex(4)}"]
    store = make_store(tmp_path, online=redis_url())
    for name in names:
        store.apply(write_featureset(tmp_path / "sets", name, features=FEATURES))
        store.ingest(name, pd.DataFrame({
            "driver_id": [1, 3], "event_timestamp": [T - pd.Timedelta(hours=1)] * 2,
            "created": [T - pd.Timedelta(hours=1)] * 2, "conv_rate": [0.5, 0.7],
            "trips": [10, 30], "last_seen": [T, T]}))
    store.materialize(end=T.to_pydatetime())
    store.close()
    server_store = make_store(tmp_path, online=redis_url())
    sent: list[Any] = []
    original = redis.connection.AbstractConnection.send_packed_command
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command",
                        lambda self, command, *a, **k: sent.append(command) or original(
                            self, command, *a, **k))
    with TestClient(create_app(server_store)) as client:
        started = len(sent)
        for _ in range(3):
            answer = client.post("/features/v1/online", json={
                "features": [f"{n}:conv_rate" for n in names],
                "entities": {"driver_id": list(range(20))}})
            assert answer.status_code == 200, answer.text
            assert answer.json()[f"{names[1]}:conv_rate"][:4] == [None, 0.5, None, 0.7]
        assert len(sent) - started == 3


def test_concurrent_requests_share_one_online_lookup(tmp_path: Path) -> None:
    """Requests that reach the lookup in the same turn of a worker's event loop are sent to
    the online store together (fewer round trips under load), each getting its own answer."""
    store = filled_store(tmp_path)
    app = create_app(store)
    calls: list[int] = []
    original = store.online.lookup
    store.online.lookup = lambda requests: calls.append(len(requests)) or original(requests)
    drivers = [1, 2, 3, 1, 3, 2]

    async def post_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://features") as client:
            return await asyncio.gather(*(client.post("/features/v1/online", json={
                "features": REFS, "entities": {"driver_id": [d], "vehicle": ["a"]}})
                for d in drivers))

    answers = asyncio.run(post_all())
    rates = {1: 0.5, 2: None, 3: 0.7}
    assert [a.json()["drivers:conv_rate"] for a in answers] == [[rates[d]] for d in drivers]
    assert sum(calls) == 2 * len(drivers)  # two sets per request, every one looked up
    assert len(calls) < len(drivers), calls
    store.close()


def test_registry_entries_are_parsed_once_until_their_file_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = filled_store(tmp_path)
    reads: list[str] = []
    location = store.offline.location
    original = location.read_json
    monkeypatch.setattr(type(location), "read_json",
                        lambda self, path: reads.append(path) or original(path))
    first = store.offline.get("drivers")
    assert store.offline.get("drivers") is first
    assert len(reads) <= 1
    store.apply(write_featureset(tmp_path / "sets", "drivers", version="2.0.0",
                                 features=FEATURES))
    assert store.offline.get("drivers").version == "2.0.0"  # a re-apply is seen at once
    rows = [{"driver_id": 1, "vehicle": "a"}]
    assert store.get_online_features(REFS, rows)["drivers:conv_rate"] == [None]  # not yet
    store.close()


@pytest.mark.parametrize(("body", "status", "words"), [
    (b"not json", 400, "not JSON"),
    ({"features": ["nosuch:x"], "entities": {"driver_id": [1]}}, 404, "nosuch"),
    ({"features": ["drivers:nosuch"], "entities": {"driver_id": [1]}}, 400, "nosuch"),
    ({"features": ["drivers conv_rate"], "entities": {"driver_id": [1]}}, 400, "SET:FEATURE"),
    ({"features": ["drivers:conv_rate"], "entities": {"vehicle": ["a"]}}, 400, "driver_id"),
    ({"features": ["drivers:conv_rate"], "entities": {"driver_id": ["x"]}}, 400, "int"),
    ({"features": ["drivers:conv_rate"], "entities": {"driver_id": 1}}, 400, "entities"),
    ({"features": ["drivers:conv_rate"], "entities": {"driver_id": [1, None]}}, 400,
     "driver_id"),
    ({"features": ["drivers:conv_rate"], "entities": {"driver_id": [1], "vehicle": []}}, 400,
     "same number"),
    ({"features": [], "entities": {"driver_id": [1]}}, 400, "features"),
    ({"features": ["drivers:conv_rate"]}, 400, "entities"),
    ({"features": ["drivers:conv_rate"], "entities": {"driver_id": [1]}, "x": 1}, 400, "x"),
    ([1, 2], 400, "body"),
    ({"features": ["drivers:conv_rate"],
      "entities": {"driver_id": list(range(MAX_ENTITIES + 1))}}, 413, str(MAX_ENTITIES)),
    ({"features": ["drivers:conv_rate"], "entities": {"driver_id": [[1]]}}, 400, "driver_id"),
    ({"features": ["drivers:conv_rate"], "entities": {"driver_id": [{"a": 1}]}}, 400,
     "driver_id"),
    ({"features": ["drivers:conv_rate"],
      "entities": {f"c{i}": [1] for i in range(MAX_ENTITY_COLUMNS + 1)}}, 400, "entities"),
    (b'{"features": ["drivers:conv_rate"], "entities": {"driver_id": ["' + b"x" * MAX_BODY
     + b'"]}}', 413, str(MAX_BODY)),
])
def test_bad_input_is_4xx_with_a_message(served: tuple[TestClient, FeatureStore], body: Any,
                                         status: int, words: str) -> None:
    client, _store = served
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = client.post("/features/v1/online", content=content,
                         headers={"content-type": "application/json"})
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] and words in error["message"], error


@pytest.mark.parametrize("value", ["garbage", "2026-03-10", "0001-01-01T00:00:00+01:00", 7])
def test_a_bad_timestamp_key_is_refused_naming_it(value: Any) -> None:
    """Not ISO 8601, naive, or out of range in UTC: InvalidInput (a 400), never a 500."""
    with pytest.raises(InvalidInput, match="ts must be a timezone-aware timestamp"):
        normalize(value, "timestamp", "ts")


def test_healthz_and_metrics(served: tuple[TestClient, FeatureStore]) -> None:
    client, _store = served
    assert client.get("/healthz").json() == {"status": "ok"}
    ok = {"features": ["drivers:conv_rate"], "entities": {"driver_id": [1]}}
    client.post("/features/v1/online", json=ok)
    client.post("/features/v1/online", json=ok)
    client.post("/features/v1/online", content=b"{")
    metrics = client.get("/metrics").text
    assert ('fnhub_features_requests_total{path="/features/v1/online",status="200"} 2.0'
            in metrics)
    assert ('fnhub_features_requests_total{path="/features/v1/online",status="400"} 1.0'
            in metrics)
    assert 'fnhub_features_request_seconds_count{path="/features/v1/online",status="200"} 2.0' \
        in metrics


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"feature server did not start:\n{log.read_text()}")


@pytest.mark.slow
def test_real_server_two_workers_answers_and_stops_gracefully(tmp_path: Path) -> None:
    filled_store(tmp_path).close()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env["FNHUB_HOME"] = str(tmp_path / "home")
    log = tmp_path / "serve.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [HUB_BIN, "features", "--offline", str(tmp_path / "offline"), "--online",
             str(tmp_path / "online.db"), "serve", "--port", str(port), "--workers", "2"],
            stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, log)
        body = json.dumps({"features": REFS, "entities": {"driver_id": [1, 2],
                                                          "vehicle": ["a", "z"]}}).encode()
        answer = httpx.post(url + "/features/v1/online", content=body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["drivers:conv_rate"] == [0.5, None]
        assert httpx.post(url + "/features/v1/online", content=b"[").status_code == 400

        # a request in flight (headers sent, body half-way) when SIGTERM arrives completes
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"POST /features/v1/online HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/json\r\nConnection: close\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:10])
            time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            sock.sendall(body[10:])
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200"), reply
        assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["vehicles:age"] == [4, None]
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
