"""`hub pipeline run | show | lock | export` through the real CLI in subprocesses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import CLI

pytestmark = pytest.mark.slow  # the real CLI in subprocesses

PIPELINE = """\
apiVersion: fnhub/v1
kind: Pipeline
metadata: {name: cli-demo}
spec:
  params: {n: {type: int, default: 3}, factor: {type: float, default: 2}}
  steps:
    - name: data
      uses: ./functions/numbers
      with: {n: "${{ params.n }}"}
    - name: scaled
      uses: ./functions/scale
      with: {table: "${{ steps.data.outputs.table }}", factor: "${{ params.factor }}"}
"""


@pytest.fixture
def project(fns: dict[str, Path], tmp_path: Path) -> Path:
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    return tmp_path


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    return CLI(tmp_path / "user")


def test_run_prints_outputs_caches_and_takes_params(cli: CLI, project: Path) -> None:
    first = cli.json("pipeline", "run", "pipeline.yaml", "-p", "n=4", cwd=project)
    assert first["status"] == "succeeded"
    assert first["steps"] == {"data": "succeeded", "scaled": "succeeded"}
    assert first["outputs"]["scaled"]["total"] == 20.0
    run_dir = Path(first["run_dir"])
    assert run_dir.parent == cli.root / "home" / "runs"
    assert Path(first["outputs"]["scaled"]["scaled"]).is_relative_to(run_dir)
    assert json.loads((run_dir / "run.json").read_text())["params"] == {"n": 4, "factor": 2.0}
    assert (project / "pipeline.lock").is_file()

    again = cli.json("pipeline", "run", "pipeline.yaml", "-p", "n=4", cwd=project)
    assert again["steps"] == {"data": "cached", "scaled": "cached"}
    changed = cli.json("pipeline", "run", "pipeline.yaml", "-p", "n=4", "-p", "factor=3",
                       cwd=project)
    assert changed["steps"] == {"data": "cached", "scaled": "succeeded"}
    forced = cli.json("pipeline", "run", "pipeline.yaml", "-p", "n=4", "--no-cache", cwd=project)
    assert forced["steps"] == {"data": "succeeded", "scaled": "succeeded"}

    plain = cli.ok("pipeline", "run", "pipeline.yaml", cwd=project)
    assert "data: succeeded" in plain and "scaled: succeeded" in plain  # plain lines, no tty
    assert "run folder:" in plain

    cli.fails("pipeline", "run", "pipeline.yaml", "-p", "n=many", cwd=project,
              match="parameter 'n' expects int, got 'many'")
    cli.fails("pipeline", "run", "pipeline.yaml", "-p", "n", cwd=project,
              match="-p 'n': expected NAME=VALUE")
    cli.fails("pipeline", "run", "missing.yaml", cwd=project, match="no pipeline file at")


def test_lock_and_locked_runs(cli: CLI, project: Path) -> None:
    locked = cli.json("pipeline", "lock", "pipeline.yaml", cwd=project)
    assert set(locked["steps"]) == {"data", "scaled"}
    assert json.loads((project / "pipeline.lock").read_text()) == locked
    assert "wrote" in cli.ok("pipeline", "lock", "pipeline.yaml", cwd=project)
    assert cli.json("pipeline", "run", "pipeline.yaml", "--locked",
                    cwd=project)["status"] == "succeeded"

    shutil.copytree(project / "functions" / "scale", project / "functions" / "scale-v2")
    (project / "pipeline.yaml").write_text(PIPELINE.replace("./functions/scale",
                                                            "./functions/scale-v2"))
    cli.fails("pipeline", "run", "pipeline.yaml", "--locked", cwd=project,
              match="is stale: step 'scaled' uses ./functions/scale-v2")
    (project / "pipeline.lock").unlink()
    cli.fails("pipeline", "run", "pipeline.yaml", "--locked", cwd=project,
              match="there is no lock file")


def test_show_tree_json_and_mermaid(cli: CLI, project: Path) -> None:
    tree = cli.ok("pipeline", "show", "pipeline.yaml", cwd=project)
    for text in ("cli-demo", "n (int) = 3", "data  tests/numbers@1.0.0",
                 "table ← steps.data.outputs.table", "factor ← params.factor"):
        assert text in tree
    view = cli.json("pipeline", "show", "pipeline.yaml", cwd=project)
    assert [s["name"] for s in view["steps"]] == ["data", "scaled"]
    chart = cli.ok("pipeline", "show", "pipeline.yaml", "--mermaid", cwd=project)
    assert chart.startswith("flowchart TD") and "data -->|table → table| scaled" in chart


def test_errors_are_one_line_and_name_the_step(cli: CLI, project: Path) -> None:
    (project / "pipeline.yaml").write_text(PIPELINE.replace(
        '{n: "${{ params.n }}"}', '{n: "${{ steps.scaled.outputs.total }}"}'))
    cli.fails("pipeline", "run", "pipeline.yaml", cwd=project,
              match="spec.steps: steps form a cycle: data -> scaled -> data")
    (project / "pipeline.yaml").write_text(PIPELINE.replace(
        '{n: "${{ params.n }}"}', '{n: "${{ params.factor }}"}'))
    cli.fails("pipeline", "show", "pipeline.yaml", cwd=project,
              match="spec.steps[0].with.n: step 'data' input 'n' (int) cannot take "
                    "params.factor (float)")
    cli.fails("pipeline", "export", "pipeline.yaml", "--to", "airflow", "-o", "x.yaml",
              cwd=project, match="invalid value for '--to': 'airflow' is not one of 'kfp', 'argo'")

    (project / "pipeline.yaml").write_text(PIPELINE + """\
    - name: broken
      uses: ./functions/boom
      with: {table: "${{ steps.data.outputs.table }}"}
""")
    proc = cli("pipeline", "run", "pipeline.yaml", cwd=project)
    assert proc.returncode == 1
    assert "error: pipeline 'cli-demo' failed: step 'broken' failed: ValueError: no good rows" \
        in proc.stderr
    assert "| about to fail" in proc.stderr  # the step's log tail
    assert "scaled: succeeded" in proc.stdout  # the independent step finished
