"""Revision 0002 adds the registry's tables to a hub that already holds data, and goes back."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text

from fnhub.hub.db import Database

OCI_TABLES = {"oci_repositories", "oci_blob_links", "oci_manifests", "oci_tags",
              "oci_uploads", "oci_upload_parts"}


def _run(db: Database, action: str, revision: str) -> None:
    package = resources.files("fnhub.hub")
    config = Config(str(package / "alembic.ini"))
    config.set_main_option("script_location", str(package / "migrations"))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def test_upgrade_from_0001_keeps_data_and_downgrade_removes_the_tables(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'hub.db'}")
    _run(db, "upgrade", "0001")
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO namespaces (name, created_at) VALUES ('alice', "
                          "'2024-01-01 00:00:00')"))
    assert not OCI_TABLES & set(inspect(db.engine).get_table_names())
    db.migrate()
    assert set(inspect(db.engine).get_table_names()) >= OCI_TABLES
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO oci_repositories (name, namespace_id, created_at) "
                          "VALUES ('alice/app', 1, '2024-01-02 00:00:00')"))
        assert conn.execute(text("SELECT name FROM namespaces")).scalar() == "alice"
    _run(db, "downgrade", "0001")
    assert not OCI_TABLES & set(inspect(db.engine).get_table_names())
    db.dispose()
