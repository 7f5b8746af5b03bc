"""Baking helpers for the template tests, and what each template promises to generate."""

from __future__ import annotations

import re
from pathlib import Path

from fnhub.templates import Project, new_project

# Left unrendered, a template shows `{{`, `{%`, `{#` or `cookiecutter.`; `${{` is GitHub
# Actions' and fnhub pipelines' own expression syntax and stays.
UNRENDERED = re.compile(r"(?<!\$)\{\{|\{%|\{#|cookiecutter\.")

FUNCTION_FILES = {"function.yaml", "README.md", "requirements.txt", "Dockerfile", ".fnhubignore",
                  ".gitignore", ".dockerignore"}
CI_FILES = {"github": {".github/workflows/ci.yml"}, "gitlab": {".gitlab-ci.yml"}, "none": set()}
SAMPLES = {"python-job": "data/sample.csv", "serving": "model/model.json",
           "pipeline": "data/iris.csv"}


def bake(template: str, out: Path, **answers: str) -> Project:
    """A template baked without questions, with `answers` as --set would give them."""
    return new_project(template, output_dir=out, answers=answers, no_input=True)


def module_name(name: str) -> str:
    module = name.replace("-", "_").replace(".", "_")
    return f"fn_{module}" if module[:1].isdigit() else module


def promised_files(template: str, answers: dict[str, str]) -> set[str]:
    """The files a project baked with `answers` must hold: no more, no fewer."""
    ci = answers.get("ci", "github")
    sample = answers.get("sample_data", "yes") == "yes"
    samples = {SAMPLES[template]} if sample else set()
    if template == "pipeline":
        return {"pipeline.yaml", "pipeline.py", "README.md", "requirements.txt", ".gitignore",
                "tests/test_pipeline.py"} | samples | CI_FILES[ci]
    default_name = {"python-job": "my-function", "serving": "my-model-server"}[template]
    module = module_name(answers.get("name", default_name))
    return (FUNCTION_FILES | {f"{module}.py", f"tests/test_{module}.py"} | samples
            | CI_FILES[ci])


def files_of(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def unrendered(folder: Path) -> dict[str, list[str]]:
    """Per file, the template syntax left in it."""
    found = {}
    for rel in sorted(files_of(folder)):
        if hits := UNRENDERED.findall((folder / rel).read_text(encoding="utf-8")):
            found[rel] = hits
    return found


def readme_blocks(project: Path, language: str) -> list[str]:
    """The fenced code blocks of the project's README in `language`, in order."""
    text = (project / "README.md").read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)
