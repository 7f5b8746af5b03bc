"""Rate limits: fixed-window request counters in the database, shared by every replica.

Three rules guard the expensive or sensitive requests: `publish` (per token, or per client
address without one), `login` (minting tokens, per client address, so guessing tokens
does not reset the count) and `search` (per token or address). A request counts in the
window `[floor(now / period) * period, + period)` of its key; one UPSERT adds it and
returns the new count, so concurrent requests on any replica are all counted. Past the
limit the answer is 429 with `Retry-After` = the seconds left in the window. A key's first
request in a window also deletes every expired window, which keeps the table small.

Failed authentication is limited apart (`AuthFailures`): per client address, each 401 to a
request that carried credentials counts, and past the limit every request with credentials
from that address is refused before its token is looked at. Requests with credentials are
frequent, so this count never takes SQLite's write lock: a single process counts in memory;
on PostgreSQL, where replicas share the count, it is one upsert in the shared table.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select

from fnhub.core.errors import InvalidInput
from fnhub.hub.db import Database
from fnhub.hub.models import RateLimitWindow
from fnhub.hub.settings import ServerSettings, parse_rate

_PUBLISH = re.compile(r"^/api/v1/functions/[^/]+/[^/]+/versions/?$")
_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


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


def hit(db: Database, rule: Rule, who: str, now: float | None = None) -> int | None:
    """Count one request of `who` under `rule`: None when allowed, else seconds to wait."""
    insert = _INSERTS.get(db.dialect)
    if insert is None:
        raise InvalidInput(f"rate limits need SQLite or PostgreSQL, not {db.dialect}",
                           hint="set FNHUB_SERVER_RATE_LIMIT_ENABLED=false")
    now = time.time() if now is None else now
    start, end = _window(rule, now)
    table = RateLimitWindow.__table__
    statement = (
        insert(table).values(key=_key(rule, who), window_start=start, count=1,
                             expires_at=end)
        .on_conflict_do_update(index_elements=["key", "window_start"],
                               set_={"count": table.c.count + 1})
        .returning(table.c.count)
    )
    with db.write() as session:
        count = session.execute(statement).scalar_one()
        if count == 1:
            session.execute(delete(RateLimitWindow).where(
                col(RateLimitWindow.expires_at) <= int(now)))
    if count <= rule.limit:
        return None
    return _wait(end, now)


def _key(rule: Rule, who: str) -> str:
    return f"{rule.name}:{who}"[:255]


class AuthFailures:
    """Failed authentications per client address, in fixed windows (see the module doc)."""

    def __init__(self, db: Database, rule: Rule) -> None:
        self.db = db
        self.rule = rule
        self.shared = db.dialect == "postgresql"
        self._counts: dict[tuple[str, int], int] = {}  # (key, window start) -> failures
        self._lock = threading.Lock()

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
            with self._lock:
                count = self._counts.get((key, start), 0)
        return _wait(end, now) if count >= self.rule.limit else None

    def failed(self, address: str | None, now: float | None = None) -> None:
        """Count one failed authentication from `address`."""
        now = time.time() if now is None else now
        who = subject(self.rule, None, address)
        if self.shared:
            hit(self.db, self.rule, who, now)
            return
        start, _ = _window(self.rule, now)
        key = _key(self.rule, who)
        with self._lock:
            if (key, start) not in self._counts:  # a new window: forget the ended ones
                self._counts = {k: v for k, v in self._counts.items() if k[1] >= start}
            self._counts[(key, start)] = self._counts.get((key, start), 0) + 1
