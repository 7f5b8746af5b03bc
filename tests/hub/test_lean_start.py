"""What `hub serve` keeps in memory (issue #15: its peak RSS under a registry load < 100 MiB):
the modules only some requests need are imported by the first such request, and a first
start migrates in a child process, so none of them sit in an API- or registry-only hub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from fnhub.core.errors import InternalError
from fnhub.hub.commands.serve import SERVER_PROGRAM
from fnhub.hub.db import Database, current_revision, script_head
from fnhub.hub.server import migrate_apart
from fnhub.hub.settings import ServerSettings
from tests.helpers import HUB_BIN, start_hub

CLI_MODULES = ("typer", "rich.console", "fnhub.cli.main")  # uvicorn itself imports click

# Loaded on demand: the web catalog (Jinja2, Markdown, nh3), migrations (Alembic, Mako,
# Pygments), the OIDC issuers' HTTP client, PostgreSQL's dialect on SQLite, PyYAML.
ON_DEMAND = ("jinja2", "markdown_it", "nh3", "fnhub.hub.web.routes", "alembic", "mako",
             "pygments", "httpx", "sqlalchemy.dialects.postgresql", "yaml")

# A fresh interpreter does what `hub serve` does before serving (a first start: the
# database is new), answers requests through the ASGI app (no HTTP client, which would
# import httpx), and prints which of ON_DEMAND were loaded before and after a page.
_SERVE = """
import asyncio, json, sys
from pathlib import Path
from fnhub.hub.app import create_app
from fnhub.hub.server import migrate_apart
from fnhub.hub.settings import ServerSettings

ON_DEMAND = {on_demand!r}

async def get(app, path, accept):
    sent = []
    async def receive():
        return {{"type": "http.request", "body": b"", "more_body": False}}
    async def send(message):
        sent.append(message)
    await app({{"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
               "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1",
               "headers": [(b"host", b"hub"), (b"accept", accept.encode())],
               "server": ("hub", 80), "client": ("127.0.0.1", 1), "asgi": {{"version": "3.0"}}}},
              receive, send)
    return sent[0]["status"]

def loaded():
    return [m for m in ON_DEMAND if m in sys.modules]

settings = ServerSettings(data_dir=Path({data_dir!r}))
migrate_apart(settings)
app = create_app(settings)
paths = ("/healthz", "/api/v1/functions", "/v2/", "/v2/a/b/blobs/sha256:" + "0" * 64, "/api/x")
statuses = [asyncio.run(get(app, path, "*/*")) for path in paths]
before = loaded()
page = asyncio.run(get(app, "/", "text/html"))
print(json.dumps([statuses, before, page, loaded()]))
"""


def test_serving_the_api_and_the_registry_loads_no_on_demand_module(tmp_path: Path) -> None:
    """The API, the registry and their 404s answer without any of ON_DEMAND; the first
    catalog page loads the catalog (and is served)."""
    code = _SERVE.format(on_demand=ON_DEMAND, data_dir=str(tmp_path / "hub"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    statuses, before, page, after = json.loads(done.stdout.splitlines()[-1])
    assert statuses == [200, 200, 401, 404, 404]
    assert before == []
    assert page == 200
    assert {"jinja2", "markdown_it", "nh3", "fnhub.hub.web.routes"} <= set(after)


def test_a_first_start_migrates_in_a_child_process(tmp_path: Path) -> None:
    """The database is brought to the head by `migrate_apart` (the test above shows Alembic
    never enters the server); a database at the head is left alone."""
    settings = ServerSettings(data_dir=tmp_path / "hub")
    migrate_apart(settings)
    db = Database(settings.database_url)
    assert current_revision(db.engine) == script_head()
    assert not db.migration_due()
    migrate_apart(settings)  # nothing to do: returns without starting a child
    db.dispose()


def test_a_failed_migration_is_one_line(tmp_path: Path) -> None:
    """The child's error (here: a revision this version does not know) ends `hub serve` with
    a one-line message, not the child's traceback."""
    settings = ServerSettings(data_dir=tmp_path / "hub")
    migrate_apart(settings)
    db = Database(settings.database_url)
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))
    db.dispose()
    with pytest.raises(InternalError) as failed:
        migrate_apart(settings)
    assert "migrating the database failed" in failed.value.message
    assert "from_the_future" in failed.value.message
    assert "\n" not in failed.value.message


def test_hub_serve_replaces_the_cli_with_the_server_program(tmp_path: Path) -> None:
    """The process `hub serve` started is, once serving, the server program (same pid, by
    exec), and that program imports none of the CLI's libraries."""
    hub = start_hub(tmp_path / "hub")
    try:
        argv = Path(f"/proc/{hub.proc.pid}/cmdline").read_bytes().split(b"\0")
    finally:
        hub.stop()
    assert argv[-3:] == [b"-c", SERVER_PROGRAM.encode(), b""]
    code = ("import sys\nimport fnhub.hub.server\n"
            f"print([m for m in {CLI_MODULES!r} if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.split() == ["[]"]


def test_a_failure_in_the_server_program_is_one_line(tmp_path: Path) -> None:
    """Seeding runs in the server program: a catalog that cannot be published ends
    `hub serve` with exit status 1 and the CLI's one-line error, not a traceback."""
    catalog = tmp_path / "catalog"
    (catalog / "broken").mkdir(parents=True)
    (catalog / "broken" / "function.yaml").write_text("apiVersion: [unclosed\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FNHUB_")}
    env["FNHUB_SERVER_CATALOG_DIR"] = str(catalog)
    done = subprocess.run([HUB_BIN, "serve", "--data-dir", str(tmp_path / "hub"), "--port", "0",
                           "--seed-catalog"], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]  # after the log lines of the start
    assert last.startswith("error: ") and "function.yaml" in last
    assert "Traceback" not in done.stderr
