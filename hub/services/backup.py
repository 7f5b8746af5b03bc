"""`hub admin backup DIR` / `restore DIR`: the database as JSON lines plus the blobs it needs.

A backup folder holds:

    backup.json              format, schema revision, source dialect, row and blob counts
    tables/<table>.jsonl     every row of every table, one JSON object per line
    blobs.jsonl              the blob manifest: {"digest", "size"} of every blob a row needs
    blobs/sha256/ab/<hex>    those blobs (left out with blobs=False, when the blob store
                             is backed up on its own, e.g. a versioned S3 bucket)

The dump is portable (SQLite to PostgreSQL and back), streams row by row, reads one
consistent snapshot, and is written into `DIR.partial` first, renamed into place when
complete. Transient tables (upload sessions, rate-limit counters) are left out.

Restore goes into a hub whose database is empty and migrated to the same schema revision:
blobs first (each verified against its digest), then every row in one transaction, then
the search index is rebuilt and PostgreSQL's id sequences moved past the restored ids.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic.migration import MigrationContext
from sqlalchemy import Connection, DateTime, Table, func, insert, select, text
from sqlmodel import Session, SQLModel

from fnhub.core.errors import DigestMismatch, InvalidInput, NotFound
from fnhub.core.files import write_atomic
from fnhub.core.packaging import digest_hex
from fnhub.hub.context import Hub
from fnhub.hub.models import Function, Namespace
from fnhub.hub.services import functions
from fnhub.hub.services.maintenance import references

FORMAT = "fnhub-backup/1"
TRANSIENT = frozenset({"oci_uploads", "oci_upload_parts", "rate_limit_windows"})
BATCH = 500
CHUNK = 1 << 20


@dataclass(frozen=True)
class BackupReport:
    path: Path
    revision: str
    rows: dict[str, int]
    blobs: int
    blob_bytes: int


def _tables() -> list[Table]:
    """The tables to save, parents before children (the order restore inserts them in)."""
    return [t for t in SQLModel.metadata.sorted_tables if t.name not in TRANSIENT]


def _is_datetime(column: Any) -> bool:
    kind = column.type
    return isinstance(kind, DateTime) or isinstance(getattr(kind, "impl", None), DateTime)


def _encode(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _blob_path(root: Path, digest: str) -> Path:
    hex_part = digest_hex(digest)
    return root / "blobs" / "sha256" / hex_part[:2] / hex_part


def _revision(connection: Connection) -> str:
    revision = MigrationContext.configure(connection).get_current_revision()
    if revision is None:
        raise InvalidInput("the hub's database has no schema yet")
    return revision


def _copy_blob(hub: Hub, digest: str, dest: Path) -> int:
    """Stream a blob into `dest` (temp file + rename), checking it hashes to its digest."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    sha, size = hashlib.sha256(), 0
    with tmp.open("wb") as fh:
        for chunk in hub.store.open(digest):
            sha.update(chunk)
            size += len(chunk)
            fh.write(chunk)
    if "sha256:" + sha.hexdigest() != digest:
        tmp.unlink()
        raise DigestMismatch(f"blob {digest} in storage does not hash to its digest",
                             hint="run `hub admin fsck`, then restore or remove it")
    os.replace(tmp, dest)
    return size


def backup(hub: Hub, dest: Path, *, blobs: bool = True) -> BackupReport:
    """Write a backup of the hub into the new folder `dest`."""
    if dest.exists():
        raise InvalidInput(f"{dest} exists already: back up into a new folder")
    work = dest.with_name(dest.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    (work / "tables").mkdir(parents=True)
    rows: dict[str, int] = {}
    try:
        with hub.db.snapshot() as session:
            revision = _revision(session.connection())
            for table in _tables():
                rows[table.name] = 0
                with (work / "tables" / f"{table.name}.jsonl").open("w") as fh:
                    result = session.execute(select(table).execution_options(yield_per=BATCH))
                    for row in result.mappings():
                        fh.write(json.dumps({k: _encode(v) for k, v in row.items()}) + "\n")
                        rows[table.name] += 1
            needed = {ref.digest: ref.size for ref in references(session)}
        count = total = 0
        with (work / "blobs.jsonl").open("w") as fh:
            for digest in sorted(needed):
                size = _copy_blob(hub, digest, _blob_path(work, digest)) if blobs \
                    else needed[digest]
                fh.write(json.dumps({"digest": digest, "size": size}) + "\n")
                count, total = count + 1, total + size
        meta = {"format": FORMAT, "created_at": datetime.now().astimezone().isoformat(),
                "revision": revision, "dialect": hub.db.dialect, "rows": rows,
                "blobs": count, "blob_bytes": total, "blobs_included": blobs}
        write_atomic(work / "backup.json", json.dumps(meta, indent=2).encode())
        os.replace(work, dest)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return BackupReport(dest, revision, rows, count, total)


# --------------------------------------------------------------------------- restore


def _read_meta(src: Path) -> dict[str, Any]:
    try:
        meta = json.loads((src / "backup.json").read_text())
    except FileNotFoundError:
        raise NotFound(f"{src} is not a hub backup (no backup.json)") from None
    except ValueError as exc:
        raise InvalidInput(f"{src / 'backup.json'} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InvalidInput(f"{src} is not a backup this hub reads (expected format {FORMAT})")
    return meta


def _manifest(src: Path) -> Iterator[tuple[str, int]]:
    with (src / "blobs.jsonl").open() as fh:
        for line in fh:
            entry = json.loads(line)
            yield str(entry["digest"]), int(entry["size"])


def _restore_blobs(hub: Hub, src: Path) -> int:
    """Put every blob of the manifest into the store (those already there are kept)."""
    restored = 0
    for digest, size in _manifest(src):
        if hub.store.exists(digest):
            continue
        path = _blob_path(src, digest)
        if not path.is_file():
            raise NotFound(f"blob {digest} is neither in the backup nor in the hub's storage")
        with path.open("rb") as fh:
            staged = hub.store.stage(iter(lambda: fh.read(CHUNK), b""))
        if staged.digest != digest or staged.size != size:
            hub.store.discard(staged)
            raise DigestMismatch(f"the backup's copy of blob {digest} is damaged "
                                 f"(it hashes to {staged.digest})")
        hub.store.commit(staged)
        restored += 1
    return restored


def _rows(src: Path, table: Table) -> Iterator[list[dict[str, Any]]]:
    """The table's saved rows in batches, typed back (timestamps)."""
    stamps = [c.name for c in table.columns if _is_datetime(c)]
    path = src / "tables" / f"{table.name}.jsonl"
    if not path.is_file():
        return
    batch: list[dict[str, Any]] = []
    with path.open() as fh:
        for line in fh:
            row = json.loads(line)
            for name in stamps:
                if row.get(name) is not None:
                    row[name] = datetime.fromisoformat(row[name])
            batch.append(row)
            if len(batch) == BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def _reset_sequences(session: Session, tables: list[Table]) -> None:
    """Move PostgreSQL's id sequences past the restored ids."""
    for table in tables:
        key = list(table.primary_key.columns)
        if len(key) != 1 or key[0].name != "id" or not key[0].autoincrement:
            continue
        if key[0].type.python_type is not int:
            continue
        session.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
            f"COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM {table.name}"))


def restore(hub: Hub, src: Path) -> dict[str, int]:
    """Load a backup into this hub's empty database and storage; returns rows per table."""
    meta = _read_meta(src)
    tables = _tables()
    known = {t.name for t in tables}
    saved = {p.stem for p in (src / "tables").glob("*.jsonl")}
    if unknown := sorted(saved - known):
        raise InvalidInput(f"the backup has tables this hub does not know: {', '.join(unknown)}")
    with hub.db.read() as session:
        revision = _revision(session.connection())
        filled = [t.name for t in tables
                  if session.execute(select(func.count()).select_from(t)).scalar()]
    if meta.get("revision") != revision:
        raise InvalidInput(f"the backup is of schema revision {meta.get('revision')}, this "
                           f"hub's database is at {revision}",
                           hint="restore with the fnhub version that made the backup, then "
                                "upgrade")
    if filled:
        raise InvalidInput(f"the hub's database is not empty ({', '.join(filled)} hold rows)",
                           hint="restore into a fresh database (a new data dir or database "
                                "URL) before the hub first starts")
    _restore_blobs(hub, src)
    counts: dict[str, int] = {}
    with hub.db.write() as session:
        for table in tables:
            counts[table.name] = 0
            for batch in _rows(src, table):
                session.execute(insert(table), batch)
                counts[table.name] += len(batch)
        if hub.db.dialect == "postgresql":
            _reset_sequences(session, tables)
        cards = session.execute(select(Function, Namespace.name).join(Namespace)).all()
        for function, namespace in cards:
            functions.refresh(session, function, namespace)
    return counts
