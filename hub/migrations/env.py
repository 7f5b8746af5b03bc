"""Alembic environment: runs on the connection the hub passes in, or on the configured URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

import fnhub.hub.models
import fnhub.hub.oci.models  # noqa: F401  (both register their tables on SQLModel.metadata)
from fnhub.hub.db import make_engine

target_metadata = SQLModel.metadata


def _include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Leave the full-text index (a virtual table and its shadow tables) out of autogenerate."""
    return not (type_ == "table" and name is not None and name.startswith("functions_fts"))


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_name=_include_name,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from fnhub.hub.settings import ServerSettings

    engine = make_engine(ServerSettings().database_url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run()
