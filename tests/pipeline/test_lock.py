"""pipeline.lock: written on resolution, and `--locked` refusing a stale lock before any step."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from fnhub.core.errors import Conflict, InvalidInput, NotFound
from fnhub.pipeline import Pipeline, PipelineLock

PIPELINE = """\
apiVersion: fnhub/v1
kind: Pipeline
metadata: {name: locked}
spec:
  steps:
    - {name: data, uses: ./functions/numbers, with: {n: 3}}
    - {name: scaled, uses: ./functions/scale, with: {table: "${{ steps.data.outputs.table }}"}}
"""


@pytest.fixture
def pipeline_file(fns: dict[str, Path], tmp_path: Path) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE)
    return path


def runs() -> Path:
    return Path(os.environ["FNHUB_HOME"]) / "runs"


def test_lock_records_every_step_and_locked_runs_accept_it(pipeline_file: Path) -> None:
    pipeline = Pipeline.from_yaml(pipeline_file)
    lock = pipeline.lock()
    written = json.loads((pipeline_file.parent / "pipeline.lock").read_text())
    assert written == lock.model_dump(mode="json")
    assert written["pipeline"] == "locked" and list(written["steps"]) == ["data", "scaled"]
    data = written["steps"]["data"]
    assert data["uses"] == "./functions/numbers" and data["pinned"] is None
    assert data["function"] == "tests/numbers" and data["version"] == "1.0.0"
    assert data["digest"] == pipeline.graph.steps["data"].function.digest

    run = Pipeline.from_yaml(pipeline_file, locked=True).run(locked=True)
    assert run.status == "succeeded"


def test_a_run_without_locked_rewrites_the_lock(pipeline_file: Path) -> None:
    Pipeline.from_yaml(pipeline_file).run()
    lock = PipelineLock.read(pipeline_file.parent / "pipeline.lock")
    assert set(lock.steps) == {"data", "scaled"}
    custom = pipeline_file.parent / "elsewhere.lock"
    Pipeline.from_yaml(pipeline_file, lock_path=custom).run()
    assert PipelineLock.read(custom) == lock


@pytest.mark.parametrize(("change", "error", "message"), [
    (lambda f: (f.parent / "pipeline.lock").unlink(), NotFound,
     "--locked: there is no lock file at"),
    (lambda f: f.write_text(PIPELINE.replace("./functions/scale", "./functions/scale2")),
     Conflict, "is stale: step 'scaled' uses ./functions/scale2, but the lock has "
               "./functions/scale"),
    (lambda f: f.write_text(PIPELINE + "    - {name: extra, uses: ./functions/add, "
                                       "with: {a: 1, b: 2}}\n"),
     Conflict, "is stale: step 'extra' is not in it"),
    (lambda f: f.write_text(PIPELINE.replace(
        '    - {name: scaled, uses: ./functions/scale, with: {table: '
        '"${{ steps.data.outputs.table }}"}}\n', "")),
     Conflict, "it locks step 'scaled', which the pipeline no longer has"),
    (lambda f: (f.parent / "functions" / "scale" / "scale.py").write_text(
        "def scale(table, factor=1.0):\n    return {}\n"),
     Conflict, "is stale: step 'scaled' (./functions/scale) is now tests/scale@1.0.0 with "
               "digest sha256:"),
    (lambda f: (f.parent / "pipeline.lock").write_text("{}"), InvalidInput,
     "not a valid pipeline lock"),
])
def test_locked_refuses_a_stale_lock_before_any_step_runs(pipeline_file: Path, change,
                                                         error: type, message: str) -> None:
    shutil.copytree(pipeline_file.parent / "functions" / "scale",
                    pipeline_file.parent / "functions" / "scale2")
    Pipeline.from_yaml(pipeline_file).lock()
    change(pipeline_file)
    with pytest.raises(error) as info:
        Pipeline.from_yaml(pipeline_file, locked=True).run(locked=True)
    assert message in info.value.message
    assert not runs().exists()  # nothing ran


def test_python_pipelines_check_a_given_lock(fns: dict[str, Path], tmp_path: Path) -> None:
    lock_path = tmp_path / "my.lock"
    with Pipeline("py", lock_path=lock_path) as p:
        p.add("data", str(fns["numbers"]), n=2)
    p.lock()
    assert p.run(locked=True).status == "succeeded"
    with Pipeline("py", lock_path=lock_path) as q:
        q.add("data", str(fns["nap"]), seconds=0, tag="x")
    with pytest.raises(Conflict, match=f"uses {fns['nap']}, but the lock has {fns['numbers']}"):
        q.run(locked=True)
    with pytest.raises(NotFound, match="no lock file"):
        q.check_lock(tmp_path / "other.lock")
