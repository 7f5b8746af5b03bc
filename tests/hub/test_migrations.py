"""The schema comes from Alembic migrations, matches the models, and SQLite is set up right."""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, inspect, text
from sqlmodel import SQLModel

from fnhub.hub import models  # noqa: F401  (registers the tables)
from fnhub.hub.context import Hub
from fnhub.hub.db import Database, current_revision, script_head
from tests.hub.factories import Publisher


def _scripts() -> ScriptDirectory:
    return ScriptDirectory(str(resources.files("fnhub.hub") / "migrations"))


def test_the_revisions_form_one_chain() -> None:
    """Exactly one head, and a straight line from it down to 0001 through every revision."""
    scripts = _scripts()
    assert len(scripts.get_heads()) == 1, scripts.get_heads()
    line = []
    revision = scripts.get_revision(scripts.get_current_head())
    while revision is not None:
        assert not isinstance(revision.down_revision, tuple), f"{revision.revision} is a merge"
        line.append(revision.revision)
        revision = scripts.get_revision(revision.down_revision) \
            if revision.down_revision else None
    assert line[-1] == "0001"
    assert sorted(line) == sorted(rev.revision for rev in scripts.walk_revisions())


def test_the_head_read_without_alembic_is_alembics() -> None:
    assert script_head() == _scripts().get_current_head()


def test_a_database_at_the_head_starts_without_loading_alembic(tmp_path: Path) -> None:
    """Alembic (with Mako and Pygments, ~10 MiB) is loaded only when there is migrating to do;
    a database one revision behind is still brought to the head."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    db = Database(url)
    db.migrate()
    code = ("import sys\nfrom fnhub.hub.db import Database\n"
            f"Database({url!r}).migrate()\nprint('alembic' in sys.modules)")
    started = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, timeout=120)
    assert started.stdout.split() == ["False"]

    package = resources.files("fnhub.hub")
    config = Config(str(package / "alembic.ini"))
    config.set_main_option("script_location", str(package / "migrations"))
    previous = _scripts().get_revision(script_head()).down_revision
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, previous)
    assert current_revision(db.engine) == previous
    behind = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=120)
    assert behind.stdout.split() == ["True"]
    assert current_revision(db.engine) == script_head()
    db.dispose()


def test_migrations_build_the_schema_on_an_empty_database(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'new' / 'hub.db'}")
    db.migrate()
    tables = set(inspect(db.engine).get_table_names())
    assert {"users", "tokens", "namespaces", "namespace_owners", "publisher_keys", "functions",
            "function_categories", "versions", "tags", "functions_fts", "oci_repositories",
            "oci_blob_links", "oci_manifests", "oci_tags", "oci_uploads",
            "oci_upload_parts"} <= tables
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() \
            == _scripts().get_current_head()
    db.migrate()  # running again is a no-op
    db.dispose()


def test_models_match_the_migrated_schema(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'hub.db'}")
    db.migrate()
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "include_name": lambda name, type_, _: not (
                type_ == "table" and name and name.startswith("functions_fts")),
        })
        assert compare_metadata(context, SQLModel.metadata) == []
    db.dispose()


def test_sqlite_pragmas(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'hub.db'}")
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30_000
    db.dispose()


def test_concurrent_sqlite_sessions_reuse_their_connections(tmp_path: Path) -> None:
    """Guard: connections used by concurrent requests go back to the pool and are used
    again, so a second burst of 16 concurrent reads opens no connection (SQLAlchemy's default
    pool kept 5 and closed the rest, so every burst paid for opening and set-up again)."""
    database = Database(f"sqlite:///{tmp_path / 'hub.db'}")
    opened: list[object] = []
    event.listen(database.engine, "connect", lambda *_: opened.append(1))
    barrier = threading.Barrier(16)

    def read(_: int) -> int:
        with database.read() as session:
            one = int(session.execute(text("SELECT 1")).scalar_one())
            barrier.wait(timeout=10)  # all 16 sessions hold a connection at once
            return one

    try:
        with ThreadPoolExecutor(16) as pool:
            assert sum(pool.map(read, range(16))) == 16
            first = len(opened)
            assert sum(pool.map(read, range(16))) == 16
    finally:
        database.dispose()
    assert first == 16 and len(opened) == 16


def test_0008_collects_the_words_of_existing_functions(hub: Hub, alice: Publisher) -> None:
    """A hub upgraded to the typo-tolerant search corrects to its functions' words at once."""
    alice.publish("load-dataset", "1.0.0", description="Bundled tables, 150 rows",
                  categories=["data-preparation"], labels={"framework": "sklearn"})
    package = resources.files("fnhub.hub")
    config = Config(str(package / "alembic.ini"))
    config.set_main_option("script_location", str(package / "migrations"))
    with hub.db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0007")
        assert "functions_fts_terms" not in inspect(connection).get_table_names()
        command.upgrade(config, "head")
    with hub.db.engine.connect() as conn:
        words = set(conn.execute(text("SELECT term FROM functions_fts_terms")).scalars())
    assert words == {"load", "dataset", "alice", "bundled", "tables", "rows", "data",
                     "preparation", "framework", "sklearn", "job"}
