"""Progress bars for long transfers, drawn on stderr only when it is a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, BinaryIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

Advance = Callable[[int], None]


@contextmanager
def _bar(description: str, total: int | None, columns: tuple[Any, ...]) -> Iterator[Advance]:
    """A transient bar on stderr when it is a terminal; otherwise nothing is drawn."""
    if not sys.stderr.isatty():
        yield lambda _n: None
        return
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def transfer(description: str, total: int | None) -> AbstractContextManager[Advance]:
    return _bar(description, total, (TextColumn("{task.description}"), BarColumn(),
                                     DownloadColumn(), TransferSpeedColumn()))


def rows(description: str) -> AbstractContextManager[Advance]:
    """A running count of rows (ingests, materializations)."""
    return _bar(description, None, (SpinnerColumn(), TextColumn("{task.description}"),
                                     MofNCompleteColumn(), TextColumn("rows"),
                                     TimeElapsedColumn()))


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
