"""`hub new`: scaffold a function or pipeline project from a cookiecutter template."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.prompt import Prompt
from rich.table import Table

from fnhub.cli.running import _pairs
from fnhub.core.console import console, emit_json
from fnhub.core.errors import InvalidInput
from fnhub.templates import Template, list_templates, new_project

DEFAULT_TEMPLATE = "python-job"


def _choose(templates: list[Template]) -> str:
    """The menu of `hub new` without a TEMPLATE: a number or a name."""
    table = Table("", "template", "what", box=None, title="Templates", title_justify="left")
    for i, template in enumerate(templates, 1):
        table.add_row(str(i), template.name, template.description)
    console.print(table)
    names = [t.name for t in templates]
    default = names.index(DEFAULT_TEMPLATE) + 1 if DEFAULT_TEMPLATE in names else 1
    while True:
        try:
            answer = Prompt.ask("Template (number or name)", console=console,
                                default=str(default)).strip()
        except EOFError:
            raise InvalidInput("standard input ended before a template was chosen",
                               hint="name the template: hub new TEMPLATE") from None
        if answer in names:
            return answer
        if answer.isdigit() and 1 <= int(answer) <= len(names):
            return names[int(answer) - 1]
        console.print(f"[red]choose 1 to {len(names)} or one of: {', '.join(names)}[/red]")


def new(
    template: Annotated[str | None, typer.Argument(
        help="A template name (see --list), a local template folder (./my-template) or a git "
             "URL (https://..., git@..., gh:ORG/REPO). Without it, a menu asks.")] = None,
    no_input: Annotated[bool, typer.Option(
        "--no-input", help="Ask nothing: --set answers, else the template's defaults (CI).")
    ] = False,
    output_dir: Annotated[Path, typer.Option(
        "-o", "--output-dir", help="Where to create the project folder.")] = Path("."),
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="An answer, KEY=VALUE (repeatable); with prompts it becomes the "
                      "default offered.")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the built-in templates.")] = False,
    checkout: Annotated[str | None, typer.Option(
        help="Branch, tag or commit of a git template.")] = None,
    directory: Annotated[str | None, typer.Option(
        help="The template's folder inside a git repository or folder.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Create a function or pipeline project from a template (cookiecutter).

    Examples:
      `hub new` (a menu, then questions)
      `hub new python-job --no-input --set name=clean-data --set namespace=alice`
      `hub new serving --set ci=gitlab -o projects/`
      `hub new gh:my-org/fnhub-templates --directory python-job`
      `hub new --list`
    """
    if list_:
        templates = list_templates()
        if as_json:
            emit_json([{"name": t.name, "description": t.description, "path": str(t.path)}
                       for t in templates])
            return
        width = max(len(t.name) for t in templates)
        for t in templates:
            console.print(f"{t.name:<{width}}  {t.description}", highlight=False, soft_wrap=True)
        return
    answers = _pairs(set_ or [], "--set")
    if template is None:
        if no_input:
            names = ", ".join(t.name for t in list_templates())
            raise InvalidInput(f"name a template: with --no-input nothing is asked ({names})")
        template = _choose(list_templates())
    project = new_project(template, output_dir=output_dir, answers=answers, no_input=no_input,
                          checkout=checkout, directory=directory)
    if as_json:
        emit_json({"template": project.template.name, "path": str(project.path)})
        return
    console.print(f"created {project.path} from the {project.template.name} template",
                  highlight=False)
    if project.template.next_steps:
        console.print("next:", highlight=False)
        for step in [f"cd {shlex.quote(str(project.path))}", *project.template.next_steps]:
            console.print(f"  {step}", highlight=False)
