"""Acceptance 2 and 3: the baked projects work for real.

For `python-job` and `serving`: the project's own tests pass (pytest in a subprocess), the
project publishes to a real hub by running its own CI publish job's scripts (GitHub's for one,
GitLab's for the other: token secret and signing-key secret, then `hub publish`), and `hub run`
of the published function gives what the README's example promises. For `pipeline`: the
project's tests run its pipeline against a hub seeded with the catalog, and so does
`hub pipeline run`. The Dockerfiles match what `hub build` generates, and the images'
commands, run here as a runner would start them, run the functions.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from fnhub import build
from fnhub.core.manifest import load_manifest
from tests.helpers import CLI, HUB_BIN, HubProcess, free_port, start_hub
from tests.templates.baking import bake, readme_blocks

pytestmark = pytest.mark.slow
EXPRESSION = re.compile(r"\$\{\{\s*(secrets|vars)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    process = start_hub(tmp_path_factory.mktemp("templates-hub") / "data", seed=True)
    yield process
    process.stop()


@dataclass
class Publisher:
    """Alice's CI credentials: a publish token and a registered signing key."""

    token: str
    key_file: Path


@pytest.fixture(scope="module")
def alice(hub: HubProcess, tmp_path_factory: pytest.TempPathFactory) -> Publisher:
    admin = CLI(tmp_path_factory.mktemp("admin"), hub.url, hub.admin_token)
    token = admin.json("tokens", "create", "alice-ci", "--scope", "publish:alice", "--user",
                       "alice")["token"]
    laptop = CLI(tmp_path_factory.mktemp("alice"), hub.url, token)
    laptop.ok("keys", "generate", "--name", "ci")
    laptop.ok("keys", "register", "ci", "--namespace", "alice")
    return Publisher(token, laptop.root / "config" / "keys" / "ci.key")


def clean_env(root: Path, **extra: str) -> dict[str, str]:
    """A fresh machine's environment: this Python's tools first on PATH, no fnhub settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FNHUB_", "PYTEST_"))}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               HOME=str(root / "home"), FNHUB_HOME=str(root / "fnhub-home"),
               FNHUB_CONFIG_DIR=str(root / "fnhub-config"), **extra)
    return env


def run_project_tests(project: Path, env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert "passed" in summary and "skipped" not in summary and "failed" not in summary, summary
    return summary


def load_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def github_job(project: Path, job_name: str, *, secrets: dict[str, str], variables: dict[str, str],
               env: dict[str, str], work: Path,
               skip: frozenset[str] = frozenset({"install"})) -> dict[str, Any]:
    """Run a GitHub Actions job's `run` steps as the runner would (bash -eo pipefail, in the
    checkout, `env` maps with `${{ secrets.X }}` and `${{ vars.X }}` filled in). `uses:` steps
    (checkout, setup-python) and the `skip` ids (pip installs) are what this environment
    already is. Returns the steps that ran and the failed one with its output, if any."""
    job = load_yaml(project / ".github/workflows/ci.yml")["jobs"][job_name]
    context = {"secrets": secrets, "vars": variables}

    def expand(mapping: dict[str, Any]) -> dict[str, str]:
        out = {}
        for key, value in mapping.items():
            out[key] = EXPRESSION.sub(lambda m: context[m[1]].get(m[2], ""), str(value))
            assert "${{" not in out[key], f"unsupported expression in {value!r}"
        return out

    work.mkdir(parents=True, exist_ok=True)
    base = {**env, "RUNNER_TEMP": str(work), **expand(job.get("env", {}))}
    ran = []
    for step in job["steps"]:
        if "uses" in step or step.get("id") in skip:
            continue
        script = work / f"step-{step['id']}.sh"
        script.write_text(step["run"])
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                              cwd=project, env={**base, **expand(step.get("env", {}))},
                              capture_output=True, text=True, timeout=300, check=False)
        ran.append(step["id"])
        if proc.returncode != 0:
            return {"failed": step["id"], "output": proc.stdout + proc.stderr, "ran": ran}
    return {"failed": None, "ran": ran}


def gitlab_job(project: Path, job_name: str, *, variables: dict[str, str],
               env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a GitLab CI job's script as the runner's bash does (`set -eo pipefail`, one shell),
    with the file's variables overridden by the project's CI/CD variables; pip installs are
    what this environment already is."""
    pipeline = load_yaml(project / ".gitlab-ci.yml")
    lines = [line for line in pipeline[job_name]["script"]
             if not line.startswith("python -m pip install")]
    return subprocess.run(["bash", "--noprofile", "--norc", "-c",
                           "set -eo pipefail\n" + "\n".join(lines)],
                          cwd=project, capture_output=True, text=True, timeout=300, check=False,
                          env={**env, **pipeline.get("variables", {}), **variables})


def test_python_job_tests_publish_from_ci_and_run_as_promised(
        hub: HubProcess, alice: Publisher, tmp_path: Path) -> None:
    project = bake("python-job", tmp_path / "src", namespace="alice").path
    assert run_project_tests(project, clean_env(tmp_path / "dev")).startswith("5 passed")

    runner = clean_env(tmp_path / "runner", GITHUB_REF="refs/tags/v0.1.0",
                       GITHUB_REF_NAME="v0.1.0")
    secrets = {"FNHUB_TOKEN": alice.token, "FNHUB_SIGNING_KEY": alice.key_file.read_text()}
    wrong_tag = github_job(project, "publish", secrets=secrets, variables={"FNHUB_HUB": hub.url},
                           env={**runner, "GITHUB_REF_NAME": "v0.2.0"}, work=tmp_path / "ci0")
    assert wrong_tag["failed"] == "version"
    assert "tag v0.2.0 is not v0.1.0, the version in function.yaml" in wrong_tag["output"]

    published = github_job(project, "publish", secrets=secrets, variables={"FNHUB_HUB": hub.url},
                           env=runner, work=tmp_path / "ci")
    assert published == {"failed": None, "ran": ["version", "publish"]}
    assert not (tmp_path / "ci" / "fnhub-signing.key").exists()  # the key file is removed

    user = CLI(tmp_path / "user", hub.url)
    version = user.json("show", "hub://alice/my-function")["version"]
    assert version["version"] == "0.1.0" and version["signatures"]

    example = load_manifest(project).spec.examples[0].inputs
    assert example == {"table": "data/sample.csv", "method": "minmax"}
    ran = user.json("run", "hub://alice/my-function:0.1.0", "-i",
                    f"table={project / example['table']}", "-p", f"method={example['method']}",
                    "--out", str(tmp_path / "run"))
    command, promised_json = readme_blocks(project, "console")[0].splitlines()
    assert command.startswith("$ hub run hub://alice/my-function:0.1.0 -i table=data/sample.csv "
                              "-p method=minmax --json")
    promised = json.loads(promised_json)["outputs"]
    assert set(ran["outputs"]) == set(promised)
    assert ran["outputs"]["n_rows"] == promised["n_rows"] == 4
    for name in ("scaled", "stats"):
        assert Path(ran["outputs"][name]).name == Path(promised[name]).name
    [promised_csv] = readme_blocks(project, "csv")
    assert Path(ran["outputs"]["scaled"]).read_text() == promised_csv


def test_serving_tests_publish_from_ci_and_serve_as_promised(
        hub: HubProcess, alice: Publisher, tmp_path: Path) -> None:
    project = bake("serving", tmp_path / "src", namespace="alice", ci="gitlab").path
    assert run_project_tests(project, clean_env(tmp_path / "dev")).startswith("13 passed")

    key_file = tmp_path / "gitlab-file-variable"  # a "File" CI variable arrives as a path
    key_file.write_bytes(alice.key_file.read_bytes())
    variables = {"FNHUB_HUB": hub.url, "FNHUB_TOKEN": alice.token,
                 "FNHUB_SIGNING_KEY": str(key_file), "CI_COMMIT_TAG": "v0.1.0"}
    proc = gitlab_job(project, "publish", variables=variables, env=clean_env(tmp_path / "ci"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "published alice/my-model-server@0.1.0" in proc.stdout

    user = CLI(tmp_path / "user", hub.url)
    user.root.mkdir()
    example = load_manifest(project).spec.examples[0].inputs
    assert example == {"model": "model", "port": 8080}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [HUB_BIN, "run", "hub://alice/my-model-server:0.1.0", "-i",
         f"model={project / example['model']}", "-p", f"port={port}", "--json", "--out",
         str(tmp_path / "run")],
        cwd=user.root, env=user.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the published server did not come up"
            time.sleep(0.2)
        request, response = (json.loads(block) for block in readme_blocks(project, "json"))
        answer = httpx.post(f"{base}/predict", json=request, timeout=10)
        assert answer.status_code == 200 and answer.json() == response == {
            "predictions": [135.0, 55.0]}
        server.send_signal(signal.SIGTERM)
        stdout, stderr = server.communicate(timeout=20)
        assert server.returncode == 0, stderr
        assert json.loads(stdout)["outputs"] == {}
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()


def test_pipeline_runs_against_a_hub_seeded_with_the_catalog(hub: HubProcess,
                                                             tmp_path: Path) -> None:
    project = bake("pipeline", tmp_path / "src").path
    dev = clean_env(tmp_path / "dev", FNHUB_HUB=hub.url)
    summary = run_project_tests(project, dev)
    assert summary.startswith("4 passed")  # none skipped: they ran against the hub

    # The other form of the template, with `hub pipeline run`; the same FNHUB_HOME, so the
    # steps its data step feeds the same table come from the step cache.
    from_hub = bake("pipeline", tmp_path / "src2", sample_data="no").path
    user = CLI(tmp_path / "user", hub.url, env_extra={"FNHUB_HOME": dev["FNHUB_HOME"]})
    result = user.json("pipeline", "run", str(from_hub / "pipeline.yaml"), "-p", "dataset=iris")
    assert result["status"] == "succeeded"
    assert result["steps"]["data"] == "succeeded"
    assert set(result["steps"]) == {"data", "split", "train", "evaluate"}
    assert result["outputs"]["data"]["n_rows"] == 150
    assert result["outputs"]["evaluate"]["score"] > 0.8


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments left out."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [(line.split(maxsplit=1)[0], line.split(maxsplit=1)[1]) for line in joined.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def dockerfile_labels(instructions: list[tuple[str, str]]) -> dict[str, str]:
    pairs = [p for op, args in instructions if op == "LABEL" for p in shlex.split(args)]
    return dict(pair.split("=", 1) for pair in pairs)


@pytest.mark.parametrize("template", ["python-job", "serving"])
def test_the_dockerfile_matches_what_hub_build_generates(template: str, tmp_path: Path) -> None:
    project = bake(template, tmp_path, namespace="alice", python_version="3.12").path
    ours = parse_dockerfile((project / "Dockerfile").read_text())
    theirs = parse_dockerfile(build.dockerfile(load_manifest(project), "sha256:" + "0" * 64))
    for op in ("FROM", "WORKDIR", "ENTRYPOINT"):
        assert [a for o, a in ours if o == op] == [a for o, a in theirs if o == op], op
    our_labels, their_labels = dockerfile_labels(ours), dockerfile_labels(theirs)
    assert our_labels == {k: their_labels[k] for k in our_labels}
    assert {"io.fnhub.entrypoint", "io.fnhub.function-dir"} <= set(our_labels)


def _image_command(project: Path) -> list[str]:
    """How a runner starts the image: ENTRYPOINT, then CMD or else the function's location
    from the labels, with the container's function folder being the project."""
    instructions = parse_dockerfile((project / "Dockerfile").read_text())
    labels = dockerfile_labels(instructions)
    entrypoint = next(json.loads(a) for o, a in instructions if o == "ENTRYPOINT")
    cmd = next((json.loads(a) for o, a in instructions if o == "CMD"),
               ["--function-dir", labels["io.fnhub.function-dir"], "--entrypoint",
                labels["io.fnhub.entrypoint"]])
    assert entrypoint == ["python", "-m", "fnhub.runtime"]
    command = [sys.executable, "-m", "fnhub.runtime", *cmd]
    return [str(project) if part == labels["io.fnhub.function-dir"] else part for part in command]


def test_the_images_commands_run_the_functions(tmp_path: Path) -> None:
    job = bake("python-job", tmp_path / "src").path
    out = tmp_path / "out"
    proc = subprocess.run(
        [*_image_command(job), "--artifact", f"table={job / 'data/sample.csv'}", "--text",
         "method=minmax", "--output", f"scaled:dataset={out / 'scaled.csv'}", "--output",
         f"stats:file={out / 'stats.json'}", "--output", f"n_rows:int={out / 'n_rows'}"],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (out / "n_rows").read_text() == "4"
    assert (out / "scaled.csv").read_text() == readme_blocks(job, "csv")[0]

    serving = bake("serving", tmp_path / "src").path
    port = free_port()
    local = {"model=/model": f"model={serving / 'model'}", "host=0.0.0.0": "host=127.0.0.1",
             "port=8000": f"port={port}"}
    command = [local.get(part, part) for part in _image_command(serving)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the image's command did not serve"
            time.sleep(0.2)
        server.send_signal(signal.SIGTERM)  # what `docker stop` sends
        server.communicate(timeout=20)
        assert server.returncode == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
