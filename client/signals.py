"""Stop signals for a child we supervise (a serving function in its own session or container)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def forward_stop_signals(send: Callable[[int], None], *, enabled: bool) -> Iterator[None]:
    """SIGINT/SIGTERM to us reach the child (through `send`) exactly once, so a serving function
    (in its own session or container, away from the terminal's signals) shuts down cleanly and
    reports back."""
    if not enabled:
        yield
        return

    def forward(signum: int, _frame: object) -> None:
        send(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
