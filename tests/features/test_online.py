"""Acceptance 3: after materialize(end=T), get_online_features equals get_historical_features
at T for every entity, on SQLite, Redis and PostgreSQL; incremental runs write only what
changed, late rows included; missing entities are None."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from fnhub.features.store import FeatureStore
from tests.features.conftest import make_store
from tests.features.factories import write_featureset
from tests.postgres import PostgresServer

T = pd.Timestamp("2026-03-10", tz="UTC")
H = pd.Timedelta(hours=1)
FEATURES = ["conv_rate", "acc_rate", "avg_daily_trips"]


def redis_url() -> str:
    import redis

    url = os.environ.get("FNHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError as exc:
        message = f"Redis does not answer at {url} ({exc}); start it: redis-server --daemonize yes"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture(params=["sqlite", "redis", "postgresql"])
def online(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'online.db'}"
    elif request.param == "redis":
        yield redis_url()
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        yield server.create_database()


def rows(entries: list[tuple[int, pd.Timestamp, pd.Timestamp, float]]) -> pd.DataFrame:
    """(driver, event, created, conv_rate) rows; the other features derive from them."""
    return pd.DataFrame({
        "driver_id": [e[0] for e in entries], "event_timestamp": [e[1] for e in entries],
        "created": [e[2] for e in entries], "conv_rate": [e[3] for e in entries],
        "acc_rate": [e[3] / 2 for e in entries],
        "avg_daily_trips": [int(e[3] * 100) for e in entries],
    })


def _python(value: Any) -> Any:
    return None if pd.isna(value) else (value.item() if hasattr(value, "item") else value)


def assert_online_equals_historical(store: FeatureStore, name: str, at: pd.Timestamp,
                                    drivers: list[int]) -> None:
    refs = [f"{name}:{f}" for f in FEATURES]
    online = store.get_online_features(refs, [{"driver_id": d} for d in drivers])
    entity_df = pd.DataFrame({"driver_id": drivers, "event_timestamp": [at] * len(drivers)})
    historical = store.get_historical_features(entity_df, refs)
    assert online["driver_id"] == drivers
    assert list(online) == ["driver_id", *refs]
    for ref in refs:
        assert online[ref] == [_python(v) for v in historical[ref]], ref


def test_materialize_matches_historical_and_is_incremental(online: str, tmp_path: Path) -> None:
    name = f"drivers-{secrets.token_hex(4)}"  # the Redis database is shared
    store = make_store(tmp_path, online=online)
    store.apply(write_featureset(tmp_path / "sets", name))  # ttl 2d, with `created`
    store.ingest(name, rows([
        (0, T - 30 * H, T - 30 * H, 0.10), (0, T - 5 * H, T - 5 * H, 0.11),  # latest wins
        (1, T - 3 * H, T + 2 * H, 0.20), (1, T - 10 * H, T - 10 * H, 0.21),  # created cut-off
        (2, T - 47 * H, T - 47 * H, 0.30),  # inside the ttl at T, expired by T + 2 h
        (3, T - 60 * H, T - 60 * H, 0.40),  # already expired
        (4, T + 5 * H, T + 5 * H, 0.50),  # in the future of T
        (5, T - 1 * H, T - 1 * H, 0.60), (5, T - 1 * H, T - 1 * H, 0.61),  # tie: later row
        (6, T - 20 * H, T - 20 * H, 0.70),
    ]))
    store.ingest(name, rows([(6, T - 20 * H, T - 20 * H, 0.71)]))  # tie: later ingest wins
    drivers = list(range(9))  # 7 and 8 have no rows at all
    written = store.materialize(end=T.to_pydatetime())
    assert written == {name: 5}  # entities with rows in the ttl window at T: 0, 1, 2, 5, 6
    assert_online_equals_historical(store, name, T, drivers)
    online_now = store.get_online_features([f"{name}:conv_rate"],
                                           [{"driver_id": d} for d in drivers])
    assert online_now[f"{name}:conv_rate"] == [0.11, 0.21, 0.30, None, None, 0.61, 0.71,
                                               None, None]

    # nothing new: nothing written
    assert store.materialize(end=T.to_pydatetime()) == {name: 0}
    # a late row (older event than the current winner's successor, written now) and a new one
    later = T + 3 * H
    store.ingest(name, rows([(0, T - 4 * H, T + 1 * H, 0.12), (6, T + 1 * H, T + 1 * H, 0.72),
                             (2, T - 20 * H, T - 20 * H, 0.33)]))  # a backfill, all before T
    written = store.materialize(end=later.to_pydatetime())
    # 0, 2 and 6 (a new ingest), 1 (its row's created time passed T); not 4 (event after T+3h)
    assert written == {name: 4}
    assert_online_equals_historical(store, name, later, drivers)
    online_later = store.get_online_features([f"{name}:conv_rate"],
                                             [{"driver_id": d} for d in (2, 5)])
    assert online_later[f"{name}:conv_rate"] == [0.33, 0.61]
    store.ingest(name, rows([(5, T - 60 * H, T - 60 * H, 0.62)]))  # outside the ttl window
    assert store.materialize(end=later.to_pydatetime()) == {name: 0}
    assert store.materialize(end=(T + 25 * H).to_pydatetime()) == {name: 1}  # 4 appears
    assert_online_equals_historical(store, name, T + 25 * H, drivers)  # 2 expired at read

    # start= recomputes every entity with rows at or after it: 0, 1, 2, 4, 5, 6
    assert store.materialize(start=(T - 100 * H).to_pydatetime(),
                             end=(T + 25 * H).to_pydatetime()) == {name: 6}
    # an earlier end starts over: 0, 1, 2, 5, 6 are in the ttl window then
    assert store.materialize(end=later.to_pydatetime()) == {name: 5}
    assert_online_equals_historical(store, name, later, drivers)
    store.close()
