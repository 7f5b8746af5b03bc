"""Small file-system helpers both programs rely on for crash safety."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO


def _umask(status_file: Path = Path("/proc/self/status")) -> int:
    """The process's umask, read without changing it (os.umask would, for every thread);
    the usual 022 where the system does not show it."""
    with suppress(OSError, StopIteration, ValueError):
        status = status_file.read_text().splitlines()
        return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    return 0o022


@contextmanager
def atomic_output(path: Path, mode: int | None = None) -> Iterator[BinaryIO]:
    """A file whose content appears at `path` only once it is complete and on disk.

    Readers never see half a file and a crash leaves the old one. The temporary sibling is
    private (mkstemp's 0600) until it is renamed, so a key is never readable by others, even for
    a moment. `mode` is applied whatever the umask (a key, a package); without it the file gets
    what `open` would give (0666 less the umask). On any failure the temporary file is removed
    and the error goes on.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """`atomic_output` for bytes at hand."""
    with atomic_output(path, mode) as fh:
        fh.write(data)
