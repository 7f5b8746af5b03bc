"""The `hub` command (alias `fnhub`). Declares commands; the work lives in the SDK.

Commands load lazily: `COMMANDS` names each one's module, so `hub --version` and `hub --help`
import neither the commands nor what they use (httpx, docker, pydantic models, pipelines).
Adding a command is one line in `COMMANDS`. The hub package contributes `serve` and `admin`
the same way, through the `fnhub.commands` entry point (a callable returning such a table).

Errors are turned into one line here, and only here: usage errors (exit 2) from whichever
click typer uses (typer >= 0.22 bundles its own as `typer._click`), fnhub errors and anything
unexpected (exit 1; `FNHUB_DEBUG=1` re-raises for the traceback).
"""

from __future__ import annotations

import os
import sys
from difflib import get_close_matches
from importlib import import_module
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from fnhub.core import __version__
from fnhub.core.errors import DEBUG_HINT

# name -> ("module:attribute", one-line help shown by `hub --help`). The attribute is a
# `typer.Typer` (a command group) or a function (one command).
COMMANDS: dict[str, tuple[str, str]] = {
    "login": ("fnhub.cli.account:login", "Save a hub URL and token in config.toml (mode "
                                         "0600), after checking them."),
    "tokens": ("fnhub.cli.account:tokens_app", "Create, list and revoke API tokens."),
    "search": ("fnhub.cli.registry:search", "Search the configured hubs, in order; each result "
                                            "names its hub."),
    "show": ("fnhub.cli.registry:show", "Show a function's card: versions, inputs and "
                                        "outputs, and how to use it."),
    "install": ("fnhub.cli.registry:install", "Install functions after verifying their "
                                              "signatures and digests."),
    "list": ("fnhub.cli.registry:list_installed", "List installed functions."),
    "uninstall": ("fnhub.cli.registry:uninstall", "Remove installed versions of a function "
                                                  "(all of them unless a version is given)."),
    "verify": ("fnhub.cli.registry:verify", "Check a published version (signature, key trust, "
                                            "package digest) and, when it is installed, the "
                                            "installed files against the digest recorded at "
                                            "install."),
    "run": ("fnhub.cli.running:run", "Run a function and print its outputs."),
    "init": ("fnhub.cli.authoring:init", "Write a function.yaml for a folder."),
    "new": ("fnhub.cli.scaffold:new", "Create a function or pipeline project from a template "
                                      "(cookiecutter)."),
    "pack": ("fnhub.cli.authoring:pack", "Build the deterministic package archive and print "
                                         "its sha256 digest."),
    "publish": ("fnhub.cli.authoring:publish", "Sign and publish a function folder to the hub."),
    "build": ("fnhub.cli.images:build", "Build the function's container image (Docker, or "
                                        "Podman's service, via DOCKER_HOST)."),
    "yank": ("fnhub.cli.authoring:yank", "Hide a version from ranges and `latest` (exact pins "
                                         "still install, with a warning)."),
    "unyank": ("fnhub.cli.authoring:unyank", "Make a yanked version available again."),
    "tag": ("fnhub.cli.authoring:tag", "Point a tag at a version."),
    "keys": ("fnhub.cli.keys:app", "Manage signing keys and trust."),
    "catalog": ("fnhub.cli.authoring:catalog_app", "Publish a curated catalog of functions."),
    "pipeline": ("fnhub.cli.pipelines:app", "Run, inspect, lock and export pipelines "
                                            "(pipeline.yaml)."),
    "features": ("fnhub.cli.features:app", "The feature store: feature sets from the hub, "
                                           "point-in-time training data, online features."),
    "trusted-publisher": ("fnhub.cli.trusted:app", "Trusted publishing: CI workflows that "
                                                   "publish with their OIDC token."),
}
PLUGIN_GROUP = "fnhub.commands"


def _plugin_commands() -> dict[str, tuple[str, str]]:
    """The tables of the `fnhub.commands` entry points (the hub's `serve` and `admin`)."""
    from importlib.metadata import entry_points

    table: dict[str, tuple[str, str]] = {}
    for plugin in entry_points(group=PLUGIN_GROUP):
        table.update(plugin.load()())
    return table


def _escape_markup(command: Any) -> None:
    """Help texts are plain text: under typer's rich markup, `[@sha256:HEX]` would vanish and
    `[/PREFIX]` would crash `--help`, so brackets are escaped once, where commands load."""
    if getattr(command, "rich_markup_mode", None) != "rich":
        return
    from rich.markup import escape

    for obj in (command, *command.params):
        for attr in ("help", "short_help"):
            if getattr(obj, attr, None):
                setattr(obj, attr, escape(getattr(obj, attr)))
    for sub in getattr(command, "commands", {}).values():
        _escape_markup(sub)


def load_command(name: str, target: str) -> Any:
    """The click command `module:attribute` describes, named `name`."""
    module, _, attr = target.partition(":")
    obj = getattr(import_module(module), attr)
    if isinstance(obj, typer.Typer):
        command = typer.main.get_group(obj)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(obj)
        command = typer.main.get_command(single)
    command.name = name
    _escape_markup(command)
    return command


class LazyGroup(TyperGroup):
    """The root group: lists commands from the static tables, imports one only to run it or
    to show its own help."""

    _listing = False

    def _table(self, name: str | None = None) -> dict[str, tuple[str, str]]:
        if name in COMMANDS:
            return COMMANDS
        return {**COMMANDS, **_plugin_commands()}

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self._table())

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        entry = self._table(cmd_name).get(cmd_name)
        if entry is None:
            return None
        if self._listing:  # `hub --help`: the one-line help from the table is enough
            return TyperCommand(cmd_name, help=entry[1], short_help=entry[1])
        return load_command(cmd_name, entry[0])

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            close = get_close_matches(name, self.list_commands(ctx), n=1)
            ctx.fail(f"no such command {name!r}"
                     + (f"; did you mean {close[0]!r}?" if close else ""))
        return super().resolve_command(ctx, args)


app = typer.Typer(
    name="hub",
    cls=LazyGroup,
    help="fnhub: search, install, verify, run and publish signed ML functions.\n\n"
         "Example: `hub search describe`, then `hub run hub://describe:^1 -i table=iris.csv`."
         "\n\nSet FNHUB_DEBUG=1 to see tracebacks.",
    no_args_is_help=True,
    rich_markup_mode=None,  # `hub --help` in plain text: rich's help layout costs 0.3 s to import
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"fnhub {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version.")) -> None:
    """fnhub: search, install, verify, run and publish signed ML functions."""


def _click_exceptions() -> Any:
    """The exceptions module of the click typer runs on: typer's own copy (`typer._click`) in
    new versions, the `click` package in old ones. typer re-exports BadParameter from it."""
    return sys.modules[typer.BadParameter.__module__]


def _usage_error(exc: Any) -> int:
    """One line, and where the usage is explained; exit code 2."""
    from fnhub.core.console import error

    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:  # `hub keys`: the help
        sys.stdout.write(ctx.get_help() + "\n")
        return 2
    # typer words a bad choice (a Literal option) as pydantic does: drop its "Value error, ".
    message = exc.format_message().strip().replace("\n", " ").replace("Value error, ", "")
    where = ctx.command_path if ctx is not None else "hub"
    error(message[:1].lower() + message[1:], f"`{where} --help` shows the usage")
    return 2


def main(argv: list[str] | None = None) -> int:
    """Run the CLI: usage errors exit 2, failures exit 1, each as one line (plus a hint)."""
    click_exc = _click_exceptions()
    # Old typers re-export click's Exit and Abort; new ones have their own (and click's none).
    exits = (typer.Exit, getattr(click_exc, "Exit", typer.Exit))
    aborts = (typer.Abort, getattr(click_exc, "Abort", typer.Abort))
    debug = bool(os.environ.get("FNHUB_DEBUG"))
    try:
        command = typer.main.get_command(app)
        program = os.path.basename(sys.argv[0])
        result = command.main(args=argv, prog_name=program if program == "fnhub" else "hub",
                              standalone_mode=False)
    except exits as exc:
        return exc.exit_code
    except click_exc.UsageError as exc:
        return _usage_error(exc)
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    except Exception as exc:  # one place turns every failure into one line
        if debug:
            raise
        return _failure(exc, click_exc, aborts)
    return result if isinstance(result, int) else 0


def _failure(exc: Exception, click_exc: Any, aborts: tuple[type, ...]) -> int:
    from fnhub.core.console import error, failure

    if isinstance(exc, aborts):
        error(f"aborted ({DEBUG_HINT})")
    elif isinstance(exc, click_exc.ClickException):
        error(f"{exc.format_message()} ({DEBUG_HINT})")
    else:
        failure(exc)
    return 1


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
