"""The machine's PostgreSQL for tests: fresh databases named `fnhub_test_<session>_<n>`.

Each test session picks a random prefix, creates one database per hub it starts (so every
hub begins empty, as on SQLite), and drops them all when it ends. The server is found at
FNHUB_TEST_POSTGRES_URL, else at 127.0.0.1:5432 as `postgres` or `root` (trust auth);
`.ci/run` starts it when it is not running.
"""

from __future__ import annotations

import itertools
import os
import secrets

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

CANDIDATES = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg://root@127.0.0.1:5432/test",
)
START_HINT = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"


class PostgresServer:
    """Creates and drops this session's databases through an AUTOCOMMIT admin connection."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = make_url(admin_url)
        self.engine: Engine = create_engine(admin_url, isolation_level="AUTOCOMMIT",
                                            poolclass=NullPool)
        self.prefix = f"fnhub_test_{secrets.token_hex(4)}"
        self._numbers = itertools.count(1)
        self.created: list[str] = []

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL (psycopg 3 driver)."""
        name = f"{self.prefix}_{next(self._numbers)}"
        with self.engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        """Drop every database of this session, closing connections a hub left open."""
        with self.engine.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.created.clear()
        self.engine.dispose()


def find_server() -> PostgresServer | None:
    """The first admin URL that connects, or None when no PostgreSQL answers."""
    configured = os.environ.get("FNHUB_TEST_POSTGRES_URL")
    for url in (configured,) if configured else CANDIDATES:
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                if conn.execute(text("SELECT rolcreatedb OR rolsuper FROM pg_roles "
                                     "WHERE rolname = current_user")).scalar():
                    return PostgresServer(url)
        except OperationalError:
            continue
        finally:
            engine.dispose()
    return None
