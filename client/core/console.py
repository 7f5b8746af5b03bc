"""How both programs' commands present results: Rich for people, JSON for scripts, one-line
errors (the client CLI and the hub's `serve`/`admin` commands share it)."""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def emit_json(data: Any) -> None:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    elif isinstance(data, list):
        data = [d.model_dump(mode="json") if isinstance(d, BaseModel) else d for d in data]
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/yellow] {message}", highlight=False)


def error(message: str, hint: str | None = None) -> None:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    if hint:
        err_console.print(f"[dim]hint:[/dim] {hint}", highlight=False, soft_wrap=True)


def failure(exc: BaseException) -> None:
    """Report a command's failure as one line (plus a hint): what both programs' entry points
    (the CLI's `main`, the hub server's `main`) print instead of a traceback."""
    from fnhub.core.errors import DEBUG_HINT, FnhubError

    if isinstance(exc, FnhubError):
        error(f"{exc.message} ({DEBUG_HINT})", exc.hint)
    elif isinstance(exc, OSError):  # a full disk, a file where a folder should be, ...
        error(f"{exc} ({DEBUG_HINT})")
    else:
        error(f"unexpected {type(exc).__name__}: {exc} ({DEBUG_HINT})",
              "please report it with the traceback")
