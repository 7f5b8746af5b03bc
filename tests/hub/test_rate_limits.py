"""Rate limits: 429 with Retry-After past the limit, counted in the database across replicas."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import func
from sqlmodel import select

from fnhub.core.errors import FnhubError, RateLimited
from fnhub.hub import middleware
from fnhub.hub.app import create_app
from fnhub.hub.db import Database
from fnhub.hub.models import RateLimitWindow
from fnhub.hub.services import ratelimit
from fnhub.hub.settings import ServerSettings, parse_rate
from tests.hub.factories import auth, error_code, make_client, make_publisher
from tests.postgres import PostgresServer

SEARCH = "/api/v1/functions"


def _limited(response: httpx.Response, period: int = 3600) -> None:
    assert response.status_code == 429, response.text
    if response.request.url.path.startswith("/v2/"):  # the registry answers in OCI's body
        assert [e["code"] for e in response.json()["errors"]] == ["TOOMANYREQUESTS"]
    else:
        assert error_code(response) == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= period
    assert response.headers["X-Request-ID"]


def test_search_is_limited_with_retry_after_across_replicas(
        tmp_path: Path, fresh_database_url: str) -> None:
    """Two hub apps on one database share the count: 2 + 1 requests, then the 4th is refused
    on either; a client with a token of its own is counted apart."""
    settings = ServerSettings(data_dir=tmp_path / "data", database_url=fresh_database_url,
                              rate_limit_search="3/hour")
    first, second = create_app(settings), create_app(settings)
    try:
        a, b = make_client(first), make_client(second)
        assert [c.get(SEARCH).status_code for c in (a, b, a)] == [200, 200, 200]
        _limited(b.get(SEARCH, params={"q": "x"}))
        _limited(a.get(SEARCH))
        admin = (settings.data_dir / "admin-token").read_text().strip()
        assert b.get(SEARCH, headers=auth(admin)).status_code == 200
    finally:
        first.state.hub.close()
        second.state.hub.close()


def test_login_is_limited_per_address_whatever_the_token(tmp_path: Path) -> None:
    settings = ServerSettings(data_dir=tmp_path / "data", rate_limit_login="2/hour")
    app = create_app(settings)
    try:
        client = make_client(app)
        admin = (settings.data_dir / "admin-token").read_text().strip()
        body = {"name": "t", "scopes": ["read"]}
        assert client.post("/api/v1/tokens", json=body, headers=auth(admin)).status_code == 201
        assert client.post("/api/v1/tokens", json=body,
                           headers=auth("fnhub_guess")).status_code == 401
        _limited(client.post("/api/v1/tokens", json=body, headers=auth(admin)))
        _limited(client.post("/api/v1/oidc/mint-token", json={"token": "x"}))
        assert client.get("/api/v1/tokens", headers=auth(admin)).status_code == 200
    finally:
        app.state.hub.close()


def test_publish_is_limited_per_token(tmp_path: Path) -> None:
    settings = ServerSettings(data_dir=tmp_path / "data", rate_limit_publish="1/hour")
    app = create_app(settings)
    try:
        client = make_client(app)
        admin = (settings.data_dir / "admin-token").read_text().strip()
        alice = make_publisher(client, admin, "alice", tmp_path)
        assert alice.send(alice.upload("fn", "1.0.0")).status_code == 201
        _limited(alice.send(alice.upload("fn", "1.0.1")))
        bob = make_publisher(client, admin, "bob", tmp_path)
        assert bob.send(bob.upload("fn", "1.0.0")).status_code == 201
    finally:
        app.state.hub.close()


def test_the_client_turns_429_into_rate_limited(tmp_path: Path) -> None:
    settings = ServerSettings(data_dir=tmp_path / "data", rate_limit_search="1/hour")
    app = create_app(settings)
    try:
        client = make_client(app)
        client.get(SEARCH)
        response = client.get(SEARCH)
        error = FnhubError.from_payload(response.json(), response.status_code)
        assert isinstance(error, RateLimited) and "too many search requests" in error.message
        assert error.hint is not None and error.hint.startswith("retry in ")
    finally:
        app.state.hub.close()


def test_disabled_limits_count_nothing(tmp_path: Path) -> None:
    settings = ServerSettings(data_dir=tmp_path / "data", rate_limit_enabled=False,
                              rate_limit_search="1/hour")
    app = create_app(settings)
    try:
        client = make_client(app)
        assert {client.get(SEARCH).status_code for _ in range(5)} == {200}
        with app.state.hub.db.read() as session:
            assert session.exec(select(func.count()).select_from(RateLimitWindow)).one() == 0
    finally:
        app.state.hub.close()


def test_shared_windows_roll_over_and_old_ones_are_deleted(postgres: PostgresServer) -> None:
    """On PostgreSQL the windows are rows every replica shares."""
    db = Database(postgres.create_database())
    db.migrate()
    rule = ratelimit.Rule("search", limit=2, period=60)
    t0 = 6000.0  # a window boundary
    assert [ratelimit.hit(db, rule, "addr:1", t0 + s) for s in (0, 1, 59)] == [None, None, 1]
    assert ratelimit.hit(db, rule, "addr:1", t0 + 60) is None  # the next window
    assert ratelimit.hit(db, rule, "addr:2", t0 + 200) is None  # a new key's first hit...
    with db.read() as session:  # ...deleted the windows that had ended
        keys = session.exec(select(RateLimitWindow.key, RateLimitWindow.window_start)).all()
    assert keys == [("search:addr:2", 6180)]
    db.dispose()


def test_rates() -> None:
    assert parse_rate("60/minute") == (60, 60)
    assert parse_rate(" 5 / 10s ") == (5, 10)
    assert parse_rate("off") is None
    for bad in ("0/minute", "ten/minute", "5/fortnight", "5/0s", ""):
        with pytest.raises(ValueError, match="invalid rate"):
            parse_rate(bad)
    with pytest.raises(ValidationError, match="invalid rate"):
        ServerSettings(rate_limit_publish="lots")
    assert ratelimit.rules(ServerSettings(rate_limit_search="off")).keys() == {"publish",
                                                                                "login"}
    assert ratelimit.rule_name("GET", "/api/v1/functions") == "search"
    assert ratelimit.rule_name("POST", "/api/v1/functions/a/b/versions") == "publish"
    assert ratelimit.rule_name("POST", "/api/v1/oidc/mint-token") == "login"
    assert ratelimit.rule_name("GET", "/api/v1/functions/a/b") is None


def _bad_auth(client: TestClient, n: int) -> list[int]:
    return [client.get("/api/v1/whoami", headers=auth(f"fnhub_guess{i}")).status_code
            for i in range(n)]


def test_failed_authentication_is_limited_per_address(tmp_path: Path) -> None:
    """30 bad tokens a minute get 401; then every request with credentials from that address
    gets 429 with Retry-After, a valid token included (a guess that hits must not show),
    while anonymous reads and other addresses go on."""
    app = create_app(ServerSettings(data_dir=tmp_path / "data"))
    try:
        client = make_client(app)
        admin = (tmp_path / "data" / "admin-token").read_text().strip()
        assert client.get("/api/v1/whoami", headers=auth(admin)).status_code == 200
        assert _bad_auth(client, 30) == [401] * 30
        _limited(client.get("/api/v1/whoami", headers=auth("fnhub_guess31")), period=60)
        _limited(client.get("/api/v1/whoami", headers=auth(admin)), period=60)
        basic = httpx.BasicAuth("x", "fnhub_guess").auth_flow(httpx.Request("GET", "/"))
        header = next(basic).headers["authorization"]
        _limited(client.get("/v2/token", headers={"Authorization": header}), period=60)
        assert client.get(SEARCH).status_code == 200  # no credentials: not refused
        elsewhere = TestClient(app, client=("192.0.2.7", 50000))
        assert elsewhere.get("/api/v1/whoami", headers=auth(admin)).status_code == 200
    finally:
        app.state.hub.close()


def test_failed_registry_token_requests_count(tmp_path: Path) -> None:
    app = create_app(ServerSettings(data_dir=tmp_path / "data",
                                    rate_limit_auth_failures="3/minute"))
    try:
        client = make_client(app)
        assert client.get("/v2/token").status_code == 200  # anonymous: no failure
        assert [client.get("/v2/token", auth=("x", f"fnhub_guess{i}")).status_code
                for i in range(3)] == [401] * 3
        _limited(client.get("/v2/token", auth=("x", "fnhub_guess")), period=60)
        _limited(client.get("/v2/", headers=auth("not-a-jwt")), period=60)
    finally:
        app.state.hub.close()


@contextmanager
def _while_another_writer_holds_sqlite(app: Any, data_dir: Path) -> Iterator[TestClient]:
    """A client of `app` while another connection holds SQLite's write lock; afterwards, no
    rate-limit window was written to the database."""
    blocker = sqlite3.connect(data_dir / "hub.db", isolation_level=None)
    try:
        client = make_client(app)
        blocker.execute("BEGIN IMMEDIATE")
        yield client
    finally:
        blocker.rollback()
        blocker.close()
        app.state.hub.close()
    with app.state.hub.db.read() as session:
        assert session.exec(select(func.count()).select_from(RateLimitWindow)).one() == 0


def test_failures_are_counted_without_the_sqlite_write_lock(tmp_path: Path) -> None:
    """Another writer holds SQLite's write lock: failed authentications are still answered
    (and counted) at once, since a single process counts them in memory."""
    app = create_app(ServerSettings(data_dir=tmp_path / "data",
                                    rate_limit_auth_failures="3/minute"))
    with _while_another_writer_holds_sqlite(app, tmp_path / "data") as client:
        started = time.monotonic()
        assert _bad_auth(client, 3) == [401] * 3
        _limited(client.get("/api/v1/whoami", headers=auth("fnhub_x")), period=60)
        assert time.monotonic() - started < 5


def test_failures_are_shared_by_replicas_on_postgresql(tmp_path: Path,
                                                       postgres: PostgresServer) -> None:
    settings = ServerSettings(data_dir=tmp_path / "data", database_url=postgres.create_database(),
                              rate_limit_auth_failures="4/minute")
    first, second = create_app(settings), create_app(settings)
    try:
        a, b = make_client(first), make_client(second)
        assert _bad_auth(a, 2) + _bad_auth(b, 2) == [401] * 4
        _limited(a.get("/api/v1/whoami", headers=auth("fnhub_x")), period=60)
        _limited(b.get("/api/v1/whoami", headers=auth("fnhub_x")), period=60)
    finally:
        first.state.hub.close()
        second.state.hub.close()


def test_auth_failure_windows_in_memory_roll_over() -> None:
    failures = ratelimit.AuthFailures(Database("sqlite://"), ratelimit.Rule(
        "auth-failures", limit=2, period=60, per_address=True))
    t0 = 6000.0
    failures.failed("1.2.3.4", t0)
    assert failures.blocked("1.2.3.4", t0 + 1) is None
    failures.failed("1.2.3.4", t0 + 1)
    assert failures.blocked("1.2.3.4", t0 + 10) == 50
    assert failures.blocked("5.6.7.8", t0 + 10) is None
    assert failures.blocked("1.2.3.4", t0 + 60) is None  # the next window
    failures.failed("5.6.7.8", t0 + 61)  # a new window forgets the ended ones
    assert len(ratelimit.local_windows(failures.db)) == 1


def test_local_windows_roll_over_per_rule_period() -> None:
    """On SQLite requests count in memory; a short rule's new window does not forget a
    longer rule's window that is still running."""
    db = Database("sqlite://")
    minute = ratelimit.Rule("search", limit=2, period=60)
    hour = ratelimit.Rule("publish", limit=1, period=3600)
    t0 = 7200.0
    assert ratelimit.hit(db, hour, "addr:1", t0) is None
    assert [ratelimit.hit(db, minute, "addr:1", t0 + s) for s in (0, 1, 59)] == [None, None, 1]
    assert ratelimit.hit(db, minute, "addr:1", t0 + 60) is None  # the next minute
    assert ratelimit.hit(db, hour, "addr:1", t0 + 61) == 3600 - 61  # the hour still counts
    assert len(ratelimit.local_windows(db)) == 2  # the first minute is forgotten
    db.dispose()


def test_search_is_counted_without_the_sqlite_write_lock(tmp_path: Path) -> None:
    """Guard: a search on a SQLite hub opens no write transaction for the limiter. Another
    writer holds SQLite's write lock, and searches are still answered (and limited) at once."""
    app = create_app(ServerSettings(data_dir=tmp_path / "data", rate_limit_search="2/minute"))
    with _while_another_writer_holds_sqlite(app, tmp_path / "data") as client:
        started = time.monotonic()
        assert [client.get(SEARCH).status_code for _ in range(2)] == [200, 200]
        _limited(client.get(SEARCH), period=60)
        assert time.monotonic() - started < 5


def test_in_memory_counts_take_no_worker_thread(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Guard: on SQLite the limiter counts a search (and a failed authentication) on the
    event loop, as its counts are in memory: no hop to a worker thread per request. Limits
    still apply."""
    hops: list[object] = []

    async def recorded(function: Any, *args: Any) -> Any:
        hops.append(function)
        return function(*args)

    monkeypatch.setattr(middleware, "run_in_threadpool", recorded)
    app = create_app(ServerSettings(data_dir=tmp_path / "data", rate_limit_search="2/minute",
                                    rate_limit_auth_failures="5/minute"))
    try:
        client = make_client(app)
        assert [client.get(SEARCH).status_code for _ in range(2)] == [200, 200]
        _limited(client.get(SEARCH), period=60)
        assert client.get("/api/v1/whoami", headers=auth("wrong")).status_code == 401
    finally:
        app.state.hub.close()
    assert hops == []


def test_local_windows_forget_ended_ones_once_per_window_not_per_key() -> None:
    """The counts run on the event loop: a new key in the same window must not copy them all."""
    windows = ratelimit.LocalWindows()
    windows.add("a", 0, 60)
    counts = windows._counts
    for key in ("b", "c", "d"):
        windows.add(key, 0, 60)
    assert windows._counts is counts and len(windows) == 4
    windows.add("e", 60, 120)  # a later window: the ended ones go, once
    assert len(windows) == 1 and windows.get("e", 60) == 1 and windows.get("a", 0) == 0
    assert windows.add("e", 60, 120) == 2
