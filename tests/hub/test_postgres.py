"""The hub on PostgreSQL: migrations and models, constraints, the pool, and full-text search.

The whole search suite (tests/hub/test_search.py: ranking, prefixes, hostile queries,
filters, paging, the index following versions) runs here again, unchanged, on a fresh
PostgreSQL database per test: this module's `settings` fixture points the hub there.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from fnhub.hub import models  # noqa: F401  (registers the tables)
from fnhub.hub.context import Hub
from fnhub.hub.db import Database
from fnhub.hub.services import search
from fnhub.hub.settings import ServerSettings
from tests.hub.test_search import (  # noqa: F401  (collected again, on PostgreSQL)
    catalog,
    library,
    test_a_typo_finds_the_library_dataset_function,
    test_bad_parameters_are_400,
    test_filters,
    test_fts_syntax_in_q_never_errors,
    test_index_follows_yank_and_new_versions,
    test_library_ranks_first_among_equals,
    test_one_typo_finds_what_was_meant,
    test_only_a_search_that_finds_nothing_is_corrected,
    test_pages_follow_the_promised_order_however_they_are_read,
    test_relevance_prefers_name_matches,
    test_search_service_checks_its_arguments,
    test_sorting_and_paging,
    test_summary_fields,
    test_the_longest_unknown_query_is_answered,
    test_ties_break_by_downloads,
    test_words_are_prefixes_and_all_must_match,
)
from tests.postgres import PostgresServer

# (columns) each table must keep unique, by a constraint or primary key
UNIQUE = {
    "users": {("name",)}, "namespaces": {("name",)}, "tokens": {("token_hash",)},
    "namespace_owners": {("namespace_id", "user_id")},
    "publisher_keys": {("namespace_id", "keyid")}, "functions": {("namespace_id", "name")},
    "function_categories": {("function_id", "category")},
    "versions": {("function_id", "version")}, "tags": {("function_id", "name")},
    "oci_repositories": {("name",)}, "oci_blob_links": {("repository_id", "digest")},
    "oci_manifests": {("repository_id", "digest")}, "oci_tags": {("repository_id", "name")},
    "trusted_publishers": {("namespace_id", "issuer", "repository", "workflow", "ref",
                            "environment")},
    "oidc_token_uses": {("issuer", "jti")}, "rate_limit_windows": {("key", "window_start")},
    "functions_fts": {("function_id",)}, "functions_fts_terms": {("term",)},
    "index_keys": {("keyid",)},
}


@pytest.fixture
def settings(tmp_path: Path, postgres: PostgresServer) -> ServerSettings:
    return ServerSettings(data_dir=tmp_path / "data", max_package_size=256 * 1024,
                          database_url=postgres.create_database(), db_pool_size=3,
                          db_max_overflow=2, db_pool_recycle=600)


@pytest.fixture
def database(postgres: PostgresServer) -> Database:
    db = Database(postgres.create_database())
    db.migrate()
    return db


def test_migrations_match_the_models(database: Database) -> None:
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "include_name": lambda name, type_, _: not (
                type_ == "table" and name and name.startswith("functions_fts")),
        })
        assert compare_metadata(context, SQLModel.metadata) == []
    database.migrate()  # a no-op the second time
    database.dispose()


def test_every_uniqueness_rule_is_a_constraint(database: Database) -> None:
    inspector = inspect(database.engine)
    for table, wanted in UNIQUE.items():
        have = {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)}
        have.add(tuple(inspector.get_pk_constraint(table)["constrained_columns"]))
        assert wanted <= have, (table, have)
    [index] = inspector.get_indexes("functions_fts")
    assert index["column_names"] == ["document"]
    assert index["dialect_options"]["postgresql_using"] == "gin"
    with database.engine.begin() as conn:
        conn.execute(text("INSERT INTO users (name, created_at) VALUES ('u', now())"))
        with pytest.raises(IntegrityError, match="uq_users_name"):
            conn.execute(text("INSERT INTO users (name, created_at) VALUES ('u', now())"))
    database.dispose()


def test_replicas_starting_together_migrate_once(postgres: PostgresServer) -> None:
    url = postgres.create_database()
    databases = [Database(url) for _ in range(3)]
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(Database.migrate, databases))
    with databases[0].engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    for db in databases:
        db.dispose()


def test_the_pool_follows_the_settings(hub: Hub) -> None:
    pool = hub.db.engine.pool
    assert (pool.size(), pool._max_overflow, pool._recycle, pool._pre_ping) == (3, 2, 600, True)
    with hub.db.read() as session:
        name = session.execute(text("SELECT current_setting('application_name')")).scalar()
    assert name == "fnhub-hub"


def test_the_query_reaching_postgresql_is_bare_words() -> None:
    assert search.ts_query(search.terms("foo_bar Baz-9 'x':* & !(y)")) == (
        "foo:* & bar:* & baz:* & 9:* & x:* & y:*")
    assert search.ts_query(search.terms("___")) == ""
