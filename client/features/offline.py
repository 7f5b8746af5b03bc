"""The offline store: the registry of applied feature sets and their Parquet datasets.

Layout under the store's root (a folder or `s3://bucket/prefix`):

    registry/<set>.json                                 the applied version: digest, schema, pins
    data/<set>/<version>/event_date=<YYYY-MM-DD>/part-<ingest>-<n>.parquet
    data/<set>/<version>/_commits/<ingest>.json          one per finished ingest: its files

An ingest streams record batches into new Parquet files, one per event date, then writes its
commit file; readers only read files that a commit file lists. So a failed ingest (which
deletes what it wrote) or a killed one (whose files no commit names) leaves nothing visible,
and a finished one becomes visible at once, whole.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from pydantic import BaseModel, Field, ValidationError

from fnhub.core.errors import ManifestError, NotFound, format_validation_error
from fnhub.core.featureset import FeatureSetManifest, FeatureSetSpec, parse_featureset
from fnhub.core.names import check_name
from fnhub.features.schema import INGEST, ROW, arrow_schema, conform
from fnhub.features.storage import PARQUET, Location, open_location

MAX_OPEN_FILES = 32  # partitions written at once by one ingest; older ones are closed
# Rows of a date are held until they fill a Parquet row group of this many: an ingest's
# batches spread over many dates (a few thousand rows each), and DuckDB scans row groups that
# small at half the speed. What all dates hold at once stays under BUFFER_BYTES (the largest
# is written first).
ROW_GROUP_ROWS = 65_536
BUFFER_BYTES = 32 << 20
Progress = Callable[[int], None]  # called with the rows just written


class Pin(BaseModel):
    """A transform function fixed at apply time: the exact URI (version and digest)."""

    uri: str
    digest: str


class AppliedSet(BaseModel):
    """What `apply` recorded for a feature set name in this store."""

    name: str
    namespace: str
    version: str
    digest: str
    source: str  # the URI or folder it was applied from
    manifest: dict[str, Any]
    transform: Pin | None = None
    verified: bool = True  # False for a local folder or an --insecure-skip-verify install
    applied_at: datetime

    @cached_property
    def featureset(self) -> FeatureSetManifest:
        """Parsed once per entry: the feature server reads the spec on every request."""
        return parse_featureset(self.manifest, source=f"registry entry {self.name}")

    @property
    def spec(self) -> FeatureSetSpec:
        return self.featureset.spec


class CommitFile(BaseModel):
    # relative to the dataset folder, as `_Writers` names it: a commit file of a shared
    # store must not reach other folders (`..`) or match several files (DuckDB globs paths)
    path: str = Field(pattern=r"^event_date=\d{4}-\d{2}-\d{2}/part-[0-9A-Za-z_-]+\.parquet$")
    date: date
    rows: int


class Commit(BaseModel):
    ingest: int
    rows: int
    files: list[CommitFile]
    committed_at: datetime


def new_ingest_id() -> int:
    """Later ingests get higher ids (the last tie-break among equal rows)."""
    return time.time_ns()


@dataclass
class _Held:
    """Rows of one date waiting for their row group."""

    tables: list[pa.Table] = field(default_factory=list)
    rows: int = 0
    nbytes: int = 0

    def add(self, table: pa.Table) -> None:
        self.tables.append(table)
        self.rows += table.num_rows
        self.nbytes += table.nbytes


class _Writers:
    """One Parquet writer per event date, at most MAX_OPEN_FILES open at once."""

    def __init__(self, location: Location, folder: str, ingest: int, schema: pa.Schema,
                 part: int | None = None) -> None:
        self.location, self.folder, self.schema = location, folder, schema
        # the files of a distributed ingest's parts are named apart
        self.ingest = str(ingest) if part is None else f"{ingest}-{part}"
        self.open: OrderedDict[date, tuple[pq.ParquetWriter, Any, CommitFile]] = OrderedDict()
        self.files: list[CommitFile] = []
        self.held: dict[date, _Held] = {}  # rows not yet in a row group, by date

    def write(self, day: date, table: pa.Table) -> None:
        """Add `table` (rows of `day` that own their buffers: held rows must not keep a
        whole batch alive) to the date's file."""
        if day not in self.open:
            if len(self.open) >= MAX_OPEN_FILES:
                self._close(next(iter(self.open)))
            rel = (f"event_date={day.isoformat()}/part-{self.ingest}-{len(self.files)}"
                   ".parquet")
            path = f"{self.folder}/{rel}"
            self.location.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
            sink = self.location.fs.open_output_stream(path)
            record = CommitFile(path=rel, date=day, rows=0)
            self.files.append(record)
            self.open[day] = (pq.ParquetWriter(sink, self.schema), sink, record)
        self.open.move_to_end(day)
        self.open[day][2].rows += table.num_rows
        held = self.held.setdefault(day, _Held())
        held.add(table)
        if held.rows >= ROW_GROUP_ROWS:
            self._flush(day)
        while sum(h.nbytes for h in self.held.values()) > BUFFER_BYTES:  # a few dozen dates
            self._flush(max(self.held, key=lambda d: self.held[d].nbytes))

    def _flush(self, day: date) -> None:
        """Write the rows held for `day` as one row group."""
        held = self.held.pop(day, None)
        if held is not None:
            self.open[day][0].write_table(pa.concat_tables(held.tables))

    def _close(self, day: date) -> None:
        self._flush(day)
        writer, sink, _record = self.open.pop(day)
        writer.close()
        sink.close()

    def close(self) -> None:
        while self.open:
            self._close(next(iter(self.open)))

    def discard(self) -> None:
        self.held.clear()
        for writer, sink, _record in self.open.values():
            for closeable in (writer, sink):
                with suppress(Exception):  # cleaning up after the real error
                    closeable.close()
        self.open.clear()
        for record in self.files:
            self.location.delete(f"{self.folder}/{record.path}")


class OfflineStore:
    def __init__(self, url: str) -> None:
        self.location = open_location(url)
        # name -> (file stamp, entry): a local registry file is parsed again only when it
        # changes (every online lookup reads the entries of its sets)
        self._entries: dict[str, tuple[tuple[int, ...], AppliedSet]] = {}

    @property
    def url(self) -> str:
        return self.location.url

    # -- registry -------------------------------------------------------------------------

    def _entry(self, name: str) -> str:
        return self.location.path("registry", f"{name}.json")

    def applied(self) -> list[AppliedSet]:
        return [AppliedSet.model_validate(self.location.read_json(path))
                for path in self.location.list(self.location.path("registry"), ".json")]

    def get(self, name: str) -> AppliedSet:
        """The applied set called `name`."""
        check_name(name)  # before it becomes a path
        path = self._entry(name)
        stamp = self.location.stamp(path)
        cached = self._entries.get(name)
        if stamp is not None and cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            applied = AppliedSet.model_validate(self.location.read_json(path))
        except NotFound:
            known = ", ".join(a.name for a in self.applied()) or "none"
            raise NotFound(f"no feature set {name!r} is applied in {self.url}",
                           hint=f"applied sets: {known}; apply one with "
                                "`hub features apply URI`") from None
        if stamp is not None:
            self._entries[name] = (stamp, applied)
        return applied

    def save(self, applied: AppliedSet) -> None:
        self.location.write_json(self._entry(applied.name), applied.model_dump(mode="json"))

    # -- datasets -------------------------------------------------------------------------

    def dataset_folder(self, applied: AppliedSet) -> str:
        return self.location.path("data", applied.name, applied.version)

    def commits(self, applied: AppliedSet) -> list[Commit]:
        folder = f"{self.dataset_folder(applied)}/_commits"
        commits = []
        for path in self.location.list(folder, ".json"):
            try:
                commits.append(Commit.model_validate(self.location.read_json(path)))
            except ValidationError as exc:
                raise ManifestError(f"{path} is not a commit this store wrote: "
                                    f"{format_validation_error(exc)}") from None
        return commits

    def files(self, applied: AppliedSet, commits: Iterable[Commit], *,
              first: date | None = None, last: date | None = None) -> list[str]:
        """The committed files whose event date is within [first, last] (bounds optional)."""
        return self.paths(applied, self.records(commits, first=first, last=last))

    def paths(self, applied: AppliedSet, records: Iterable[CommitFile]) -> list[str]:
        """Where the committed files `records` name are, in the set's dataset."""
        folder = self.dataset_folder(applied)
        return [f"{folder}/{f.path}" for f in records]

    @staticmethod
    def records(commits: Iterable[Commit], *, first: date | None = None,
                last: date | None = None) -> list[CommitFile]:
        """`files`, as their commit records (with their row counts)."""
        return [f for c in commits for f in c.files
                if (first is None or f.date >= first) and (last is None or f.date <= last)]

    def dataset(self, applied: AppliedSet, files: list[str]) -> pads.Dataset:
        return pads.dataset(files, schema=arrow_schema(applied.spec), format=PARQUET,
                            filesystem=self.location.fs)

    def ingest(self, applied: AppliedSet, batches: Iterable[pa.RecordBatch], *,
               progress: Progress | None = None) -> int:
        """Check and write `batches`, then commit them; returns the rows written.

        Nothing becomes visible before the commit file is written; on any error the files
        written so far are deleted."""
        ingest = new_ingest_id()
        rows, files = self.write_part(applied, ingest, batches, progress=progress)
        try:
            self.commit(applied, ingest, rows, files)
        except BaseException:
            self.delete_files(applied, files)
            raise
        return rows

    def write_part(self, applied: AppliedSet, ingest: int, batches: Iterable[pa.RecordBatch],
                   *, first_row: int = 0, part: int | None = None,
                   progress: Progress | None = None) -> tuple[int, list[CommitFile]]:
        """Write one part of an ingest (rows numbered from `first_row`), uncommitted: its
        rows and files. On error, the part's files are deleted."""
        spec = applied.spec
        writers = _Writers(self.location, self.dataset_folder(applied), ingest,
                           arrow_schema(spec), part)
        where = f"ingest into {applied.name}"
        rows = 0
        try:
            for batch in batches:
                table = conform(batch, spec, where)
                if not table.num_rows:
                    continue
                table = table.append_column(INGEST, pa.array(
                    np.full(table.num_rows, ingest, np.int64)))
                start_row = first_row + rows
                table = table.append_column(ROW, pa.array(
                    np.arange(start_row, start_row + table.num_rows, dtype=np.int64)))
                days = pc.cast(table.column(spec.timestamp), pa.date32())
                order = pc.sort_indices(days)
                start = 0
                for entry in pc.value_counts(days.take(order)).to_pylist():  # in order
                    count = entry["counts"]
                    writers.write(entry["values"], table.take(order.slice(start, count)))
                    start += count
                rows += table.num_rows
                if progress:
                    progress(table.num_rows)
            writers.close()
        except BaseException:
            writers.discard()
            raise
        return rows, writers.files

    def commit(self, applied: AppliedSet, ingest: int, rows: int,
               files: list[CommitFile]) -> None:
        """Make written parts visible at once: one commit file naming all their files."""
        if not rows:
            return
        commit = Commit(ingest=ingest, rows=rows, files=files,
                        committed_at=datetime.now(timezone.utc))
        self.location.write_json(
            f"{self.dataset_folder(applied)}/_commits/{ingest:020d}-{uuid.uuid4().hex[:8]}.json",
            commit.model_dump(mode="json"))

    def delete_files(self, applied: AppliedSet, files: Iterable[CommitFile]) -> None:
        """Remove written but uncommitted files (after another part failed)."""
        folder = self.dataset_folder(applied)
        for record in files:
            with suppress(Exception):  # cleaning up after the real error
                self.location.delete(f"{folder}/{record.path}")
