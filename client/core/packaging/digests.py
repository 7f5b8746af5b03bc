"""Package digests: `sha256:<hex>` strings, and hashing while streaming."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fnhub.core.errors import InvalidInput, NotFound

DIGEST_PREFIX = "sha256:"
CHUNK = 1 << 20
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class PackResult:
    digest: str  # "sha256:<hex>"
    size: int


def digest_hex(digest: str) -> str:
    """The hex part of a `sha256:<hex>` digest, lowercased; InvalidInput when it is not one."""
    if isinstance(digest, str) and digest.startswith(DIGEST_PREFIX):
        hex_part = digest[len(DIGEST_PREFIX) :].lower()
        if _HEX64.fullmatch(hex_part):
            return hex_part
    raise InvalidInput(f"invalid digest {digest!r}: expected sha256:<64 hex digits>")


class HashingWriter:
    """A write-only file object that hashes (sha256) and counts what passes through it.

    `target` may be None to only compute the digest of a stream without storing it.
    """

    def __init__(self, target: BinaryIO | None = None) -> None:
        self._target = target
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._hash.update(data)
        written = memoryview(data).nbytes
        self.size += written
        if self._target is not None:
            self._target.write(data)
        return written

    def flush(self) -> None:
        if self._target is not None:
            self._target.flush()

    def writable(self) -> bool:
        return True

    @property
    def digest(self) -> str:
        return DIGEST_PREFIX + self._hash.hexdigest()

    def result(self) -> PackResult:
        return PackResult(digest=self.digest, size=self.size)


def digest_file(path: str | Path) -> str:
    """`sha256:<hex>` of a file, read in 1 MiB chunks."""
    hasher = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                hasher.update(chunk)
    except FileNotFoundError:
        raise NotFound(f"no file at {path}") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a folder, not a file") from None
    return DIGEST_PREFIX + hasher.hexdigest()

