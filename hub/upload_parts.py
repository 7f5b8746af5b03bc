"""The parts of the OCI registry's chunked uploads, as the blob store keeps them.

A chunked upload (an OCI session) keeps its received chunks as *parts* until it is closed.
Parts are recorded in the database (so any replica can go on with the session); a part's
locator and the session's handle are the backend's own, opaque to everyone else. On disk
a part is a staged file; in S3, a part of the session's multipart upload (see
`fnhub.hub.s3storage.S3UploadParts`). The blob store itself (`fnhub.hub.storage.BlobStore`)
knows nothing of sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Protocol

from fnhub.core.errors import NotFound
from fnhub.hub.storage import FileBlobStore, Leftover, Staged, StorageBackend, read_path


@dataclass(frozen=True)
class Part:
    """A received chunk of an upload session: where the store keeps it, digest and size."""

    locator: str
    digest: str
    size: int


@dataclass(frozen=True)
class UploadSession:
    """An upload session as the store knows it: its name and the handle `open_session` gave."""

    name: str
    handle: str | None = None


@dataclass(frozen=True)
class LiveUploads:
    """What the sessions in the database hold, which gc must keep."""

    sessions: frozenset[str]
    handles: frozenset[str]
    locators: frozenset[str]

    def hold(self, leftover: Leftover) -> bool:
        return leftover.held_by is not None and (
            leftover.held_by in self.sessions or leftover.held_by in self.handles
            or leftover.held_by in self.locators)


class UploadParts(Protocol):
    """How a backend keeps the parts of upload sessions, until they become one blob."""

    def open_session(self, name: str) -> str | None:
        """Begin upload session `name`; a handle to record with it (None: nothing to record)."""

    def add_part(self, session: UploadSession, parts: list[Part],
                 staged: Staged) -> tuple[list[Part], list[Part]]:
        """Keep a received chunk after `parts`: (the new parts, the earlier ones they absorb).

        The store takes the staged file over. Absorbed parts stay readable until the caller,
        having recorded the change, drops them.
        """

    def drop_parts(self, session: UploadSession, parts: list[Part]) -> None:
        """Remove parts (missing ones are not an error)."""

    def close_session(self, session: UploadSession, parts: list[Part], *,
                      digest: str | None = None, max_size: int | None = None) -> Part:
        """The session's bytes as one part whose digest covers them all: `digest` when the
        caller knows it (they came in one chunk, hashed on arrival), else hashed again.
        NotFound when parts are gone."""

    def commit_part(self, part: Part) -> None:
        """Store a closed session's part, whose digest is known, as that digest's blob."""

    def abort_session(self, session: UploadSession, parts: list[Part]) -> None:
        """Remove everything the session holds in the store."""


class FileUploadParts(StorageBackend):
    """Parts as the staged files themselves: the data dir is this hub's alone."""

    def __init__(self, store: FileBlobStore) -> None:
        self.store = store

    def open_session(self, name: str) -> str | None:
        return None

    def add_part(self, session: UploadSession, parts: list[Part],
                 staged: Staged) -> tuple[list[Part], list[Part]]:
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
        staged = self.store.stage(chain.from_iterable(read_path(Path(p.locator))
                                                      for p in parts), max_size=max_size)
        return Part(str(staged.path), staged.digest, staged.size)

    def commit_part(self, part: Part) -> None:
        self.store.place(part.locator, part.digest)

    def abort_session(self, session: UploadSession, parts: list[Part]) -> None:
        self.drop_parts(session, parts)
