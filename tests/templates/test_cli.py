"""`hub new` as users run it: the real command in a subprocess, from outside the repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fnhub.core.manifest import load_manifest
from fnhub.templates import list_templates
from tests.helpers import CLI, HUB_BIN, ROOT
from tests.templates.baking import files_of, promised_files

pytestmark = pytest.mark.slow  # the real CLI in subprocesses


def test_list_shows_one_line_per_template(tmp_path: Path) -> None:
    cli = CLI(tmp_path)
    lines = cli.ok("new", "--list").splitlines()
    templates = list_templates()
    assert len(lines) == len(templates)
    for line, template in zip(lines, templates, strict=True):
        assert line.split()[0] == template.name
        assert line.endswith(template.description)
    listed = cli.json("new", "--list")
    assert [t["name"] for t in listed] == ["pipeline", "python-job", "serving"]
    assert all(Path(t["path"], "cookiecutter.json").is_file() for t in listed)


def test_new_works_from_any_folder(tmp_path: Path) -> None:
    cli = CLI(tmp_path / "user")
    elsewhere = tmp_path / "somewhere"
    elsewhere.mkdir()
    assert not elsewhere.is_relative_to(ROOT)
    out = cli.ok("new", "python-job", "--no-input", "--set", "name=clean-data", "--set",
                 "namespace=alice", "--set", "ci=gitlab", cwd=elsewhere)
    project = elsewhere / "clean-data"
    assert f"created {project} from the python-job template" in out
    assert "  hub publish ." in out
    assert files_of(project) == promised_files("python-job", {"name": "clean-data",
                                                              "ci": "gitlab"})
    assert load_manifest(project).metadata.namespace == "alice"

    made = cli.json("new", "serving", "--no-input", "-o", "nested/projects", cwd=elsewhere)
    assert made == {"template": "serving",
                    "path": str(elsewhere / "nested/projects/my-model-server")}
    assert (elsewhere / "nested/projects/my-model-server/function.yaml").is_file()


def test_bare_new_shows_a_menu(tmp_path: Path) -> None:
    cli = CLI(tmp_path)
    proc = subprocess.run([HUB_BIN, "new", "-o", "out", "--set", "ci=none"], cwd=tmp_path,
                          env=cli.env, input="7\n3\n" + "\n" * 30, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "1  pipeline" in proc.stdout and "3  serving" in proc.stdout
    assert "choose 1 to 3 or one of: pipeline, python-job, serving" in proc.stdout
    assert files_of(tmp_path / "out" / "my-model-server") == promised_files(
        "serving", {"ci": "none"})
    cli.fails("new", "--no-input", match="name a template: with --no-input nothing is asked")


def test_bad_answers_are_one_line_errors_and_leave_nothing(tmp_path: Path) -> None:
    cli = CLI(tmp_path)
    out = cli.fails("new", "python-job", "--no-input", "--set", "name=My Function!", "-o",
                    "projects", match="invalid name 'My Function!': must be lowercase letters "
                                      "and digits, separated by single '.', '_' or '-'")
    assert "refused the answers" in out
    assert not (tmp_path / "projects").exists()
    cli.fails("new", "serving", "--no-input", "--set", "ci", match="--set 'ci': expected "
                                                                  "NAME=VALUE")
    cli.fails("new", "serving", "--no-input", "--set", "ci=jenkins",
              match="ci='jenkins' is not one of the template's choices: github, gitlab, none")
    proc = subprocess.run([HUB_BIN, "new", "pipeline"], cwd=tmp_path, env=cli.env, input="",
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "standard input ended" in proc.stderr
    assert not (tmp_path / "my-pipeline").exists()
