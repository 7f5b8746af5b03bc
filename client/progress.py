"""Progress bars for long transfers, drawn on stderr only when it is a terminal.

Rich's progress machinery loads only when a bar is drawn: a download in a script or a test
(stderr not a terminal) does not pay for importing it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import BinaryIO

Advance = Callable[[int], None]


@contextmanager
def _bar(description: str, total: int | None, *, rows: bool = False) -> Iterator[Advance]:
    """A transient bar on stderr when it is a terminal; otherwise nothing is drawn."""
    if not sys.stderr.isatty():
        yield lambda _n: None
        return
    from rich import progress as rp
    from rich.console import Console

    columns = ((rp.SpinnerColumn(), rp.TextColumn("{task.description}"), rp.MofNCompleteColumn(),
                rp.TextColumn("rows"), rp.TimeElapsedColumn()) if rows else
               (rp.TextColumn("{task.description}"), rp.BarColumn(), rp.DownloadColumn(),
                rp.TransferSpeedColumn()))
    with rp.Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def transfer(description: str, total: int | None) -> AbstractContextManager[Advance]:
    return _bar(description, total)


def rows(description: str) -> AbstractContextManager[Advance]:
    """A running count of rows (ingests, materializations)."""
    return _bar(description, None, rows=True)


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
