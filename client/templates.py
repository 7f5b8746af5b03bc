"""Function templates: the ones fnhub ships, and baking any cookiecutter template into a project.

The built-in templates are the `fnhub.function_templates` data package (the repository's
`function-templates/` folder, one cookiecutter template per subfolder), so an installed fnhub
has them wherever it runs. `new_project` also bakes a template from a local folder or a git
URL (cloned with cookiecutter's own VCS support, `gh:`/`gl:`/`bb:` abbreviations included), so
teams can keep their own.

Answers (`--set KEY=VALUE`) are checked against the template's `cookiecutter.json` before
anything is written: an unknown question or a value outside a choice list is an error naming
it. A template's hooks may refuse the answers too (ours check the naming rules); their message
becomes the error, and nothing is left behind: cookiecutter removes the half-made project and
`new_project` removes the output folders it created.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fnhub.core.errors import Conflict, FnhubError, InvalidInput, NotFound
from fnhub.core.names import closest

BUILTIN_PACKAGE = "fnhub.function_templates"
CONTEXT_FILE = "cookiecutter.json"
MAX_HOOK_MESSAGE = 4000  # characters of a hook's stderr kept for the error message

# cookiecutter logs a failed hook with a traceback; without a handler, Python's last-resort
# handler would print it. The failure reaches the caller as an exception instead.
logging.getLogger("cookiecutter").addHandler(logging.NullHandler())


@dataclass(frozen=True)
class Template:
    """A cookiecutter template folder and what its `cookiecutter.json` asks."""

    name: str
    path: Path
    context: dict[str, Any]

    @classmethod
    def load(cls, path: Path, name: str | None = None) -> Template:
        context_file = path / CONTEXT_FILE
        if not context_file.is_file():
            raise InvalidInput(f"{path} is not a cookiecutter template (it has no {CONTEXT_FILE})")
        try:
            context = json.loads(context_file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"{context_file}: not valid JSON: {exc}") from None
        if not isinstance(context, dict):
            raise InvalidInput(f"{context_file}: expected a JSON object of questions")
        return cls(name or path.name, path, context)

    @property
    def description(self) -> str:
        """One line for `hub new --list` (the `_description` of cookiecutter.json)."""
        return str(self.context.get("_description", ""))

    @property
    def questions(self) -> dict[str, Any]:
        """The variables cookiecutter asks for, with their defaults or choices."""
        return {k: v for k, v in self.context.items() if not k.startswith("_")}

    @property
    def next_steps(self) -> list[str]:
        """Commands to suggest once the project exists (`_next_steps`)."""
        steps = self.context.get("_next_steps", [])
        return [str(s) for s in steps] if isinstance(steps, list) else []


@dataclass(frozen=True)
class Project:
    """A project folder baked from a template (whose `path` may have been a temporary clone)."""

    path: Path
    template: Template


def builtin_root() -> Path:
    """The folder holding the built-in templates, wherever fnhub is installed."""
    return Path(str(resources.files(BUILTIN_PACKAGE)))


def list_templates() -> list[Template]:
    """The built-in templates, by name."""
    root = builtin_root()
    return [Template.load(p) for p in sorted(root.iterdir()) if (p / CONTEXT_FILE).is_file()]


def builtin(name: str) -> Template:
    """A built-in template by name; an unknown name is an error naming the closest one."""
    templates = {t.name: t for t in list_templates()}
    if name in templates:
        return templates[name]
    guess = closest(name, templates)
    raise NotFound(f"no template named {name!r}"
                   + (f" (did you mean {guess!r}?)" if guess else "")
                   + f"; templates: {', '.join(templates)}",
                   hint="a local template folder needs a path (./NAME); `hub new --list` shows "
                        "the built-in ones")


def is_local_path(text: str) -> bool:
    """A template given as a folder: anything path-like (`./x`, `../x`, `/x`, `~/x`, `a/b`)."""
    return text.startswith((".", "~", "/")) or "/" in text or os.sep in text


def check_answers(template: Template, answers: Mapping[str, str]) -> dict[str, Any]:
    """Answers as cookiecutter takes them; unknown questions and bad choices are errors."""
    from cookiecutter.prompt import YesNoPrompt
    from rich.prompt import InvalidResponse

    questions = template.questions
    checked: dict[str, Any] = {}
    for key, value in answers.items():
        if key not in questions:
            guess = closest(key, questions)
            raise InvalidInput(
                f"template {template.name!r} has no question {key!r}"
                + (f" (did you mean {guess!r}?)" if guess else "")
                + f"; questions: {', '.join(questions)}")
        default = questions[key]
        if isinstance(default, list):
            choices = [str(c) for c in default]
            if value not in choices:
                raise InvalidInput(f"{key}={value!r} is not one of the template's choices: "
                                   f"{', '.join(choices)}")
        elif isinstance(default, bool):
            try:
                checked[key] = YesNoPrompt().process_response(value)
            except InvalidResponse:
                raise InvalidInput(f"{key}={value!r}: answer yes or no") from None
            continue
        elif isinstance(default, dict):
            raise InvalidInput(f"{key} is a dictionary question; answer it at the prompt")
        checked[key] = value
    return checked


@contextmanager
def _stderr_captured() -> Iterator[Callable[[], str]]:
    """Capture file descriptor 2, which hook processes inherit, to quote a hook's message.

    Yields a function returning the tail of what was written so far.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to capture; hook messages then go nowhere
        yield lambda: ""
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)

        def text() -> str:
            sys.stderr.flush()
            size = sink.seek(0, os.SEEK_END)
            sink.seek(max(0, size - MAX_HOOK_MESSAGE))
            return sink.read().decode("utf-8", errors="replace")

        try:
            yield text
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _missing_parents(folder: Path) -> list[Path]:
    """`folder` and its ancestors that do not exist yet, deepest first."""
    missing = []
    for path in (folder, *folder.parents):
        if path.exists():
            break
        missing.append(path)
    return missing


def _remove_new_empty_folders(output_dir: Path, before: set[Path], created: list[Path]) -> None:
    """After a failed bake: remove the folders it made that hold no file (cookiecutter removes
    the project folder itself, not the parents a slug like `a/b` made, nor `output_dir`)."""
    if output_dir.is_dir():
        for entry in set(output_dir.iterdir()) - before:
            if entry.is_dir() and not entry.is_symlink() and all(
                    p.is_dir() and not p.is_symlink() for p in entry.rglob("*")):
                shutil.rmtree(entry)
    for folder in created:  # deepest first
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


@contextmanager
def _located(template: str, checkout: str | None, directory: str | None) -> Iterator[Template]:
    """The template a user named: built-in, a local folder, or a git repository (cloned into a
    temporary folder for the duration)."""
    from cookiecutter.config import BUILTIN_ABBREVIATIONS
    from cookiecutter.exceptions import (
        RepositoryCloneFailed,
        RepositoryNotFound,
        UnknownRepoType,
        VCSNotInstalled,
    )
    from cookiecutter.repository import expand_abbreviations, is_repo_url
    from cookiecutter.vcs import clone

    url = expand_abbreviations(template, BUILTIN_ABBREVIATIONS)
    if is_repo_url(url):
        with tempfile.TemporaryDirectory(prefix="fnhub-template-") as tmp:
            try:
                repo = Path(clone(url, checkout=checkout, clone_to_dir=tmp, no_input=True))
            except (RepositoryNotFound, RepositoryCloneFailed) as exc:
                raise NotFound(f"could not clone the template {template!r}: {exc}") from None
            except subprocess.CalledProcessError as exc:
                said = " ".join((exc.output or b"").decode("utf-8", "replace").split())
                raise NotFound(f"could not clone the template {template!r}: {said}") from None
            except (UnknownRepoType, VCSNotInstalled) as exc:
                raise InvalidInput(f"cannot clone {template!r}: {exc}") from None
            folder = repo / directory if directory else repo
            yield Template.load(folder, Path(url.rstrip("/")).stem if not directory
                                else Path(directory).name)
        return
    if checkout:
        raise InvalidInput("--checkout applies to git templates only")
    if is_local_path(template):
        folder = Path(template).expanduser()
        if directory:
            folder = folder / directory
        if not folder.is_dir():
            raise NotFound(f"no template folder {folder}")
        yield Template.load(folder.resolve())
        return
    if directory:
        raise InvalidInput("--directory applies to template folders and git templates only")
    yield builtin(template)


def new_project(template: str, *, output_dir: str | Path = ".",
                answers: Mapping[str, str] | None = None, no_input: bool = True,
                checkout: str | None = None, directory: str | None = None) -> Project:
    """Bake `template` (a built-in name, a template folder or a git URL) into a new project
    folder under `output_dir`.

    `answers` preset questions (`{"name": "clean-data"}`); with `no_input` nothing is asked and
    the other questions take their defaults, otherwise cookiecutter prompts for each, offering
    the preset answers as defaults. `checkout` (a branch, tag or commit) and `directory` (the
    template's folder inside the repository) apply to git templates.
    """
    with _located(template, checkout, directory) as located:
        extra = check_answers(located, answers or {})
        return Project(_bake(located, Path(output_dir), extra, no_input), located)


def _bake(template: Template, output_dir: Path, extra: dict[str, Any], no_input: bool) -> Path:
    from cookiecutter.exceptions import (
        CookiecutterException,
        FailedHookException,
        OutputDirExistsException,
        UndefinedVariableInTemplate,
    )
    from cookiecutter.main import cookiecutter

    created = _missing_parents(output_dir.absolute())
    before = set(output_dir.iterdir()) if output_dir.is_dir() else set()
    try:
        with _stderr_captured() as hook_output:
            try:
                project = cookiecutter(str(template.path), no_input=no_input, extra_context=extra,
                                       output_dir=str(output_dir))
            except FailedHookException:
                message = "; ".join(line.strip() for line in hook_output().splitlines()
                                    if line.strip())
                raise InvalidInput(f"the {template.name} template refused the answers: "
                                   f"{message or 'its hook failed without saying why'}"
                                   ) from None
            except OutputDirExistsException as exc:
                raise Conflict(f"{str(exc).removeprefix('Error: ')}; nothing was written",
                               hint="choose another name or output folder (-o DIR)") from None
            except UndefinedVariableInTemplate as exc:
                raise InvalidInput(f"template {template.name!r} is broken: {exc.message}: "
                                   f"{exc.error.message}") from None
            except CookiecutterException as exc:
                raise InvalidInput(f"template {template.name!r}: {exc}") from None
            except EOFError:
                raise InvalidInput("the template asked a question and standard input ended",
                                   hint="answer with --set KEY=VALUE and pass --no-input"
                                   ) from None
            hooks_said = hook_output()
    except (FnhubError, KeyboardInterrupt):
        _remove_new_empty_folders(output_dir, before, created)
        raise
    sys.stderr.write(hooks_said)  # a successful hook's remarks still reach the user
    return Path(project)
