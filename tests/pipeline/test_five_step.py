"""Acceptance (issue #4, points 1 to 3) on the real catalog through a real hub: a five-step
pipeline, load-dataset -> split-dataset -> train -> evaluate with describe beside them, run by the
local engine (cached, re-run only where a parameter changed), on a Dask LocalCluster of two
worker processes (the same metrics), and exported to KFP and Argo with the functions' pinned
URIs, whose container command really installs and runs a step."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from fnhub.core.manifest import load_manifest
from fnhub.core.uri import parse_uri
from fnhub.pipeline import Pipeline, PipelineRun
from tests.helpers import CLI, HubProcess
from tests.pipeline.catalog import PIPELINE, STEPS, statuses
from tests.pipeline.exports import CATALOG

pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def locked_copy(catalog_hub: HubProcess, catalog_user_root: Path) -> Path:
    """A folder with the pipeline and its lock, for the tests that break the pipeline."""
    folder = catalog_user_root / "broken"
    folder.mkdir()
    (folder / "pipeline.yaml").write_text(PIPELINE)
    CLI(catalog_user_root, catalog_hub.url).ok("pipeline", "lock", "pipeline.yaml", cwd=folder)
    return folder


def timed_run(pipeline: Pipeline, **params: object) -> tuple[PipelineRun, float]:
    started = time.monotonic()
    run = pipeline.run(**params)
    return run, time.monotonic() - started


def test_local_engine_caches_and_reruns_only_what_a_change_feeds(catalog_project: Path,
                                                                 catalog_user: CLI) -> None:
    pipeline = Pipeline.from_yaml(catalog_project / "pipeline.yaml")
    host = catalog_user.hub_url.split("//")[1] if catalog_user.hub_url else ""
    for name, node in pipeline.graph.steps.items():
        assert node.function.pinned and node.function.pinned.startswith(f"hub://{host}/library/")
        newest = load_manifest(CATALOG / node.function.manifest.metadata.name).metadata.version
        assert node.function.version == newest, name

    first, first_s = timed_run(pipeline, cache=False)
    assert statuses(first) == dict.fromkeys(STEPS, "succeeded")
    assert first.outputs["data"]["n_rows"] == 150
    assert first.outputs["split"]["sizes"] == {"train": 120, "test": 30, "validation": 0}
    assert first.outputs["evaluate"]["score"] > 0.85
    assert first.outputs["describe"]["n_columns"] == 5
    assert first.outputs["train"]["cv_score"] > 0.85

    second, second_s = timed_run(Pipeline.from_yaml(catalog_project / "pipeline.yaml"))
    assert statuses(second) == dict.fromkeys(STEPS, "cached")
    assert second_s * 10 <= first_s, f"cached run {second_s:.2f}s vs first {first_s:.2f}s"
    assert second.outputs["evaluate"]["score"] == first.outputs["evaluate"]["score"]
    assert second.outputs["evaluate"]["metrics"].read_bytes() == \
        first.outputs["evaluate"]["metrics"].read_bytes()
    assert second.outputs["evaluate"]["metrics"].is_relative_to(second.run_dir)

    # one parameter through the CLI, locked to what the SDK runs resolved: only describe runs
    changed = catalog_user.json("pipeline", "run", "pipeline.yaml", "--locked", "-p",
                                "bins=5", cwd=catalog_project)
    assert changed["steps"] == {**dict.fromkeys(STEPS, "cached"), "describe": "succeeded"}

    # a split parameter: split and everything downstream of it, not data nor describe
    resplit = pipeline.run(test_size=0.3)
    assert statuses(resplit) == {"data": "cached", "split": "succeeded", "train": "succeeded",
                                 "evaluate": "succeeded", "describe": "cached"}
    assert resplit.outputs["split"]["sizes"]["test"] == 45


def test_dask_local_cluster_gives_the_same_metrics(catalog_project: Path,
                                                   catalog_user: CLI) -> None:
    pytest.importorskip("distributed")
    pipeline = Pipeline.from_yaml(catalog_project / "pipeline.yaml")
    local = pipeline.run()
    remote = pipeline.run(engine="dask", workers=2, cache=False)
    assert remote.engine == "dask"
    assert statuses(remote) == dict.fromkeys(STEPS, "succeeded")
    for step, output in [("train", "metrics"), ("evaluate", "metrics")]:
        assert json.loads(remote.outputs[step][output].read_text()) == \
            json.loads(local.outputs[step][output].read_text())
    assert remote.outputs["describe"]["summary"].read_bytes() == \
        local.outputs["describe"]["summary"].read_bytes()
    for step in STEPS:
        values = {k: v for k, v in local.outputs[step].items() if not isinstance(v, Path)}
        assert {k: remote.outputs[step][k] for k in values} == values


def test_exports_install_the_pinned_functions_in_the_base_image(catalog_project: Path,
                                                                catalog_user: CLI,
                                                                tmp_path: Path) -> None:
    pipeline = Pipeline.from_yaml(catalog_project / "pipeline.yaml")
    graph = pipeline.graph
    # each step installs its pinned version and digest from the hub at `fnhub_hub_url`
    installs = {step: str(dataclasses.replace(parse_uri(node.function.pinned or ""), host=None))
                for step, node in graph.steps.items()}
    ir = yaml.safe_load(pipeline.export("kfp", tmp_path / "kfp.yaml").read_text())
    tasks = ir["root"]["dag"]["tasks"]
    assert {name: task.get("dependentTasks", []) for name, task in tasks.items()} == {
        "data": [], "split": ["data"], "train": ["split"], "evaluate": ["split", "train"],
        "describe": ["data"]}
    params = ir["root"]["inputDefinitions"]["parameters"]
    assert set(params) == {"dataset", "test_size", "cv", "bins", "fnhub_hub_url",
                           "fnhub_pip_spec"}
    assert params["fnhub_hub_url"]["defaultValue"] == catalog_user.hub_url
    for step in STEPS:
        container = ir["deploymentSpec"]["executors"][f"exec-{step}"]["container"]
        assert container["image"] == "python:3.11-slim"  # the manifests' base image
        assert container["command"][:2] == ["sh", "-c"]
        assert installs[step] in container["command"][2]
        memory = "1Gi" if step == "data" else "2Gi"
        assert container["resources"]["resourceMemoryLimit"] == memory
        assert container["resources"]["resourceCpuLimit"] == "1"

    workflow = yaml.safe_load(pipeline.export("argo", tmp_path / "argo.yaml").read_text())
    templates = {t["name"]: t for t in workflow["spec"]["templates"]}
    dag = {t["name"]: t.get("dependencies", []) for t in templates["pipeline"]["dag"]["tasks"]}
    assert dag == {"data": [], "split": ["data"], "train": ["split"],
                   "evaluate": ["train", "split"], "describe": ["data"]}
    for step in STEPS:
        container = templates[f"step-{step}"]["container"]
        assert container["image"] == "python:3.11-slim"
        assert installs[step] in container["command"][2]

    # the data step's container command, run here: pip finds everything installed (no index),
    # the pinned URI is installed from the hub and verified, the runtime writes the outputs
    container = ir["deploymentSpec"]["executors"]["exec-data"]["container"]
    out = tmp_path / "outputs"
    args = [arg.replace("{{$.inputs.parameters['name']}}", "wine")
               .replace("{{$.inputs.parameters['fnhub_hub_url']}}", catalog_user.hub_url or "")
               .replace("{{$.inputs.parameters['fnhub_pip_spec']}}",
                        params["fnhub_pip_spec"]["defaultValue"])
               .replace("{{$.outputs.artifacts['dataset'].path}}", str(out / "dataset"))
               .replace("{{$.outputs.parameters['n_rows'].output_file}}", str(out / "n_rows"))
               .replace("{{$.outputs.parameters['n_features'].output_file}}",
                        str(out / "n_features"))
            for arg in container["args"]]
    env = {**{k: v for k, v in catalog_user.env.items() if k != "FNHUB_HUB"}, "PIP_NO_INDEX": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "FNHUB_HOME": str(tmp_path / "pod-home")}
    proc = subprocess.run([*container["command"], *args], capture_output=True, text=True,
                          env=env, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (out / "n_rows").read_text() == "178"  # wine
    assert (out / "n_features").read_text() == "13"
    # the artifact is a folder holding the table under its own name, suffix and all
    assert [p.name for p in (out / "dataset").iterdir()] == ["wine.csv"]
    assert (out / "dataset" / "wine.csv").read_text().splitlines()[0].endswith(",target")
    assert (tmp_path / "pod-home" / "functions").is_dir()  # installed there, verified


@pytest.mark.parametrize(("change", "message"), [
    (("bins: \"${{ params.bins }}\"", "bins: \"${{ steps.data.outputs.dataset }}\""),
     "spec.steps[4].with.bins: step 'describe' input 'bins' (int) cannot take "
     "steps.data.outputs.dataset (dataset)"),
    (("name: \"${{ params.dataset }}\"", "name: \"${{ steps.describe.outputs.summary }}\""),
     "spec.steps: steps form a cycle: data -> describe -> data"),
    (("hub://train:^1", "hub://train:1.0.0"),
     "is stale: step 'train' uses hub://train:1.0.0, but the lock has hub://train:^1"),
], ids=["wiring", "cycle", "stale-lock"])
def test_wiring_errors_cycles_and_stale_locks_fail_before_any_step(
        catalog_user: CLI, locked_copy: Path, change: tuple[str, str], message: str) -> None:
    """Acceptance 4 on the catalog: each is refused with its reason, and nothing runs."""
    folder = locked_copy
    (folder / "pipeline.yaml").write_text(PIPELINE.replace(*change))
    runs = catalog_user.root / "home" / "runs"
    before = set(runs.iterdir()) if runs.is_dir() else set()
    catalog_user.fails("pipeline", "run", "pipeline.yaml", "--locked", cwd=folder,
                       match=message)
    assert (set(runs.iterdir()) if runs.is_dir() else set()) == before
