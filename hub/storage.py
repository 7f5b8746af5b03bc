"""Package blob storage, content-addressed by sha256.

Uploads are first *staged*: streamed into a temporary file next to the blobs, hashed and
counted on the way, and cut off with PayloadTooLarge as soon as they pass the size limit.
A staged upload is then either committed (renamed into place atomically, so a reader never
sees half a blob) or discarded. The `FileBlobStore` layout is `<root>/sha256/ab/<hex>`.
"""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from fnhub.core.errors import NotFound, PayloadTooLarge
from fnhub.core.packaging import HashingWriter, digest_hex

CHUNK_SIZE = 1 << 16


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
class Part:
    """A received chunk of an upload session: where the store keeps it, digest and size."""

    locator: str
    digest: str
    size: int


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
        self._hashing.write(data)

    def finish(self) -> Staged:
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


class BlobStore(ABC):
    """Where package archives live, addressed by their `sha256:<hex>` digest."""

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

    # A chunked upload (OCI sessions) keeps its received chunks as *parts* until it is
    # closed. Parts are recorded in the database (so any replica can go on with the session);
    # a part's locator and the session's handle are the store's own, opaque to everyone else.

    def open_session(self, name: str) -> str | None:
        """Begin upload session `name`; a handle to record with it (None: nothing to record)."""
        return None

    @abstractmethod
    def add_part(self, session: UploadSession, parts: list[Part],
                 staged: Staged) -> tuple[list[Part], list[Part]]:
        """Keep a received chunk after `parts`: (the new parts, the earlier ones they absorb).

        The store takes the staged file over. Absorbed parts stay readable until the caller,
        having recorded the change, drops them.
        """

    @abstractmethod
    def drop_parts(self, session: UploadSession, parts: list[Part]) -> None:
        """Remove parts (missing ones are not an error)."""

    @abstractmethod
    def close_session(self, session: UploadSession, parts: list[Part], *,
                      digest: str | None = None, max_size: int | None = None) -> Part:
        """The session's bytes as one part whose digest covers them all: `digest` when the
        caller knows it (they came in one chunk, hashed on arrival), else hashed again.
        NotFound when parts are gone."""

    @abstractmethod
    def commit_part(self, part: Part) -> None:
        """Store a closed session's part, whose digest is known, as that digest's blob."""

    @abstractmethod
    def abort_session(self, session: UploadSession, parts: list[Part]) -> None:
        """Remove everything the session holds in the store."""

    @abstractmethod
    def sweep(self, live: LiveUploads, cutoff: float) -> list[str]:
        """Remove upload leftovers older than `cutoff` (epoch s) that no live session holds,
        as a crashed process leaves them; returns what was removed, for people."""


@dataclass(frozen=True)
class UploadSession:
    """An upload session as the store knows it: its name and the handle `open_session` gave."""

    name: str
    handle: str | None = None


@dataclass(frozen=True)
class LiveUploads:
    """What the sessions in the database hold, which `sweep` must keep."""

    sessions: frozenset[str]
    handles: frozenset[str]
    locators: frozenset[str]


class FileBlobStore(BlobStore):
    """Blobs as files under `root`; staging in `root/tmp`, on the same filesystem."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        hex_part = digest_hex(digest)
        return self.root / "sha256" / hex_part[:2] / hex_part

    def writer(self, max_size: int | None = None) -> StagingWriter:
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".partial", dir=self._tmp)
        return StagingWriter(os.fdopen(fd, "wb"), Path(name), max_size)

    def commit(self, staged: Staged) -> None:
        final = self.path(staged.digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.path, final)

    def open(self, digest: str, chunk_size: int = CHUNK_SIZE, start: int = 0) -> Iterator[bytes]:
        try:
            fh = self.path(digest).open("rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in storage") from None
        fh.seek(start)
        return _read_and_close(fh, chunk_size)

    def add_part(self, session: UploadSession, parts: list[Part],
                 staged: Staged) -> tuple[list[Part], list[Part]]:
        """The staged file stays where it is: the data dir is this hub's alone."""
        return [Part(str(staged.path), staged.digest, staged.size)], []

    def drop_parts(self, session: UploadSession, parts: list[Part]) -> None:
        for part in parts:
            Path(part.locator).unlink(missing_ok=True)

    def close_session(self, session: UploadSession, parts: list[Part], *,
                      digest: str | None = None, max_size: int | None = None) -> Part:
        if len(parts) == 1:
            return parts[0]
        for part in parts:
            if not Path(part.locator).is_file():
                raise NotFound(f"upload part {part.locator} is gone")
        staged = self.stage(chain.from_iterable(read_path(Path(p.locator))
                                                for p in parts), max_size=max_size)
        return Part(str(staged.path), staged.digest, staged.size)

    def commit_part(self, part: Part) -> None:
        final = self.path(part.digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part.locator, final)

    def abort_session(self, session: UploadSession, parts: list[Part]) -> None:
        self.drop_parts(session, parts)

    def sweep(self, live: LiveUploads, cutoff: float) -> list[str]:
        removed = []
        for path in self.staging():
            with suppress(FileNotFoundError):
                if str(path) not in live.locators and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed.append(str(path))
        return removed

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

    def blobs(self) -> list[str]:
        """The digests of all stored blobs (for maintenance and tests)."""
        return sorted(f"sha256:{p.name}" for p in (self.root / "sha256").glob("*/*"))

    def staging(self) -> list[Path]:
        """Uploads currently in staging."""
        return sorted(self._tmp.iterdir())


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
