"""`hub run`: run a function from the hub or a local folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from fnhub.core.console import console, emit_json, warn
from fnhub.core.errors import InvalidInput
from fnhub.function import import_function


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InvalidInput(f"{flag} {item!r}: expected NAME=VALUE")
        out[name] = value
    return out


def run(
    uri: Annotated[str, typer.Argument(help="hub://[NS/]NAME[:VERSION] or a local folder.")],
    param: Annotated[list[str] | None, typer.Option(
        "-p", "--param", help="A parameter, NAME=VALUE (lists and dicts as JSON).")] = None,
    input_: Annotated[list[str] | None, typer.Option(
        "-i", "--input", help="An input artifact, NAME=PATH.")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default: under FNHUB_HOME/runs)."
                                                )] = None,
    env: Annotated[Literal["current", "venv", "container"], typer.Option(
        help="current (this Python), venv (its own, cached) or container (its published "
             "image, through DOCKER_HOST's Docker or Podman).")] = "current",
    insecure_skip_verify: Annotated[bool, typer.Option("--insecure-skip-verify")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Run a function and print its outputs.

    Examples:
      `hub run hub://load-dataset -p name=wine`
      `hub run hub://describe:^1 -i table=iris.csv -p bins=10 --json`
      `hub run hub://describe:^1 -i table=iris.csv --env container`
    """
    params = _pairs(param or [], "-p")
    artifacts = _pairs(input_ or [], "-i")
    both = set(params) & set(artifacts)
    if both:
        raise InvalidInput(f"{sorted(both)[0]!r} is given both as -p and -i")
    fn = import_function(uri, insecure_skip_verify=insecure_skip_verify, warn=warn)
    result = fn.run(env=env, out_dir=out, **params, **artifacts)
    if as_json:
        emit_json(result.to_json())
        return
    table = Table("output", "value", title=f"{fn.manifest.ref} ({result.duration:.2f}s)")
    for name, value in result.outputs.items():
        table.add_row(name, str(value))
    console.print(table)
    console.print(f"[dim]run folder: {result.run_dir}[/dim]")
