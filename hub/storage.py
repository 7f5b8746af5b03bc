"""Package blob storage, content-addressed by sha256.

Uploads are first *staged*: streamed into a temporary file next to the blobs, hashed and
counted on the way, and cut off with PayloadTooLarge as soon as they pass the size limit.
A staged upload is then either committed (renamed into place atomically, so a reader never
sees half a blob) or discarded. The `FileBlobStore` layout is `<root>/sha256/ab/<hex>`.

A store fails in one way only: every public method of a backend (`StorageBackend`) raises
StorageUnavailable when the storage itself fails (S3 unreachable or refusing, a full or
broken disk), never the backend's own exceptions; a missing blob is NotFound. What uploads
leave behind when a process dies (staging files, session parts) is listed by `leftovers()`
the same way for every backend, for `hub admin gc` and for tests. The OCI registry's
chunked uploads have their own protocol, `fnhub.hub.upload_parts.UploadParts`.
"""

from __future__ import annotations

import errno
import functools
import inspect
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FunctionType, TracebackType
from typing import Any, BinaryIO

from fnhub.core.errors import NotFound, PayloadTooLarge, StorageUnavailable
from fnhub.core.packaging import HashingWriter, digest_hex

CHUNK_SIZE = 1 << 16
# An OSError is the storage failing only with one of these; any other stays a bug (a 500).
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS})


@dataclass(frozen=True)
class BlobEntry:
    """A stored blob as maintenance sees it: digest, size and last modification (epoch s)."""

    digest: str
    size: int
    modified: float


@dataclass(frozen=True)
class Staged:
    """An upload waiting in staging: its temporary file, `sha256:<hex>` digest and size."""

    path: Path
    digest: str
    size: int


@dataclass(frozen=True)
class Leftover:
    """Something uploads left in the store besides blobs: a staging file, an upload
    session's object, an unfinished multipart upload. `held_by` is the session id, store
    handle or part locator that keeps it while its session lives (None: nothing does)."""

    name: str  # for people: a path, `s3://bucket/key`, `multipart upload of s3://...`
    modified: float  # epoch s
    held_by: str | None
    remove: Callable[[], None]


# -- failures ------------------------------------------------------------------------------


def storage_problem(exc: BaseException) -> str | None:
    """A short reason when `exc` is the disk failing (full, read-only, I/O error), None when
    it is something else."""
    if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
        return f"disk error: {exc.strerror}"
    return None


Problem = Callable[[BaseException], "str | None"]


def _unavailable(exc: Exception, problem: Problem) -> StorageUnavailable | None:
    """StorageUnavailable when `exc` is the storage failing, else None."""
    reason = None if isinstance(exc, StorageUnavailable) else problem(exc)
    if reason is None:
        return None
    return StorageUnavailable(f"the hub's blob storage is unavailable: {reason}",
                              hint="retry later; the hub's operator finds the details in its "
                                   "log")


@contextmanager
def failing_as_unavailable(problem: Problem = storage_problem) -> Iterator[None]:
    """Turn a storage failure inside the block into StorageUnavailable."""
    try:
        yield
    except Exception as exc:
        if (failure := _unavailable(exc, problem)) is None:
            raise
        raise failure from exc


def _guarded_chunks(chunks: Iterator[Any], problem: Problem) -> Iterator[Any]:
    with failing_as_unavailable(problem):
        yield from chunks


def guard(function: Callable[..., Any], problem: Problem | None = None) -> Callable[..., Any]:
    """`function` raising StorageUnavailable for storage failures, also while its iterator
    (a blob's chunks, a listing) is read. Without `problem`, `function` is a method and its
    class's `problem` decides."""

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        says = problem or type(args[0]).problem
        with failing_as_unavailable(says):
            result = function(*args, **kwargs)
        return _guarded_chunks(result, says) if isinstance(result, Iterator) else result

    guarded.__dict__["_storage_guarded"] = True
    return guarded


class StorageBackend:
    """Base of storage backends: every public method is guarded (see `guard`) with the
    class's `problem`, which says when an exception is the storage failing."""

    @staticmethod
    def problem(exc: BaseException) -> str | None:
        return storage_problem(exc)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in dir(cls):
            attr = inspect.getattr_static(cls, name)
            if (name.startswith("_") or not isinstance(attr, FunctionType)
                    or getattr(attr, "__isabstractmethod__", False)
                    or getattr(attr, "_storage_guarded", False)):
                continue
            setattr(cls, name, guard(attr))


def _human(size: int) -> str:
    """`100 MiB`, `1.5 GiB`: sizes as people read them in error messages."""
    units = ("bytes", "KiB", "MiB", "GiB", "TiB")
    value, unit = float(size), 0
    while value >= 1024 and unit < len(units) - 1:
        value /= 1024
        unit += 1
    return f"{value:.4g} {units[unit]}"


class StagingWriter:
    """Receives one upload chunk by chunk; `finish()` turns it into a Staged blob.

    Used as a context manager, it removes its temporary file when the block raises.
    """

    def __init__(self, fh: BinaryIO, path: Path, max_size: int | None) -> None:
        self._fh = fh
        self._path = path
        self._max_size = max_size
        self._hashing = HashingWriter(fh)

    @property
    def size(self) -> int:
        return self._hashing.size

    def write(self, data: bytes) -> None:
        if self._max_size is not None and self._hashing.size + len(data) > self._max_size:
            raise PayloadTooLarge(
                f"package is larger than the hub's limit of {_human(self._max_size)}"
            )
        with failing_as_unavailable():
            self._hashing.write(data)

    def finish(self) -> Staged:
        with failing_as_unavailable():
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
        return Staged(self._path, self._hashing.digest, self._hashing.size)

    def abort(self) -> None:
        self._fh.close()
        self._path.unlink(missing_ok=True)

    def __enter__(self) -> StagingWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self.abort()


class BlobStore(StorageBackend, ABC):
    """Where package archives and registry blobs live, addressed by `sha256:<hex>` digest."""

    # whether reading a chunk is a local file read, short enough to do on the event loop
    # (as nginx does by default) rather than hand each chunk to a worker thread
    local_reads = False

    @abstractmethod
    def writer(self, max_size: int | None = None) -> StagingWriter:
        """A new staging file to stream an upload into."""

    @abstractmethod
    def commit(self, staged: Staged) -> None:
        """Make a staged upload readable under its digest (idempotent for equal content)."""

    @abstractmethod
    def open(self, digest: str, chunk_size: int = CHUNK_SIZE, start: int = 0) -> Iterator[bytes]:
        """The blob's bytes from offset `start`, in chunks; NotFound when it is not stored."""

    @abstractmethod
    def exists(self, digest: str) -> bool: ...

    @abstractmethod
    def size(self, digest: str) -> int: ...

    @abstractmethod
    def delete(self, digest: str) -> None:
        """Remove the blob; removing a missing blob is not an error."""

    @abstractmethod
    def listing(self) -> Iterator[BlobEntry]:
        """Every stored blob (staging excluded), for fsck, gc and backups."""

    @abstractmethod
    def leftovers(self) -> Iterator[Leftover]:
        """Everything besides blobs the store holds now: staging files, upload sessions'
        parts, unfinished multipart uploads (what gc sweeps once no session holds it)."""

    def stage(self, chunks: Iterable[bytes], *, max_size: int | None = None) -> Staged:
        """Stream `chunks` into staging, hashing and enforcing `max_size` as they arrive."""
        with self.writer(max_size) as writer:
            for chunk in chunks:
                writer.write(chunk)
            return writer.finish()

    def discard(self, staged: Staged) -> None:
        """Drop a staged upload (a no-op once it was committed)."""
        staged.path.unlink(missing_ok=True)

    def download_url(self, digest: str, filename: str) -> str | None:
        """A URL clients may fetch the blob from directly, or None: the hub streams it."""
        return None


def new_writer(staging: Path, max_size: int | None) -> StagingWriter:
    """A staging file in the folder `staging` (on the local disk for every backend)."""
    fd, name = tempfile.mkstemp(prefix="upload-", suffix=".partial", dir=staging)
    return StagingWriter(os.fdopen(fd, "wb"), Path(name), max_size)


def staging_leftovers(staging: Path, *, held: bool) -> Iterator[Leftover]:
    """The files in `staging`; `held`: a live upload session may hold each (by its path)."""
    for path in sorted(staging.iterdir()):
        with suppress(FileNotFoundError):  # finished meanwhile
            yield Leftover(str(path), path.stat().st_mtime, str(path) if held else None,
                           guard(functools.partial(path.unlink, missing_ok=True),
                                 storage_problem))


class FileBlobStore(BlobStore):
    """Blobs as files under `root`; staging in `root/tmp`, on the same filesystem."""

    local_reads = True

    def __init__(self, root: Path) -> None:
        self.root = root
        self.staging = root / "tmp"
        self.staging.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        hex_part = digest_hex(digest)
        return self.root / "sha256" / hex_part[:2] / hex_part

    def writer(self, max_size: int | None = None) -> StagingWriter:
        return new_writer(self.staging, max_size)

    def commit(self, staged: Staged) -> None:
        self.place(staged.path, staged.digest)

    def place(self, path: Path | str, digest: str) -> None:
        """Rename a finished file into place as blob `digest` (atomic: same filesystem)."""
        final = self.path(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, final)

    def open(self, digest: str, chunk_size: int = CHUNK_SIZE, start: int = 0) -> Iterator[bytes]:
        try:
            fh = self.path(digest).open("rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in storage") from None
        fh.seek(start)
        return _read_and_close(fh, chunk_size)

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in storage") from None

    def delete(self, digest: str) -> None:
        with suppress(FileNotFoundError):
            self.path(digest).unlink()

    def listing(self) -> Iterator[BlobEntry]:
        for path in sorted((self.root / "sha256").glob("*/*")):
            with suppress(FileNotFoundError):  # deleted meanwhile
                stat = path.stat()
                yield BlobEntry(f"sha256:{path.name}", stat.st_size, stat.st_mtime)

    def leftovers(self) -> Iterator[Leftover]:
        """The staging files: an upload session's parts are staged files it holds."""
        return staging_leftovers(self.staging, held=True)


def read_chunks(fh: BinaryIO, chunk_size: int = CHUNK_SIZE,
                size: int | None = None) -> Iterator[bytes]:
    """`size` bytes (or all) from `fh`'s position, in chunks; `fh` stays open."""
    left = size
    while left is None or left > 0:
        chunk = fh.read(chunk_size if left is None else min(chunk_size, left))
        if not chunk:
            return
        if left is not None:
            left -= len(chunk)
        yield chunk


def _read_and_close(fh: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    with fh:
        yield from read_chunks(fh, chunk_size)


def read_path(path: Path, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    with path.open("rb") as fh:
        yield from read_chunks(fh, chunk_size)
