"""`hub serve`: open the hub, seed the catalog once, then serve HTTP with uvicorn."""

from __future__ import annotations

import ctypes
import logging
import os
import subprocess
import sys
from pathlib import Path

import uvicorn

from fnhub.core.errors import InternalError
from fnhub.core.signing import key_id
from fnhub.hub import logs
from fnhub.hub.app import create_app
from fnhub.hub.db import Database
from fnhub.hub.services import seed
from fnhub.hub.settings import ServerSettings

logger = logging.getLogger("fnhub.hub")


def main() -> None:
    """The server process of `hub serve` (`fnhub.hub.commands.serve.SERVER_PROGRAM`): its
    settings, seeding included, from the environment; a failure before serving is one line
    and exit status 1, as the CLI reports errors."""
    try:
        serve(ServerSettings())
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)
    except Exception as exc:  # as the CLI's `main` reports them
        if os.environ.get("FNHUB_DEBUG"):
            raise
        from fnhub.core.console import failure

        failure(exc)
        sys.exit(1)


def serve(settings: ServerSettings, seed_catalog: Path | None = None) -> None:
    """Run the hub until interrupted; `seed_catalog` (or settings.catalog_dir) is published first.

    Seeding errors (say, a catalog function changed without a version bump) are raised as
    fnhub errors before the server starts listening.
    """
    logs.configure(settings.log_format, settings.log_level)
    one_malloc_arena()
    migrate_apart(settings)
    app = create_app(settings)
    logger.info("index key %s (%s)", key_id(app.state.hub.index_key.public_key()),
                settings.index_key_path())
    catalog = seed_catalog or settings.catalog_dir
    if catalog is not None:
        for result in seed.seed_catalog(app.state.hub, catalog):
            logger.info("catalog: %s %s (%s)", result.ref, result.status, result.digest)
    if settings.log_format == "text":  # a person is reading: the plain banner
        sys.stdout.write(banner(settings, app.state.admin_token_file))
        sys.stdout.flush()
    else:  # a log collector is: every line stays JSON, the banner is one record
        logger.info("%s", " ".join(banner(settings, app.state.admin_token_file).split()))
    # uvicorn's loggers go through the hub's format; the hub logs access lines itself.
    # No WebSocket routes: ws="none" spares loading the websockets package (~0.5 MiB).
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                log_config=None, access_log=False, ws="none")


M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def one_malloc_arena() -> None:
    """Have every thread allocate from glibc's main malloc arena.

    By default each thread that allocates gets an arena of its own (up to 8 per core), and
    each keeps what the blob I/O threads freed (the 256 KiB chunks of a pull, uvloop's
    resolver threads' buffers) for itself: a 4-layer skopeo push and pull then grew the
    hub's RSS by ~7 MiB over idle, ~4.5 MiB with one arena (bench/oci_peer.py). The threads
    mostly wait for the GIL or for I/O, so sharing one arena costs no measurable throughput.
    Where malloc is not glibc's, nothing is changed."""
    if sys.platform != "linux":
        return
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(M_ARENA_MAX, 1)


# The child's whole program (`migrate_child`): the URL comes through the environment, never
# the command line (where `ps` would show a password in it).
_MIGRATE = "from fnhub.hub.server import migrate_child; migrate_child()"


def migrate_apart(settings: ServerSettings) -> None:
    """Run a due migration in a child process, so Alembic, Mako and Pygments (~10 MiB, and
    what they allocate) never enter the memory of the long-running server; `create_app` then
    finds the database at the head and imports none of them. The child logs to the same
    stderr in the same format; its failure is raised here as one line."""
    db = Database(settings.database_url, settings.pool_options())
    try:
        due = db.migration_due()
    finally:
        db.dispose()
    if not due:
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "FNHUB_SERVER_DATABASE_URL": settings.database_url,
           "FNHUB_SERVER_LOG_FORMAT": settings.log_format,
           "FNHUB_SERVER_LOG_LEVEL": settings.log_level}
    done = subprocess.run([sys.executable, "-c", _MIGRATE], env=env, stdout=subprocess.PIPE,
                          text=True, check=False)
    if done.returncode != 0:
        last = (done.stdout.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise InternalError(f"migrating the database failed: {last}")


def migrate_child() -> None:
    """`migrate_apart`'s child: migrates, logging as the server does; a failure is one line
    on stdout (for the parent's error) and exit status 1."""
    settings = ServerSettings()
    logs.configure(settings.log_format, settings.log_level)
    try:
        Database(settings.database_url).migrate()
    except Exception as exc:  # the parent reports it; the traceback would be noise
        print(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}")
        sys.exit(1)


def banner(settings: ServerSettings, admin_token_file: Path | None) -> str:
    """What a person starting the hub needs: where it answers, where the admin token is (never
    the token), and how to stop it. Printed as is with text logs, as one record with JSON."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    url = (settings.public_url or f"http://{host}:{settings.port}").rstrip("/")
    token = (f"{admin_token_file.resolve()} (mode 0600): "
             f"export FNHUB_TOKEN=$(cat {admin_token_file.resolve()})"
             if admin_token_file else "the value of FNHUB_SERVER_ADMIN_TOKEN")
    return (f"\n  fnhub hub on {url}  (web catalog at /, API at /api/v1, docs at /docs)\n"
            f"  clients:     export FNHUB_HUB={url}\n"
            f"  admin token: {token}\n"
            f"  stop:        Ctrl-C\n\n")
