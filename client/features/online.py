"""Online stores: the latest feature values per entity, for serving in milliseconds.

Three backends with one small interface: SQLite (the embedded default, in WAL mode, writers
taking the lock up front so readers never see "database is locked"), Redis and PostgreSQL.
Each keeps, per feature set, entity key → `{"e": event time, "v": {feature: value}}` as JSON,
and its own materialization watermark (the state `materialize` resumes from).
"""

from __future__ import annotations

import json
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fnhub.core.errors import InvalidInput

Entry = tuple[str, "str | None"]  # (encoded entity key, encoded value; None removes the key)
Lookup = tuple["dict[str, Any] | None", "list[str | None]"]  # (set's state, value per key)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in the online store")


# one encoder for every key and value (json.dumps with options builds a new one per call)
_ENCODER = json.JSONEncoder(default=_json_default, separators=(",", ":"), sort_keys=True)


def encode(value: Any) -> str:
    return _ENCODER.encode(value)


def normalize(value: Any, kind: str, what: str) -> Any:
    """An entity key or feature value as the Python type of its feature-set type."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalars
    if kind == "timestamp":
        try:
            if isinstance(value, str):
                value = datetime.fromisoformat(value)
            if isinstance(value, datetime) and value.tzinfo is not None:
                return value.astimezone(timezone.utc)
        except (ValueError, OverflowError):  # not ISO 8601, or out of range once in UTC
            pass
        raise InvalidInput(f"{what} must be a timezone-aware timestamp, got {value!r}")
    if not _CHECKS[kind](value):
        raise InvalidInput(f"{what} must be {kind}, got {value!r}")
    return float(value) if kind == "float" else value


_CHECKS: dict[str, Callable[[Any], bool]] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str), "bool": lambda v: isinstance(v, bool)}


def parse_text(text: str, kind: str, what: str) -> Any:
    """A command-line value (`--entity driver_id=1001`) as its feature-set type."""
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            return {"true": True, "1": True, "false": False, "0": False}[text.lower()]
        if kind == "timestamp":
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, KeyError):
        raise InvalidInput(f"{what}: {text!r} is not {kind}") from None
    return text


class OnlineStore(ABC):
    """Per feature set: entity key → value, and the materialization state."""

    url: str

    @abstractmethod
    def write(self, feature_set: str, items: Sequence[Entry]) -> None:
        """Set (or, for None, remove) the values of the given keys, all at once."""

    @abstractmethod
    def read(self, feature_set: str, keys: Sequence[str]) -> list[str | None]: ...

    @abstractmethod
    def state(self, feature_set: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def set_state(self, feature_set: str, state: dict[str, Any]) -> None: ...

    @abstractmethod
    def clear(self, feature_set: str) -> None:
        """Drop every value of the set (a new version starts empty)."""

    def lookup(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[Lookup]:
        """The state and the values of several sets at once: a network backend answers in
        one round trip (the feature server calls this once per request)."""
        return [(self.state(fs), self.read(fs, keys)) for fs, keys in requests]

    def close(self) -> None:  # noqa: B027 - most backends hold nothing to close
        """Release connections."""

    def connect(self) -> None:  # noqa: B027 - SQLite and PostgreSQL connect when opened
        """Open the connection now rather than on the first read (a server's first request
        would otherwise pay for it)."""


class SQLiteStore(OnlineStore):
    def __init__(self, path: Path) -> None:
        self.url = f"sqlite:///{path}"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None,
                                  check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA busy_timeout=30000")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS features (fs TEXT NOT NULL, k TEXT NOT NULL, "
                        "v TEXT NOT NULL, PRIMARY KEY (fs, k)) WITHOUT ROWID")
        self.db.execute("CREATE TABLE IF NOT EXISTS watermarks (fs TEXT PRIMARY KEY, "
                        "state TEXT NOT NULL)")

    def _transaction(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        self.db.execute("BEGIN IMMEDIATE")  # take the write lock now, never upgrade later
        try:
            for sql, rows in statements:
                if rows:
                    self.db.executemany(sql, rows)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def write(self, feature_set: str, items: Sequence[Entry]) -> None:
        self._transaction([
            ("INSERT INTO features (fs, k, v) VALUES (?, ?, ?) "
             "ON CONFLICT (fs, k) DO UPDATE SET v = excluded.v",
             [(feature_set, k, v) for k, v in items if v is not None]),
            ("DELETE FROM features WHERE fs = ? AND k = ?",
             [(feature_set, k) for k, v in items if v is None]),
        ])

    def read(self, feature_set: str, keys: Sequence[str]) -> list[str | None]:
        found: dict[str, str] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start:start + 500])
            marks = ",".join("?" * len(chunk))
            found.update(self.db.execute(
                f"SELECT k, v FROM features WHERE fs = ? AND k IN ({marks})",
                [feature_set, *chunk]).fetchall())
        return [found.get(k) for k in keys]

    def state(self, feature_set: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT state FROM watermarks WHERE fs = ?",
                              (feature_set,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_state(self, feature_set: str, state: dict[str, Any]) -> None:
        self._transaction([("INSERT INTO watermarks (fs, state) VALUES (?, ?) ON CONFLICT (fs) "
                            "DO UPDATE SET state = excluded.state",
                            [(feature_set, encode(state))])])

    def clear(self, feature_set: str) -> None:
        self._transaction([("DELETE FROM features WHERE fs = ?", [(feature_set,)])])

    def close(self) -> None:
        self.db.close()


class RedisStore(OnlineStore):
    """One hash per feature set (`fnhub:features:<set>`), the state in `fnhub:watermark:<set>`."""

    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        self.redis = redis.Redis.from_url(url)

    def connect(self) -> None:
        self.redis.ping()  # redis-py connects on the first command

    @staticmethod
    def _hash(feature_set: str) -> str:
        return f"fnhub:features:{feature_set}"

    def write(self, feature_set: str, items: Sequence[Entry]) -> None:
        pipe = self.redis.pipeline(transaction=True)
        values = {k: v for k, v in items if v is not None}
        removed = [k for k, v in items if v is None]
        if values:
            pipe.hset(self._hash(feature_set), mapping=values)
        if removed:
            pipe.hdel(self._hash(feature_set), *removed)
        pipe.execute()

    def read(self, feature_set: str, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        values = self.redis.hmget(self._hash(feature_set), list(keys))
        return [v.decode() if v is not None else None for v in values]

    def state(self, feature_set: str) -> dict[str, Any] | None:
        value = self.redis.get(f"fnhub:watermark:{feature_set}")
        return json.loads(value) if value else None

    def lookup(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[Lookup]:
        pipe = self.redis.pipeline(transaction=False)
        for fs, keys in requests:
            pipe.get(f"fnhub:watermark:{fs}")
            if keys:
                pipe.hmget(self._hash(fs), list(keys))
        answers = iter(pipe.execute())
        out: list[Lookup] = []
        for _fs, keys in requests:
            state = next(answers)
            values = next(answers) if keys else []
            out.append((json.loads(state) if state else None,
                        [v.decode() if v is not None else None for v in values]))
        return out

    def set_state(self, feature_set: str, state: dict[str, Any]) -> None:
        self.redis.set(f"fnhub:watermark:{feature_set}", encode(state))

    def clear(self, feature_set: str) -> None:
        self.redis.delete(self._hash(feature_set))

    def close(self) -> None:
        self.redis.close()


class PostgresStore(OnlineStore):
    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url
        # autocommit: a read is one statement, one round trip; writes open transactions
        self.db = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1),
                                  autocommit=True)
        with self.db.transaction():
            self.db.execute("CREATE TABLE IF NOT EXISTS fnhub_features (fs TEXT NOT NULL, "
                            "k TEXT NOT NULL, v TEXT NOT NULL, PRIMARY KEY (fs, k))")
            self.db.execute("CREATE TABLE IF NOT EXISTS fnhub_watermarks (fs TEXT PRIMARY KEY, "
                            "state TEXT NOT NULL)")

    def write(self, feature_set: str, items: Sequence[Entry]) -> None:
        with self.db.transaction(), self.db.cursor() as cur:
            cur.executemany("INSERT INTO fnhub_features (fs, k, v) VALUES (%s, %s, %s) "
                            "ON CONFLICT (fs, k) DO UPDATE SET v = excluded.v",
                            [(feature_set, k, v) for k, v in items if v is not None])
            cur.executemany("DELETE FROM fnhub_features WHERE fs = %s AND k = %s",
                            [(feature_set, k) for k, v in items if v is None])

    def read(self, feature_set: str, keys: Sequence[str]) -> list[str | None]:
        with self.db.transaction():
            rows = self.db.execute("SELECT k, v FROM fnhub_features WHERE fs = %s "
                                   "AND k = ANY(%s)", (feature_set, list(keys))).fetchall()
        found = dict(rows)
        return [found.get(k) for k in keys]

    def lookup(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[Lookup]:
        sets = [fs for fs, _keys in requests]
        pairs = [(fs, k) for fs, keys in requests for k in keys]
        rows = self.db.execute(
            "SELECT fs, k, v FROM fnhub_features WHERE (fs, k) IN "
            "(SELECT * FROM unnest(%s::text[], %s::text[])) "
            "UNION ALL SELECT fs, NULL, state FROM fnhub_watermarks WHERE fs = ANY(%s)",
            ([p[0] for p in pairs], [p[1] for p in pairs], sets)).fetchall()
        found = {(fs, k): v for fs, k, v in rows}
        return [(json.loads(found[(fs, None)]) if (fs, None) in found else None,
                 [found.get((fs, k)) for k in keys]) for fs, keys in requests]

    def state(self, feature_set: str) -> dict[str, Any] | None:
        with self.db.transaction():
            row = self.db.execute("SELECT state FROM fnhub_watermarks WHERE fs = %s",
                                  (feature_set,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_state(self, feature_set: str, state: dict[str, Any]) -> None:
        with self.db.transaction():
            self.db.execute("INSERT INTO fnhub_watermarks (fs, state) VALUES (%s, %s) "
                            "ON CONFLICT (fs) DO UPDATE SET state = excluded.state",
                            (feature_set, encode(state)))

    def clear(self, feature_set: str) -> None:
        with self.db.transaction():
            self.db.execute("DELETE FROM fnhub_features WHERE fs = %s", (feature_set,))

    def close(self) -> None:
        self.db.close()


def open_online(url: str | Path) -> OnlineStore:
    """`redis://host:port/db`, `postgresql://...`, `sqlite:///path` or a plain path."""
    text = str(url)
    if text.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(text)
    if text.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        return PostgresStore(text)
    if "://" in text and not text.startswith("sqlite:///"):
        raise InvalidInput(f"unsupported online store {text!r}: use a SQLite path, "
                           "sqlite:///PATH, redis://HOST:PORT/DB or postgresql://...")
    return SQLiteStore(Path(text.removeprefix("sqlite://")).expanduser().absolute())
