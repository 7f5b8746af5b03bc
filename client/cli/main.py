"""The `hub` command (alias `fnhub`). Declares commands; the work lives in the SDK."""

from __future__ import annotations

import os
import sys
from importlib.metadata import entry_points
from typing import Annotated

import click
import typer

from fnhub import __version__
from fnhub.cli import (
    account,
    authoring,
    features,
    images,
    keys,
    pipelines,
    registry,
    running,
    scaffold,
    trusted,
)
from fnhub.core.console import error
from fnhub.core.errors import FnhubError

app = typer.Typer(
    name="hub",
    help="fnhub: search, install, verify, run and publish signed ML functions.\n\n"
         "Set FNHUB_DEBUG=1 to see tracebacks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(account.login)
app.add_typer(account.tokens_app, name="tokens")
app.command()(registry.search)
app.command()(registry.show)
app.command()(registry.install)
app.command("list")(registry.list_installed)
app.command()(registry.uninstall)
app.command()(registry.verify)
app.command()(running.run)
app.command()(authoring.init)
app.command()(scaffold.new)
app.command()(authoring.pack)
app.command()(authoring.publish)
app.command()(images.build)
app.command()(authoring.yank)
app.command()(authoring.unyank)
app.command()(authoring.tag)
app.add_typer(keys.app, name="keys")
app.add_typer(authoring.catalog_app, name="catalog")
app.add_typer(pipelines.app, name="pipeline")
app.add_typer(features.app, name="features")
app.add_typer(trusted.app, name="trusted-publisher")
for _plugin in entry_points(group="fnhub.commands"):
    _plugin.load()(app)  # the hub package adds `serve` and `admin`


def _version(value: bool) -> None:
    if value:
        print(f"fnhub {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version.")] = False,
          ) -> None:
    """fnhub: search, install, verify, run and publish signed ML functions."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors become one line and exit code 1, usage errors exit code 2."""
    try:
        app(args=argv, prog_name=os.path.basename(sys.argv[0]) or "hub", standalone_mode=False)
    except FnhubError as exc:
        if os.environ.get("FNHUB_DEBUG"):
            raise
        error(exc.message, exc.hint)
        return 1
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        error("aborted")
        return 1
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
