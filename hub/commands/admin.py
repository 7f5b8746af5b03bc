"""`hub admin`: operate a hub directly on its database and blob store (not over HTTP).

Run it where the hub's settings apply (`FNHUB_SERVER_*`, or the options below). The hub's
modules load inside each command, so `hub --help` stays fast.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fnhub.core.console import console, emit_json, error
from fnhub.core.errors import VerificationError

if TYPE_CHECKING:
    from fnhub.hub.context import Hub

app = typer.Typer(help="Maintain a hub's storage and database: migrate, fsck, gc, backup, "
                       "restore, rotate-index-key.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
DataDirOpt = Annotated[Path | None, typer.Option(help="The hub's data dir.")]
DatabaseOpt = Annotated[str | None, typer.Option(help="The hub's SQLAlchemy URL.")]
StorageOpt = Annotated[str | None, typer.Option(help="The hub's blob store.")]


def _open_hub(data_dir: Path | None, database_url: str | None, storage_url: str | None) -> Hub:
    """The hub these settings describe, its database migrated (as `hub serve` would)."""
    from fnhub.hub.context import Hub
    from fnhub.hub.settings import ServerSettings

    overrides = {"data_dir": data_dir, "database_url": database_url, "storage_url": storage_url}
    return Hub.open(ServerSettings(**{k: v for k, v in overrides.items() if v is not None}))


@app.command()
def migrate(data_dir: DataDirOpt = None, database_url: DatabaseOpt = None,
            storage_url: StorageOpt = None) -> None:
    """Bring the database schema to this version's newest revision, then exit.

    Hubs migrate on start too; deployments run this once before rolling out replicas.
    Example: `hub admin migrate --database-url postgresql+psycopg://fnhub@db/fnhub`
    """
    _open_hub(data_dir, database_url, storage_url).close()
    console.print("database schema is up to date")


@app.command()
def fsck(data_dir: DataDirOpt = None, database_url: DatabaseOpt = None,
         storage_url: StorageOpt = None, as_json: JsonOpt = False) -> None:
    """Re-hash every stored blob and check every version's and manifest's blob is there.

    Exits 1 when it finds a problem. Example: `hub admin fsck --data-dir /srv/fnhub`
    """
    from fnhub.hub.services import maintenance

    hub = _open_hub(data_dir, database_url, storage_url)
    try:
        report = maintenance.fsck(hub)
    finally:
        hub.close()
    checked = f"{report.blobs_checked} blobs and {report.rows_checked} rows"
    if as_json:
        emit_json({**asdict(report), "ok": report.ok})
    else:
        for problem in report.problems:
            error(f"{problem.kind}: {problem.detail}")
        if report.ok:
            console.print(f"checked {checked}: ok")
    if not report.ok:
        raise VerificationError(f"fsck found {len(report.problems)} problems in {checked}",
                                hint="restore the damaged blobs from a backup")


@app.command()
def gc(data_dir: DataDirOpt = None, database_url: DatabaseOpt = None,
       storage_url: StorageOpt = None,
       grace: Annotated[int, typer.Option(
           min=0, help="Keep unreferenced blobs younger than this many seconds (uploads "
                       "in flight).")] = 3600,
       dry_run: Annotated[bool, typer.Option(
           "--dry-run", help="Only list the blobs; sweep no upload leftovers.")] = False,
       as_json: JsonOpt = False) -> None:
    """Delete blobs that no version, OCI blob link or manifest references, and what
    abandoned uploads left (expired sessions, staging files, S3 multipart uploads).

    Example: `hub admin gc --grace 86400 --dry-run`
    """
    from fnhub.hub.services import maintenance

    hub = _open_hub(data_dir, database_url, storage_url)
    try:
        report = maintenance.gc(hub, timedelta(seconds=grace), dry_run=dry_run)
    finally:
        hub.close()
    if as_json:
        emit_json(asdict(report))
        return
    verb = "would delete" if dry_run else "deleted"
    for digest in report.deleted:
        console.print(f"{verb} {digest}")
    for leftover in report.leftovers_removed:
        console.print(f"removed upload leftover {leftover}")
    if report.uploads_expired:
        console.print(f"expired {report.uploads_expired} stale upload sessions")
    console.print(f"{verb} {len(report.deleted)} blobs ({report.bytes_freed} bytes); kept "
                  f"{report.kept_referenced} referenced and {report.kept_recent} recent ones")


@app.command()
def backup(directory: Annotated[Path, typer.Argument(help="A new folder for the backup.")],
           data_dir: DataDirOpt = None, database_url: DatabaseOpt = None,
           storage_url: StorageOpt = None,
           blobs: Annotated[bool, typer.Option(
               "--blobs/--no-blobs", help="Copy the blobs too (leave out when the blob store "
                                          "is backed up on its own).")] = True,
           as_json: JsonOpt = False) -> None:
    """Save the database (every table, as JSON lines) and the blobs its rows need.

    Example: `hub admin backup /backups/fnhub-2024-11-30`
    """
    from fnhub.hub.services import backup as backups

    hub = _open_hub(data_dir, database_url, storage_url)
    try:
        report = backups.backup(hub, directory, blobs=blobs)
    finally:
        hub.close()
    if as_json:
        emit_json(asdict(report))
    else:
        console.print(f"backed up {sum(report.rows.values())} rows and {report.blobs} blobs "
                      f"({report.blob_bytes} bytes) to {report.path}")


@app.command()
def restore(directory: Annotated[Path, typer.Argument(help="A folder `backup` wrote.")],
            data_dir: DataDirOpt = None, database_url: DatabaseOpt = None,
            storage_url: StorageOpt = None, as_json: JsonOpt = False) -> None:
    """Load a backup into a hub whose database is still empty.

    Example: `hub admin restore /backups/fnhub-2024-11-30 --database-url postgresql+psycopg://...`
    """
    from fnhub.hub.services import backup as backups

    hub = _open_hub(data_dir, database_url, storage_url)
    try:
        counts = backups.restore(hub, directory)
    finally:
        hub.close()
    if as_json:
        emit_json({"rows": counts})
    else:
        console.print(f"restored {sum(counts.values())} rows from {directory}")


@app.command("rotate-index-key")
def rotate_index_key(data_dir: DataDirOpt = None, database_url: DatabaseOpt = None,
                     storage_url: StorageOpt = None, as_json: JsonOpt = False) -> None:
    """Replace the hub's index key by a new one that the old key signs over (clients that
    pinned the old key follow the chain at /api/v1/index-key).

    The new key is written where the current one is (FNHUB_SERVER_INDEX_KEY or the data
    dir's index-key.pem); restart every replica with it: until then they refuse to sign.
    Example: `hub admin rotate-index-key --data-dir /srv/fnhub`
    """
    from fnhub.hub.services import index

    hub = _open_hub(data_dir, database_url, storage_url)
    try:
        rotation = index.rotate(hub)
    finally:
        hub.close()
    if as_json:
        emit_json({"previous": rotation.previous, "keyid": rotation.keyid,
                   "path": str(rotation.path)})
    else:
        console.print(f"index key rotated: {rotation.previous} -> {rotation.keyid}, written "
                      f"to {rotation.path}; restart every replica with it")
