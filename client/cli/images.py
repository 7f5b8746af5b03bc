"""`hub build`: a function's container image, through the Docker Engine API."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from fnhub.cli import context
from fnhub.core.console import console, emit_json, err_console


def log(line: str) -> None:
    """Build and push progress, on stderr (stdout stays for results and --json)."""
    err_console.print(Text(line, style="dim"), highlight=False, soft_wrap=True)


def build(
    directory: Annotated[Path, typer.Argument(help="The function folder.")] = Path("."),
    push: Annotated[bool, typer.Option(
        "--push", help="Push to the hub's registry as HOST/NS/NAME:VERSION.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Build the function's container image (Docker, or Podman's service, via DOCKER_HOST).

    Examples: `hub build ./my_fn`, `hub build ./my_fn --push`
    """
    from fnhub.build import build_function_image  # the docker SDK, only when building

    cfg = context.config()
    hub = context.default_hub(cfg) if push else cfg.hubs[0]
    with tempfile.TemporaryDirectory(prefix="fnhub-build-") as tmp:
        built = build_function_image(directory, hub, Path(tmp), push=push, log=log)
    if as_json:
        emit_json({"image": str(built.ref), "id": built.image_id, "digest": built.digest})
    elif built.digest:
        console.print(f"pushed {built.ref}@{built.digest}")
    else:
        console.print(f"built {built.ref} ({built.image_id})")
