"""The database: engine setup, migrations, and the two kinds of session the services use.

Reads run in ordinary (deferred) transactions. Writes on SQLite start with `BEGIN IMMEDIATE`,
so a writer takes the write lock before it reads anything: two writers then queue on the
busy timeout instead of failing with SQLITE_BUSY when one upgrades a stale read snapshot.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlmodel import Session

BUSY_TIMEOUT_MS = 30_000
# SQLite connections kept open: as many as the server's worker threads (anyio's default
# limit, 40) can use at once, so concurrent requests never open and close connections (each
# open runs its PRAGMAs and starts with a cold page cache; SQLAlchemy's default keeps 5 and
# closes the rest). Connections are opened on demand, so an idle hub holds few.
SQLITE_POOL_SIZE, SQLITE_POOL_OVERFLOW = 40, 10
MIGRATION_LOCK = 0x666E687562  # "fnhub": the advisory lock replicas take to migrate one by one
_IMMEDIATE = "fnhub_immediate"


def make_engine(url: str, pool: dict[str, Any] | None = None) -> Engine:
    """An engine for `url`; on SQLite with WAL, a busy timeout and foreign keys enforced.

    A server database (PostgreSQL) gets a bounded connection pool: `pool` holds the
    `create_engine` pool options (`ServerSettings.pool_options()`); the default keeps
    pre-ping on, so a connection dropped by the server or a proxy is replaced, not used.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        options = pool if pool is not None else {"pool_pre_ping": True}
        connect_args = ({"application_name": "fnhub-hub"}
                        if parsed.get_backend_name() == "postgresql" else {})
        return create_engine(url, connect_args=connect_args, **options)
    options: dict[str, Any] = {}
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        options = {"pool_size": SQLITE_POOL_SIZE, "max_overflow": SQLITE_POOL_OVERFLOW}
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        **options,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN itself, not the sqlite3 module.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


_REVISION_LINE = re.compile(r"""^(revision|down_revision)\s*(?::[^=\n]*)?=\s*["']([^"']+)["']""",
                            re.MULTILINE)


def script_head() -> str | None:
    """The newest migration's revision, read from the scripts' `revision = "..."` and
    `down_revision = "..."` lines; None unless they form one chain (then Alembic decides)."""
    revisions, parents = set(), set()
    for script in (resources.files("fnhub.hub") / "migrations" / "versions").iterdir():
        if not script.name.endswith(".py") or script.name.startswith("__"):
            continue
        found = dict(match.groups() for match in _REVISION_LINE.finditer(script.read_text()))
        if "revision" not in found:
            return None
        revisions.add(found["revision"])
        if "down_revision" in found:
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


def current_revision(engine: Engine) -> str | None:
    """The revision the database was migrated to (None for a new database)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migration_due(engine: Engine) -> bool:
    """Whether `migrate` has anything to do, found without importing Alembic."""
    head = script_head()
    return head is None or current_revision(engine) != head


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (`upgrade head`).

    A database already there is left alone without importing Alembic: Alembic, Mako and
    the Pygments they load would otherwise stay in the hub's memory (about 10 MiB) for as
    long as it runs, for nothing to do (`hub serve` migrates in a child process for the
    same reason: `fnhub.hub.server.migrate_apart`)."""
    if not migration_due(engine):
        return
    from alembic import command
    from alembic.config import Config

    package = resources.files("fnhub.hub")
    config = Config(str(package / "alembic.ini"))
    config.set_main_option("script_location", str(package / "migrations"))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Replicas starting together: one migrates, the others wait, then find it done.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Database:
    """Owns the engine; hands out read sessions and write transactions."""

    def __init__(self, url: str, pool: dict[str, Any] | None = None) -> None:
        self.engine = make_engine(url, pool)
        self._write_engine = self.engine.execution_options(**{_IMMEDIATE: True})

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> None:
        migrate(self.engine)

    def migration_due(self) -> bool:
        return migration_due(self.engine)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for queries; nothing it does is committed."""
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A read transaction whose queries all see one consistent state (REPEATABLE READ on
        PostgreSQL; a SQLite read transaction is a snapshot already)."""
        engine = (self.engine.execution_options(isolation_level="REPEATABLE READ")
                  if self.dialect == "postgresql" else self.engine)
        with Session(engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction, committed when the block ends and rolled back if it raises."""
        with Session(self._write_engine, expire_on_commit=False) as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
