"""The generated CI files: valid for GitHub Actions and GitLab CI (their published JSON schemas,
vendored by check-jsonschema), the right jobs and triggers (acceptance 5), standard actions
only, the signing key and hub token from CI secrets, and ready for trusted publishing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.templates.baking import bake

CHECK_JSONSCHEMA = str(Path(sys.executable).parent / "check-jsonschema")
ALLOWED_ACTIONS = {"actions/checkout", "actions/setup-python"}
STEP_KEYS = {"name", "id", "uses", "with", "run", "env", "if", "shell"}
FUNCTION_TEMPLATES = ["python-job", "serving"]


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """Every template with each CI provider, Python 3.12 to see the choice reach the files."""
    root = tmp_path_factory.mktemp("ci-projects")
    baked = {}
    with pytest.MonkeyPatch.context() as patch:  # module scope: before the autouse fixtures
        patch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        for template in [*FUNCTION_TEMPLATES, "pipeline"]:
            for ci in ("github", "gitlab"):
                baked[template, ci] = bake(template, root / ci, ci=ci, python_version="3.12").path
    return baked


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


@pytest.mark.slow
def test_every_ci_file_is_valid_for_its_ci_system(projects: dict[tuple[str, str], Path]) -> None:
    for ci, schema in (("github", "vendor.github-workflows"), ("gitlab", "vendor.gitlab-ci")):
        name = ".github/workflows/ci.yml" if ci == "github" else ".gitlab-ci.yml"
        files = [str(path / name) for (_, provider), path in projects.items() if provider == ci]
        proc = subprocess.run([CHECK_JSONSCHEMA, "--builtin-schema", schema, *files],
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_the_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The check above can fail: a step with a misspelt key is refused."""
    broken = tmp_path / "ci.yml"
    broken.write_text("on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - usess: actions/checkout@v4\n")
    proc = subprocess.run([CHECK_JSONSCHEMA, "--builtin-schema", "vendor.github-workflows",
                           str(broken)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1 and "'uses' is a required property" in proc.stdout


def _check_steps(job: dict[str, Any], python: str) -> None:
    for step in job["steps"]:
        assert set(step) <= STEP_KEYS, step
        assert ("uses" in step) != ("run" in step), step
        if "uses" in step:
            action, _, version = step["uses"].partition("@")
            assert action in ALLOWED_ACTIONS and version.startswith("v"), step["uses"]
    setup = [s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python@")]
    assert [s["with"]["python-version"] for s in setup] == [python]


@pytest.mark.parametrize("template", FUNCTION_TEMPLATES)
def test_github_workflow_tests_every_push_and_publishes_only_on_tags(
        template: str, projects: dict[tuple[str, str], Path]) -> None:
    workflow = load_yaml(projects[template, "github"] / ".github/workflows/ci.yml")
    assert set(workflow["jobs"]) == {"test", "publish"}
    assert workflow["on"]["push"] == {"branches": ["**"], "tags": ["v*"]}
    assert "pull_request" in workflow["on"]
    assert workflow["permissions"] == {"contents": "read"}

    test, publish = workflow["jobs"]["test"], workflow["jobs"]["publish"]
    assert "if" not in test and "id-token" not in test.get("permissions", {})
    assert publish["needs"] == "test"
    assert publish["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert publish["permissions"] == {"contents": "read", "id-token": "write"}
    for job in (test, publish):
        assert job["runs-on"] == "ubuntu-latest"
        _check_steps(job, "3.12")

    test_runs = [s["run"] for s in test["steps"] if "run" in s]
    assert test_runs[-1] == "python -m pytest -q"
    last = publish["steps"][-1]
    assert 'hub publish . --key "$key"' in last["run"]
    assert last["env"] == {"FNHUB_TOKEN": "${{ secrets.FNHUB_TOKEN }}",
                           "FNHUB_SIGNING_KEY": "${{ secrets.FNHUB_SIGNING_KEY }}"}
    assert publish["env"] == {"FNHUB_HUB": "${{ vars.FNHUB_HUB }}"}
    assert all("secrets." not in str(s) for s in test["steps"])  # tests see no secret


@pytest.mark.parametrize("template", FUNCTION_TEMPLATES)
def test_gitlab_ci_tests_every_push_and_publishes_only_on_tags(
        template: str, projects: dict[tuple[str, str], Path]) -> None:
    pipeline = load_yaml(projects[template, "gitlab"] / ".gitlab-ci.yml")
    assert pipeline["stages"] == ["test", "publish"]
    assert pipeline["default"]["image"] == "python:3.12-slim"
    test, publish = pipeline["test"], pipeline["publish"]
    assert test["stage"] == "test" and "rules" not in test
    assert test["script"][-1] == "python -m pytest -q"
    assert publish["stage"] == "publish"
    assert publish["rules"] == [{"if": "$CI_COMMIT_TAG =~ /^v/"}]
    assert publish["id_tokens"] == {"FNHUB_ID_TOKEN": {"aud": "fnhub"}}
    assert publish["script"][-1] == 'hub publish . --key "$FNHUB_SIGNING_KEY"'


def test_pipeline_ci_runs_the_tests_against_the_hub(
        projects: dict[tuple[str, str], Path]) -> None:
    workflow = load_yaml(projects["pipeline", "github"] / ".github/workflows/ci.yml")
    assert set(workflow["jobs"]) == {"test"}
    assert set(workflow["on"]) == {"push", "pull_request", "schedule"}
    test = workflow["jobs"]["test"]
    assert test["env"]["FNHUB_HUB"] == "${{ vars.FNHUB_HUB }}"
    _check_steps(test, "3.12")
    assert "python -m pytest -q" in test["steps"][-1]["run"]
    gitlab = load_yaml(projects["pipeline", "gitlab"] / ".gitlab-ci.yml")
    assert gitlab["stages"] == ["test"]
    assert gitlab["test"]["script"][-1] == "python -m pytest -q"
