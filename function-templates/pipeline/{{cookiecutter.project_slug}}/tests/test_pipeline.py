"""Run the pipeline, both forms, against the hub in FNHUB_HUB (skipped when it is not set).

Each step's function is resolved on that hub, installed and verified, then run here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import fnhub
import pytest
from packaging.requirements import Requirement

PROJECT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not os.environ.get("FNHUB_HUB"),
                                reason="set FNHUB_HUB to the URL of the hub to run against")


def _load_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pipeline_py", PROJECT / "pipeline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def from_yaml(tmp_path_factory: pytest.TempPathFactory) -> fnhub.Pipeline:
    lock = tmp_path_factory.mktemp("lock") / "pipeline.lock"  # the tests leave pipeline.lock be
    return fnhub.Pipeline.from_yaml(PROJECT / "pipeline.yaml", lock_path=lock)


def test_python_and_yaml_build_the_same_pipeline(from_yaml: fnhub.Pipeline) -> None:
    assert _load_module().build().graph.to_dict() == from_yaml.graph.to_dict()


def test_requirements_txt_covers_every_step(from_yaml: fnhub.Pipeline) -> None:
    lines = (PROJECT / "requirements.txt").read_text().splitlines()
    listed = {Requirement(line).name for line in lines if line and not line.startswith("#")}
    for name, step in from_yaml.graph.steps.items():
        needed = {Requirement(r).name for r in step.function.manifest.spec.requirements}
        assert needed <= listed, f"step {name} also needs {sorted(needed - listed)}"


def test_the_pipeline_trains_a_good_classifier(from_yaml: fnhub.Pipeline,
                                               tmp_path: Path) -> None:
    run = from_yaml.run(runs_dir=tmp_path)
    assert run.status == "succeeded"
    assert set(run.outputs) == set(from_yaml.graph.steps)
    assert run.outputs["evaluate"]["score"] > 0.8
    metrics = json.loads(Path(run.outputs["evaluate"]["metrics"]).read_text())
    assert metrics["accuracy"] == run.outputs["evaluate"]["score"]


def test_the_python_form_runs_as_a_script(tmp_path: Path) -> None:
    """Unchanged steps come from the step cache, so after the test above this is quick."""
    proc = subprocess.run([sys.executable, str(PROJECT / "pipeline.py")], capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "accuracy on the test split: " in proc.stdout
