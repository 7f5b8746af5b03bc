"""Rate limits: fixed-window request counters that never take SQLite's write lock.

Three rules guard the expensive or sensitive requests: `publish` (per token, or per client
address without one), `login` (minting tokens, per client address, so guessing tokens
does not reset the count) and `search` (per token or address). A request counts in the
window `[floor(now / period) * period, + period)` of its key. Past the limit the answer is
429 with `Retry-After` = the seconds left in the window.

Where the count lives depends on the database, so that a read request (a search) never
opens a write transaction on SQLite:
- SQLite: a SQLite hub is one process, so the counts are kept in its memory (`LocalWindows`,
  one per database file, shared by every app of the process on that file); a new window
  forgets the ended ones.
- PostgreSQL: replicas share the `rate_limit_windows` table; one atomic UPSERT adds a
  request and returns the new count, so concurrent requests on any replica are all
  counted. A key's first request in a window also deletes every expired window, which
  keeps the table small.

Failed authentication is limited apart (`AuthFailures`): per client address, each 401 to a
request that carried credentials counts, and past the limit every request with credentials
from that address is refused before its token is looked at. It is counted the same way.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from dataclasses import dataclass

from sqlalchemy import delete
from sqlmodel import col, select

from fnhub.core.errors import InvalidInput
from fnhub.hub.db import Database
from fnhub.hub.models import RateLimitWindow
from fnhub.hub.settings import ServerSettings, parse_rate

_PUBLISH = re.compile(r"^/api/v1/functions/[^/]+/[^/]+/versions/?$")
_DIALECTS = ("postgresql", "sqlite")


@dataclass(frozen=True)
class Rule:
    name: str
    limit: int  # requests allowed per window
    period: int  # window length, seconds
    per_address: bool = False  # count by client address even when a token is sent


def rules(settings: ServerSettings) -> dict[str, Rule]:
    """The enabled rules by name (none when rate limiting is off)."""
    if not settings.rate_limit_enabled:
        return {}
    configured = {"publish": (settings.rate_limit_publish, False),
                  "login": (settings.rate_limit_login, True),
                  "search": (settings.rate_limit_search, False)}
    out = {}
    for name, (text, per_address) in configured.items():
        rate = parse_rate(text)
        if rate is not None:
            out[name] = Rule(name, rate[0], rate[1], per_address)
    return out


def rule_name(method: str, path: str) -> str | None:
    """Which rule a request falls under, if any."""
    if method == "GET" and path.rstrip("/") == "/api/v1/functions":
        return "search"
    if method != "POST":
        return None
    if path.rstrip("/") in ("/api/v1/tokens", "/api/v1/oidc/mint-token"):
        return "login"
    return "publish" if _PUBLISH.match(path) else None


def subject(rule: Rule, token: str | None, address: str | None) -> str:
    """Whom a request counts against: its token (hashed) or its client address."""
    if token and not rule.per_address:
        return "token:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return f"addr:{address or 'unknown'}"


def _window(rule: Rule, now: float) -> tuple[int, int]:
    """The [start, end) epoch seconds of the window `now` falls in."""
    start = int(now // rule.period) * rule.period
    return start, start + rule.period


def _wait(end: int, now: float) -> int:
    return max(1, math.ceil(end - now))


class LocalWindows:
    """Fixed-window counts in this process's memory, for a single-process (SQLite) hub."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], tuple[int, int]] = {}  # (key, start) -> count, end
        self._pruned_at = -1  # the latest window start the counts were pruned for
        self._lock = threading.Lock()

    def add(self, key: str, start: int, end: int) -> int:
        """Count one more in `key`'s window [start, end); the new count. The first count of a
        later window forgets every window that has ended (rules have different periods): once
        per window, not once per new key, since this runs on the event loop."""
        with self._lock:
            count, _ = self._counts.get((key, start), (0, end))
            if start > self._pruned_at:
                self._pruned_at = start
                self._counts = {k: v for k, v in self._counts.items() if v[1] > start}
            self._counts[(key, start)] = (count + 1, end)
            return count + 1

    def get(self, key: str, start: int) -> int:
        with self._lock:
            return self._counts.get((key, start), (0, 0))[0]

    def __len__(self) -> int:
        return len(self._counts)


_LOCAL: dict[object, LocalWindows] = {}
_LOCAL_LOCK = threading.Lock()


def local_windows(db: Database) -> LocalWindows:
    """The in-memory counts of `db`'s file, shared by every app of this process on it (an
    in-memory database has its own)."""
    url = db.engine.url
    ident: object = (url.render_as_string(hide_password=False)
                     if url.database not in (None, "", ":memory:") else id(db))
    with _LOCAL_LOCK:
        return _LOCAL.setdefault(ident, LocalWindows())


def _shared(db: Database) -> bool:
    """Whether counts live in the shared table (PostgreSQL) rather than in memory (SQLite)."""
    if db.dialect not in _DIALECTS:
        raise InvalidInput(f"rate limits need SQLite or PostgreSQL, not {db.dialect}",
                           hint="set FNHUB_SERVER_RATE_LIMIT_ENABLED=false")
    return db.dialect == "postgresql"


def hit(db: Database, rule: Rule, who: str, now: float | None = None) -> int | None:
    """Count one request of `who` under `rule`: None when allowed, else seconds to wait."""
    now = time.time() if now is None else now
    start, end = _window(rule, now)
    key = _key(rule, who)
    if _shared(db):
        count = _upsert(db, key, start, end, now)
    else:
        count = local_windows(db).add(key, start, end)
    if count <= rule.limit:
        return None
    return _wait(end, now)


def _upsert(db: Database, key: str, start: int, end: int, now: float) -> int:
    """Add one to the shared window row in one atomic statement; the new count.

    Only PostgreSQL shares its windows; its dialect's module (~2 MiB) is imported here, so a
    hub on SQLite never loads it."""
    from sqlalchemy.dialects.postgresql import insert

    table = RateLimitWindow.__table__
    statement = (
        insert(table).values(key=key, window_start=start, count=1, expires_at=end)
        .on_conflict_do_update(index_elements=["key", "window_start"],
                               set_={"count": table.c.count + 1})
        .returning(table.c.count)
    )
    with db.write() as session:
        count: int = session.execute(statement).scalar_one()
        if count == 1:
            session.execute(delete(RateLimitWindow).where(
                col(RateLimitWindow.expires_at) <= int(now)))
    return count


def _key(rule: Rule, who: str) -> str:
    return f"{rule.name}:{who}"[:255]


class AuthFailures:
    """Failed authentications per client address, in fixed windows (see the module doc)."""

    def __init__(self, db: Database, rule: Rule) -> None:
        self.db = db
        self.rule = rule
        self.shared = _shared(db)

    @classmethod
    def from_settings(cls, db: Database, settings: ServerSettings) -> AuthFailures | None:
        rate = parse_rate(settings.rate_limit_auth_failures)
        if not settings.rate_limit_enabled or rate is None:
            return None
        return cls(db, Rule("auth-failures", rate[0], rate[1], per_address=True))

    def blocked(self, address: str | None, now: float | None = None) -> int | None:
        """Seconds to wait when `address` has used up its failures, else None (reads only)."""
        now = time.time() if now is None else now
        start, end = _window(self.rule, now)
        key = _key(self.rule, subject(self.rule, None, address))
        if self.shared:
            with self.db.read() as session:
                count = session.exec(select(RateLimitWindow.count).where(
                    RateLimitWindow.key == key, RateLimitWindow.window_start == start)
                ).first() or 0
        else:
            count = local_windows(self.db).get(key, start)
        return _wait(end, now) if count >= self.rule.limit else None

    def failed(self, address: str | None, now: float | None = None) -> None:
        """Count one failed authentication from `address`."""
        hit(self.db, self.rule, subject(self.rule, None, address),
            time.time() if now is None else now)
