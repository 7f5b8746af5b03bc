"""Every command and subcommand of `hub`, found by walking the CLI itself (so a new command is
covered the day it is added): `--help` works and shows an example; a missing argument, an
unknown option and a bad value are usage errors (exit 2, at most three lines on stderr, no
traceback); and a failure never prints a traceback unless FNHUB_DEBUG=1, while its error line
says how to get one."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest
import typer

from fnhub.cli import main as cli
from tests.helpers import CLI, HUB_BIN, free_port

# Commands a sweep must not start: they serve until stopped.
_BLOCKING = {("serve",), ("features", "serve")}


def _walk(command: Any, path: tuple[str, ...], ctx: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    if hasattr(command, "list_commands"):
        sub_ctx = command.make_context(path[-1] if path else "hub", ["--help"],
                                       parent=ctx, resilient_parsing=True)
        for name in command.list_commands(sub_ctx):
            yield from _walk(command.get_command(sub_ctx, name), (*path, name), sub_ctx)


def _commands() -> list[tuple[tuple[str, ...], Any]]:
    return list(_walk(typer.main.get_command(cli.app), (), None))


COMMANDS = _commands()
LEAVES = [(path, cmd) for path, cmd in COMMANDS if not hasattr(cmd, "list_commands")]


def _ids(items: list[tuple[tuple[str, ...], Any]]) -> list[str]:
    return [" ".join(path) or "hub" for path, _ in items]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _assert_usage_error(code: int, err: str, argv: tuple[str, ...]) -> None:
    assert code == 2, f"hub {' '.join(argv)}: exit {code}\n{err}"
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 3, f"hub {' '.join(argv)}:\n{err}"
    assert lines[0].startswith("error: ") and "Traceback" not in err, err


def _kind(param: Any) -> str:
    """int, float, choice or text: from typer's own description of the parameter (new typers
    keep the annotation, old ones a click type), so the test runs on every typer we allow."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:
        annotation = descriptor.annotation
        if get_origin(annotation) is Literal or (
                isinstance(annotation, type) and issubclass(annotation, Enum)):
            return "choice"
        return {int: "int", float: "float"}.get(annotation, "text")
    name = param.type.name
    if name.startswith(("integer", "float")):
        return "int" if name.startswith("integer") else "float"
    return "choice" if name == "choice" else "text"


def _placeholder(param: Any, value: str | None = None) -> list[str]:
    """A parameter given on the command line: a placeholder value unless `value` is given."""
    value = value or ("1" if _kind(param) == "int" else "x")
    return [value] if param.param_type_name == "argument" else [param.opts[0], value]


def _filled(cmd: Any, bad: Any = None, value: str | None = None) -> list[str]:
    """Placeholders for a command's required parameters (in order, arguments being
    positional), and `value` for the parameter `bad`: so only the case under test fails."""
    return [a for p in cmd.params if p is bad or p.required
            for a in _placeholder(p, value if p is bad else None)]


def _bad_value(param: Any) -> str | None:
    """A value the parameter's type refuses, or None when any text is valid."""
    return {"int": "abc", "float": "abc", "choice": "no-such-choice"}.get(_kind(param))


def test_the_walk_finds_every_command() -> None:
    """Nested groups included: a static table that lost a command would fail here."""
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"search", "tokens create", "tokens list", "tokens revoke", "keys register",
            "pipeline run", "pipeline export", "catalog publish", "trusted-publisher remove",
            "serve", "admin gc"} <= names
    assert len(LEAVES) >= 35


@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=_ids(COMMANDS))
def test_help_shows_an_example(path: tuple[str, ...], cmd: Any, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # one line per option: brackets stay in one piece
    code, out, err = _run(capsys, *path, "--help")
    assert code == 0, err
    assert "Example" in out, out
    for param in cmd.params:  # rich markup never swallows (or chokes on) a help's brackets
        for word in (param.help or "").replace("\\", "").split():
            if "[" in word:
                assert word in out, (word, out)


def test_the_root_help_lists_every_command_from_the_table(
        capsys: pytest.CaptureFixture[str]) -> None:
    """`hub --help` shows each command's own summary (the table cannot drift from it)."""
    code, out, _ = _run(capsys, "--help")
    assert code == 0
    table = {**cli.COMMANDS, **cli._plugin_commands()}
    for name, (target, summary) in table.items():
        assert name in out
        loaded = cli.load_command(name, target)
        assert (loaded.help or "").split("\n\n")[0].replace("\n", " ").strip() == summary


@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=_ids(COMMANDS))
def test_unknown_option_is_a_usage_error(path: tuple[str, ...], cmd: Any,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    argv = (*path, "--no-such-option")
    code, _, err = _run(capsys, *argv)
    _assert_usage_error(code, err, argv)
    assert "--no-such-option" in err


REQUIRED = [(p, c) for p, c in LEAVES if any(param.required for param in c.params)]


def test_missing_argument_cases_cover_the_commands_that_take_one() -> None:
    names = {" ".join(p) for p, _ in REQUIRED}
    assert {"run", "show", "yank", "tokens create", "tokens revoke", "pipeline export",
            "keys trust"} <= names


@pytest.mark.parametrize(("path", "cmd"), REQUIRED, ids=_ids(REQUIRED))
def test_missing_argument_is_a_usage_error(path: tuple[str, ...], cmd: Any,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, *path)
    _assert_usage_error(code, err, path)
    assert "missing" in err.lower()


def test_a_group_without_a_command_shows_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "keys")
    assert code == 2 and "generate" in out and not err


BAD = [(p, c, param, value) for p, c in LEAVES for param in c.params
       if (value := _bad_value(param)) is not None]


def test_bad_value_cases_cover_typed_parameters() -> None:
    names = {f"{' '.join(p)} {param.name}" for p, _, param, _ in BAD}
    assert {"search sort", "search limit", "pipeline run engine", "pipeline run env",
            "pipeline export to", "run env", "features ingest engine",
            "features get-historical engine"} <= names
    assert any(n.startswith("serve ") for n in names)
    assert any(n.startswith("admin gc ") for n in names)


def test_choice_options_offer_what_the_sdk_accepts() -> None:
    """The CLI spells its choices as Literals; they must not drift from the SDK's own lists."""
    from fnhub.core.api_models import SortOrder
    from fnhub.features.engine import ENGINES as FEATURE_ENGINES
    from fnhub.pipeline.api import EXPORTERS
    from fnhub.pipeline.engines import ENGINES, STEP_ENVS
    from fnhub.runner import ENVS

    def offered(param: Any) -> tuple[str, ...]:  # new typers keep the annotation, old a Choice
        descriptor = getattr(param, "type_descriptor", None)
        return get_args(descriptor.annotation) if descriptor else tuple(param.type.choices)

    choices = {f"{' '.join(p)} {param.name}": offered(param)
               for p, _, param, _ in BAD if _kind(param) == "choice"}
    assert choices["search sort"] == get_args(SortOrder)
    assert choices["pipeline run engine"] == ENGINES
    assert choices["pipeline run env"] == STEP_ENVS
    assert set(choices["pipeline export to"]) == set(EXPORTERS)
    assert choices["run env"] == ENVS
    assert choices["features ingest engine"] == FEATURE_ENGINES


@pytest.mark.parametrize(("path", "cmd", "param", "value"), BAD,
                         ids=[f"{' '.join(p)} {param.name}" for p, _, param, _ in BAD])
def test_bad_value_is_a_usage_error(path: tuple[str, ...], cmd: Any, param: Any, value: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    argv = (*path, *_filled(cmd, param, value))
    code, _, err = _run(capsys, *argv)
    _assert_usage_error(code, err, argv)
    assert "invalid value" in err.lower(), err


# -- failures: one line, never a traceback unless FNHUB_DEBUG=1 --------------------------------

SWEEP = [(p, c) for p, c in LEAVES if p not in _BLOCKING]


@pytest.mark.parametrize(("path", "cmd"), SWEEP, ids=_ids(SWEEP))
def test_no_command_prints_a_traceback(path: tuple[str, ...], cmd: Any, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Each command, given placeholder arguments, against a hub that does not answer and
    with its files in a temporary folder: whatever it does, a failure is one error line that
    names FNHUB_DEBUG=1, and never a traceback."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FNHUB_HUB", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("FNHUB_SERVER_DATA_DIR", str(tmp_path / "hub"))
    monkeypatch.setattr(sys, "stdin", open(os.devnull))  # noqa: SIM115 - closed by pytest
    code, out, err = _run(capsys, *path, *_filled(cmd))
    assert "Traceback" not in out + err
    if code == 1:
        first = err.strip().splitlines()[0]
        assert first.startswith("error: ") and cli.DEBUG_HINT in first, err
    else:
        assert code in (0, 2), (code, err)


@pytest.mark.slow
def test_debug_shows_the_traceback_and_nothing_else_does(tmp_path: Path) -> None:
    """The real program: a hub that does not answer, a config folder that is a file, a local
    function that is not there, a usage error. FNHUB_DEBUG=1 turns failures into tracebacks;
    usage errors stay one line either way."""
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    user = CLI(tmp_path / "u", f"http://127.0.0.1:{free_port()}")
    cases = [(["show", "hub://describe"], {}, "cannot reach the hub"),
             (["keys", "generate"], {"FNHUB_CONFIG_DIR": str(not_a_dir)}, "Not a directory"),
             (["run", str(tmp_path / "missing")], {}, "missing")]
    for args, env, match in cases:
        user.env_extra = env
        proc = user(*args)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        first = proc.stderr.splitlines()[0]
        assert match in first and cli.DEBUG_HINT in first, proc.stderr
        user.env_extra = {**env, "FNHUB_DEBUG": "1"}
        proc = user(*args)
        assert proc.returncode == 1 and "Traceback (most recent call last)" in proc.stderr
    for debug in ({}, {"FNHUB_DEBUG": "1"}):
        user.env_extra = debug
        proc = user("search", "--limit", "abc")
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 2, proc.stderr


@pytest.mark.slow
def test_eof_at_the_login_prompt_is_a_usage_error(tmp_path: Path) -> None:
    user = CLI(tmp_path / "u", f"http://127.0.0.1:{free_port()}")
    proc = subprocess.run([HUB_BIN, "login"], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, env=user.env, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines()[0] == (
        "error: no token given: standard input ended; pass --token TOKEN")
    assert len(proc.stderr.strip().splitlines()) == 2
