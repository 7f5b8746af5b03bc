"""Baking the templates: acceptance 1 (every template, three option sets, nothing unrendered,
exactly the promised files) and 4 (an invalid name fails in the hook and leaves nothing), and
how templates are found and answered."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from fnhub.core.errors import Conflict, InvalidInput, NotFound
from fnhub.core.manifest import load_manifest
from fnhub.core.names import name_problem, namespace_problem
from fnhub.pipeline.spec import load_pipeline_file
from fnhub.templates import Template, builtin_root, list_templates, new_project
from tests.helpers import ROOT
from tests.templates.baking import bake, files_of, module_name, promised_files, unrendered

TEMPLATES = ["python-job", "serving", "pipeline"]
DEFAULT_NAMES = {"python-job": "my-function", "serving": "my-model-server",
                 "pipeline": "my-pipeline"}
COMBINATIONS: dict[str, list[dict[str, str]]] = {
    "python-job": [
        {},
        {"name": "3d-scan.v2", "namespace": "alice", "ci": "gitlab", "sample_data": "no",
         "license": "MIT", "python_version": "3.12", "author_email": ""},
        {"ci": "none", "description": 'Ünïcode "quoted" & <odd> text', "version": "2.0.0-rc.1",
         "project_slug": "custom-folder", "author_name": "Zoë O'Brien"},
    ],
    "serving": [
        {},
        {"name": "price-api", "ci": "gitlab", "sample_data": "no", "python_version": "3.13",
         "license": "BSD-3-Clause"},
        {"ci": "none", "namespace": "team_ml", "author_name": "Zoë O'Brien",
         "description": "Serve <prices> & more."},
    ],
    "pipeline": [
        {},
        {"sample_data": "no", "ci": "gitlab", "python_version": "3.10"},
        {"ci": "none", "name": "nightly.train", "description": 'Retrain "nightly"'},
    ],
}
CASES = [(t, a) for t, combos in COMBINATIONS.items() for a in combos]
RULE = "must be lowercase letters and digits, separated by single '.', '_' or '-'"


def _readme_files(project: Path) -> list[str]:
    """The paths in the README's file table (`| `path` | what |`)."""
    text = (project / "README.md").read_text(encoding="utf-8")
    table = text[text.index("| file | what |"):]
    return re.findall(r"^\| `([^`]+)` \|", table, flags=re.M)


@pytest.mark.parametrize(("template", "answers"), CASES,
                         ids=[f"{t}-{i}" for t, combos in COMBINATIONS.items()
                              for i in range(len(combos))])
def test_bakes_the_promised_files_with_nothing_unrendered(template: str, answers: dict[str, str],
                                                          tmp_path: Path) -> None:
    project = bake(template, tmp_path, **answers)
    name = answers.get("name", DEFAULT_NAMES[template])
    assert project.path == tmp_path / answers.get("project_slug", name)
    assert project.template.name == template
    assert files_of(project.path) == promised_files(template, answers)
    assert unrendered(project.path) == {}
    for rel in _readme_files(project.path):  # what the README promises is there
        assert (project.path / rel).exists(), rel

    for rel in files_of(project.path):
        path = project.path / rel
        if path.suffix == ".py":
            compile(path.read_text(encoding="utf-8"), str(path), "exec")
        elif path.suffix in (".yml", ".yaml"):
            assert isinstance(yaml.safe_load(path.read_text(encoding="utf-8")), dict), rel
        elif path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))

    python = answers.get("python_version", "3.11")
    description = answers.get("description")
    if template == "pipeline":
        pipeline = load_pipeline_file(project.path / "pipeline.yaml")
        assert pipeline.metadata.name == name
        steps = [s.name for s in pipeline.spec.steps]
        first = ["split"] if answers.get("sample_data", "yes") == "yes" else ["data", "split"]
        assert steps == [*first, "train", "evaluate"]
        if description:
            assert pipeline.metadata.description == description
        return
    manifest = load_manifest(project.path)
    meta, spec = manifest.metadata, manifest.spec
    assert (meta.name, meta.namespace, meta.version, meta.license) == (
        name, answers.get("namespace", "my-team"), answers.get("version", "0.1.0"),
        answers.get("license", "Apache-2.0"))
    assert [(a.name, a.email) for a in meta.authors] == [(
        answers.get("author_name", "Your Name"),
        answers.get("author_email", "you@example.com") or None)]
    if description:
        assert meta.description == description
    assert spec.kind == ("serving" if template == "serving" else "job")
    assert spec.python == f">={python}"
    assert spec.image.base == f"python:{python}-slim"
    assert spec.entrypoint.startswith(f"{module_name(name)}.py:")
    dockerfile = (project.path / "Dockerfile").read_text()
    assert f"FROM python:{python}-slim\n" in dockerfile


@pytest.mark.parametrize("template", TEMPLATES)
def test_an_invalid_name_fails_in_the_hook_naming_the_rule_and_leaves_nothing(
        template: str, tmp_path: Path) -> None:
    out = tmp_path / "projects" / "new"
    with pytest.raises(InvalidInput) as caught:
        bake(template, out, name="My Function!")
    assert caught.value.message == (
        f"the {template} template refused the answers: invalid name 'My Function!': {RULE}, "
        "at most 64 characters")
    assert list(tmp_path.iterdir()) == []  # neither the project nor the folders made for it

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="refused the answers"):
        bake(template, existing, name="My Function!")
    assert files_of(existing) == {"keep.txt"}


NAMES = ["clean-data", "a", "x.y_z-9", "3d-scan", "a" * 64, "a" * 65, "Clean", "a--b", "-a",
         "a-", "a..b", "a b", "é", "under_score", ""]


@pytest.mark.parametrize("name", NAMES)
def test_the_hook_applies_fnhubs_naming_rule(name: str, tmp_path: Path) -> None:
    """The hook repeats fnhub.core.names (it must run without fnhub): both agree on every name."""
    problem = name_problem(name)
    try:
        bake("python-job", tmp_path, name=name, project_slug="project")
    except InvalidInput as exc:
        assert problem is not None, f"the hook refused a valid name: {exc}"
        assert f"invalid name {name!r}" in exc.message or "name must not be empty" in exc.message
    else:
        assert problem is None, f"the hook accepted {name!r}, which fnhub refuses: {problem}"


@pytest.mark.parametrize("namespace", ["alice", "team_ml", "ml-2", "a.b", "Alice", "a__b", "_a"])
def test_the_hook_applies_fnhubs_namespace_rule(namespace: str, tmp_path: Path) -> None:
    problem = namespace_problem(namespace)
    try:
        bake("serving", tmp_path, namespace=namespace)
    except InvalidInput as exc:
        assert problem is not None, f"the hook refused a valid namespace: {exc}"
        assert f"invalid namespace {namespace!r}" in exc.message
    else:
        assert problem is None, f"the hook accepted {namespace!r}: {problem}"


def test_the_hook_refuses_bad_versions_and_keyword_module_names(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"invalid version '1\.0': must be a SemVer 2\.0"):
        bake("python-job", tmp_path, version="1.0")
    with pytest.raises(InvalidInput, match="gives the Python module 'import', which is a Python "
                                           "keyword"):
        bake("python-job", tmp_path, name="import")
    with pytest.raises(InvalidInput, match="invalid project_slug 'a/b': must be one folder name"):
        bake("pipeline", tmp_path, project_slug="a/b")
    assert list(tmp_path.iterdir()) == []


def test_templates_share_their_hooks() -> None:
    """One copy is tested against fnhub's rules above; the others must not drift from it."""
    root = builtin_root()
    for hook in ("pre_gen_project.py", "post_gen_project.py"):
        assert len({(root / t / "hooks" / hook).read_bytes() for t in TEMPLATES}) == 1, hook


def test_each_hook_is_written_once_and_linked_into_every_template() -> None:
    """In the repository there is no copy to drift: function-templates/_shared holds each hook,
    and every template's hooks/ holds a relative link to it (a wheel ships the linked files)."""
    source = ROOT / "function-templates"
    for hook in ("pre_gen_project.py", "post_gen_project.py"):
        shared = source / "_shared" / hook
        assert shared.is_file() and not shared.is_symlink()
        for template in TEMPLATES:
            link = source / template / "hooks" / hook
            assert link.is_symlink() and os.readlink(link) == f"../../_shared/{hook}", link
            assert link.resolve() == shared.resolve()


def test_answers_are_checked_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"template 'python-job' has no question 'nam' \(did "
                                           r"you mean 'name'\?\); questions: name, project_slug"):
        bake("python-job", tmp_path, nam="x")
    with pytest.raises(InvalidInput, match=r"license='GPL' is not one of the template's choices: "
                                           r"Apache-2\.0, MIT, BSD-3-Clause, Proprietary"):
        bake("serving", tmp_path, license="GPL")
    with pytest.raises(InvalidInput, match="sample_data='maybe': answer yes or no"):
        bake("pipeline", tmp_path, sample_data="maybe")
    with pytest.raises(InvalidInput, match="has no question '__module_name'"):
        bake("python-job", tmp_path, __module_name="x")
    with pytest.raises(NotFound, match=r"no template named 'pythn-job' \(did you mean "
                                       r"'python-job'\?\); templates: pipeline, python-job"):
        bake("pythn-job", tmp_path)
    with pytest.raises(InvalidInput, match="--checkout applies to git templates only"):
        new_project("python-job", output_dir=tmp_path, checkout="main")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_project_is_never_touched(tmp_path: Path) -> None:
    first = bake("python-job", tmp_path).path
    (first / "function.yaml").write_text("mine")
    with pytest.raises(Conflict, match="already exists; nothing was written"):
        bake("python-job", tmp_path, description="another")
    assert (first / "function.yaml").read_text() == "mine"


def test_lists_the_builtin_templates_with_a_line_each() -> None:
    templates = {t.name: t for t in list_templates()}
    assert sorted(templates) == sorted(TEMPLATES)
    for template in templates.values():
        assert template.description and "\n" not in template.description
        assert template.path.is_relative_to(builtin_root())
        assert "name" in template.questions and "ci" in template.questions
        assert template.questions["ci"] == ["github", "gitlab", "none"]
        assert template.next_steps


def _team_template(root: Path) -> Path:
    """A team's own template: the built-in python-job with their namespace as the default."""
    copy = root / "python-job"
    shutil.copytree(builtin_root() / "python-job", copy)
    context = json.loads((copy / "cookiecutter.json").read_text())
    context["namespace"] = "data-team"
    (copy / "cookiecutter.json").write_text(json.dumps(context))
    return copy


def test_a_local_template_folder(tmp_path: Path) -> None:
    folder = _team_template(tmp_path / "team-templates")
    project = new_project(str(folder), output_dir=tmp_path / "out", answers={"ci": "none"})
    assert project.template.name == "python-job"
    assert load_manifest(project.path).metadata.namespace == "data-team"
    via_directory = new_project(str(tmp_path / "team-templates"), directory="python-job",
                                output_dir=tmp_path / "out2")
    assert load_manifest(via_directory.path).metadata.namespace == "data-team"

    with pytest.raises(InvalidInput, match="is not a cookiecutter template"):
        new_project(str(tmp_path / "out"), output_dir=tmp_path / "x")
    with pytest.raises(NotFound, match="no template folder"):
        new_project(str(tmp_path / "nowhere"), output_dir=tmp_path / "x")
    assert Template.load(folder).questions["namespace"] == "data-team"


def test_a_broken_template_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    folder = _team_template(tmp_path / "templates")
    (folder / "{{cookiecutter.project_slug}}" / "README.md").write_text(
        "{{ cookiecutter.no_such_answer }}\n")
    with pytest.raises(InvalidInput, match=r"template 'python-job' is broken: Unable to create "
                                           r"file 'README\.md'"):
        new_project(str(folder), output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_template_from_a_git_repository(tmp_path: Path) -> None:
    repo = tmp_path / "templates"
    _team_template(repo)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
           "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "PATH": "/usr/bin:/bin"}
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "v1"],
                 ["tag", "v1"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    (repo / "python-job" / "cookiecutter.json").write_text("{not json")  # only on main
    subprocess.run(["git", "commit", "-qam", "broken"], cwd=repo, env=env, check=True,
                   capture_output=True)

    url = f"git+file://{repo}"
    project = new_project(url, directory="python-job", checkout="v1",
                          output_dir=tmp_path / "out")
    assert load_manifest(project.path).metadata.namespace == "data-team"
    with pytest.raises(InvalidInput, match=r"cookiecutter\.json: not valid JSON"):
        new_project(url, directory="python-job", output_dir=tmp_path / "out2")
    with pytest.raises(NotFound, match="could not clone the template"):
        new_project(f"git+file://{tmp_path}/missing", output_dir=tmp_path / "out3")
