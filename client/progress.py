"""Progress bars for long transfers, drawn on stderr only when it is a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TransferSpeedColumn,
)

Advance = Callable[[int], None]


@contextmanager
def transfer(description: str, total: int | None) -> Iterator[Advance]:
    if not sys.stderr.isatty():
        yield lambda _n: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


class CountingReader:
    """Wraps a file so that each read advances a progress bar (for streamed uploads)."""

    def __init__(self, fh: BinaryIO, advance: Advance) -> None:
        self._fh = fh
        self._advance = advance

    def read(self, size: int = -1) -> bytes:
        chunk = self._fh.read(size)
        self._advance(len(chunk))
        return chunk

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(1 << 16):
            yield chunk
