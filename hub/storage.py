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

from fnhub.errors import NotFound, PayloadTooLarge
from fnhub.packaging import HashingWriter, digest_hex

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

    # A chunked upload (OCI sessions) keeps its received chunks as *parts* until it
    # completes; a part's locator, returned by `save_part`, is recorded in the database.

    @abstractmethod
    def save_part(self, staged: Staged, name: str) -> str:
        """Keep a staged chunk as part `name` of an upload session; returns its locator.

        The part takes the staged file over: the caller does not discard it afterwards.
        """

    @abstractmethod
    def read_part(self, locator: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """A part's bytes; NotFound when it is gone."""

    @abstractmethod
    def drop_part(self, locator: str) -> None:
        """Remove a part (a missing one is not an error)."""

    @abstractmethod
    def commit_part(self, part: Part) -> None:
        """Store a part, whose digest was computed as it arrived, as that digest's blob."""

    def assemble(self, parts: list[Part], *, max_size: int | None = None) -> Staged:
        """A session's parts, in order, as one staged upload (streamed and hashed again)."""
        return self.stage(chain.from_iterable(self.read_part(p.locator) for p in parts),
                          max_size=max_size)


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
        return _read_chunks(fh, chunk_size)

    def save_part(self, staged: Staged, name: str) -> str:
        """The staged file stays where it is: the data dir is this hub's alone."""
        return str(staged.path)

    def read_part(self, locator: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        path = Path(locator)
        if not path.is_file():
            raise NotFound(f"upload part {locator} is gone")
        return _read_path(path, chunk_size)

    def drop_part(self, locator: str) -> None:
        Path(locator).unlink(missing_ok=True)

    def commit_part(self, part: Part) -> None:
        final = self.path(part.digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part.locator, final)

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


def _read_chunks(fh: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    with fh:
        while chunk := fh.read(chunk_size):
            yield chunk


def _read_path(path: Path, chunk_size: int) -> Iterator[bytes]:
    with path.open("rb") as fh:
        yield from _read_chunks(fh, chunk_size)
