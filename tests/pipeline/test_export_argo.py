"""Export to Argo Workflows: the Workflow validates with hera's models of the Argo schema, has
the pipeline's DAG, and runs the functions when its tasks are carried out the way Argo does,
catalog functions that read by the file's suffix included, from artifact paths named after the
artifact."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fnhub.core import __version__
from fnhub.core.errors import InvalidInput
from fnhub.pipeline import Pipeline
from tests.helpers import CLI
from tests.pipeline.exports import (
    bootstrapped,
    built_function_dir,
    catalog_chain,
    demo,
    image_of,
    imaged_catalog,
    record_image,
)

hera = pytest.importorskip("hera.workflows")
from hera.workflows import models  # noqa: E402

VARIABLE = re.compile(r"\{\{([^}]+)\}\}")


def test_the_workflow_validates_and_has_the_pipelines_dag(imaged: dict[str, Path],
                                                          tmp_path: Path) -> None:
    out = demo(imaged).export("argo", tmp_path / "out" / "workflow.yaml")
    data = yaml.safe_load(out.read_text())
    # hera's models of the Argo schema take every field, and drop none
    assert models.Workflow.model_validate(data).model_dump(by_alias=True,
                                                           exclude_none=True) == data
    assert hera.Workflow.from_file(out).to_dict() == data
    assert data["apiVersion"] == "argoproj.io/v1alpha1" and data["kind"] == "Workflow"
    assert data["metadata"] == {"generateName": "demo-export-"}

    spec = data["spec"]
    assert spec["entrypoint"] == "pipeline"
    assert spec["arguments"] == {
        "parameters": [{"name": "n", "value": "3"}, {"name": "factor"},
                       {"name": "tag", "value": "null"}],
        "artifacts": [{"name": "source"}]}
    templates = {t["name"]: t for t in spec["templates"]}
    dag = templates["pipeline"]
    assert dag["inputs"] == {"artifacts": [{"name": "source"}]}
    tasks = {t["name"]: t for t in dag["dag"]["tasks"]}
    assert set(tasks) == {"data", "scaled", "sum", "rescaled", "nap-time"}
    assert {name: t.get("dependencies", []) for name, t in tasks.items()} == {
        "data": [], "scaled": ["data"], "sum": ["scaled", "data"], "rescaled": [],
        "nap-time": []}
    assert {name: t["template"] for name, t in tasks.items()} == {
        name: f"step-{name}" for name in tasks}
    assert tasks["data"]["arguments"] == {"parameters": [
        {"name": "n", "value": "{{workflow.parameters.n}}"}, {"name": "start", "value": "10"}]}
    assert tasks["scaled"]["arguments"] == {
        "artifacts": [{"name": "table", "from": "{{tasks.data.outputs.artifacts.table}}"}],
        "parameters": [{"name": "factor", "value": "{{workflow.parameters.factor}}"}]}
    assert tasks["sum"]["arguments"]["parameters"] == [
        {"name": "a", "value": "{{tasks.scaled.outputs.parameters.total}}"},
        {"name": "b", "value": "{{tasks.data.outputs.parameters.count}}"}]
    assert tasks["rescaled"]["arguments"] == {
        "artifacts": [{"name": "table", "from": "{{inputs.artifacts.source}}"}]}

    functions = {"data": "numbers", "scaled": "scale", "sum": "add", "rescaled": "scale",
                 "nap-time": "nap"}
    for task, function in functions.items():
        container = templates[f"step-{task}"]["container"]
        assert container["image"] == image_of(function)
        assert container["command"] == ["python", "-m", "fnhub.runtime"]
        # the folder `hub build` puts the function in (its label says where)
        assert container["args"][:2] == ["--function-dir", "/opt/fnhub/function"]
        assert container["args"][1] == built_function_dir(imaged[function])
    step = templates["step-data"]
    assert step["inputs"] == {"parameters": [{"name": "n"}, {"name": "start"}]}
    assert step["outputs"] == {
        "artifacts": [{"name": "table", "path": "/tmp/fnhub/outputs/table"}],
        "parameters": [{"name": "count", "valueFrom": {"path": "/tmp/fnhub/outputs/count"}}]}
    assert step["container"]["args"][4:] == [
        "--param", "n={{inputs.parameters.n}}", "--param", "start={{inputs.parameters.start}}",
        "--param", "sleep=0.0",
        "--output", "table:dataset=/tmp/fnhub/outputs/table/",  # a folder, keeping the name
        "--output", "count:int=/tmp/fnhub/outputs/count"]
    assert templates["step-scaled"]["container"]["args"][4:6] == [
        "--artifact", "table:dataset=/tmp/fnhub/inputs/table"]  # typed: the folder rule
    assert step["container"]["resources"] == {"limits": {"cpu": "500m", "memory": "1Gi"},
                                              "requests": {"cpu": "500m", "memory": "1Gi"}}
    gpu = {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}
    assert templates["step-scaled"]["container"]["resources"] == {"limits": gpu,
                                                                  "requests": gpu}
    assert "resources" not in templates["step-sum"]["container"]
    # inputs and outputs may share a name in Argo; the optional parameter is read as JSON
    assert templates["step-nap-time"]["container"]["args"][-4:] == [
        "--param", "tag={{inputs.parameters.tag}}", "--output", "tag:str=/tmp/fnhub/outputs/tag"]


class MiniArgo:
    """Carries out a Workflow's DAG the way Argo does, with local folders for the pods:
    arguments are substituted, artifacts (a file, or a folder Argo archives and unpacks) copied
    to the input path named after the artifact, output parameters read back."""

    def __init__(self, workflow: dict[str, Any], folders: dict[str, Path], root: Path) -> None:
        self.spec = workflow["spec"]
        self.templates = {t["name"]: t for t in self.spec["templates"]}
        self.folders, self.root = folders, root
        self.outputs: dict[str, dict[str, str]] = {}

    def run(self, parameters: dict[str, str], artifacts: dict[str, Path]) -> None:
        workflow = {p["name"]: p.get("value") for p in self.spec["arguments"]["parameters"]}
        workflow.update(parameters)
        done: set[str] = set()
        tasks = self.templates[self.spec["entrypoint"]]["dag"]["tasks"]
        while len(done) < len(tasks):
            for task in tasks:
                if task["name"] not in done and set(task.get("dependencies", [])) <= done:
                    self._task(task, workflow, artifacts)
                    done.add(task["name"])

    def _value(self, text: str, scope: dict[str, str]) -> str:
        return VARIABLE.sub(lambda m: scope[m[1]], text)

    def _task(self, task: dict[str, Any], workflow: dict[str, str],
              artifacts: dict[str, Path]) -> None:
        pod = self.root / task["name"]
        scope = {f"workflow.parameters.{k}": v for k, v in workflow.items()}
        for name, outputs in self.outputs.items():
            scope.update({f"tasks.{name}.outputs.parameters.{k}": v for k, v in outputs.items()})
        args = task.get("arguments", {})
        inputs = {f"inputs.parameters.{p['name']}": self._value(p["value"], scope)
                  for p in args.get("parameters", [])}
        for artifact in args.get("artifacts", []):
            source = artifact["from"].strip("{}")
            if source.startswith("inputs.artifacts."):
                path = artifacts[source.removeprefix("inputs.artifacts.")]
            else:
                upstream, _, _, name = source.removeprefix("tasks.").split(".")
                path = self.root / upstream / "outputs" / name
            target = pod / "inputs" / artifact["name"]
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.is_dir():
                shutil.copytree(path, target)
            else:
                shutil.copy(path, target)
        template = self.templates[task["template"]]
        container = template["container"]
        args_ = [self._value(a, inputs).replace("/tmp/fnhub", str(pod))
                 for a in container["args"]]
        folder = self.folders[task["name"]]
        where = args_.index("--function-dir") + 1
        assert args_[where] == built_function_dir(folder)
        args_[where] = str(folder)  # the image's function folder, here
        proc = subprocess.run([sys.executable, *container["command"][1:], *args_],
                              capture_output=True, text=True, check=False, timeout=120)
        assert proc.returncode == 0, f"{task['name']}: {proc.stderr}"
        self.outputs[task["name"]] = {
            p["name"]: Path(p["valueFrom"]["path"].replace("/tmp/fnhub", str(pod))).read_text()
            for p in template.get("outputs", {}).get("parameters", [])}


def test_the_workflow_runs_the_functions(imaged: dict[str, Path], tmp_path: Path) -> None:
    workflow = yaml.safe_load(demo(imaged).export("argo", tmp_path / "wf.yaml").read_text())
    source = tmp_path / "source.csv"
    source.write_text("value\n1\n2\n")
    folders = {"data": imaged["numbers"], "scaled": imaged["scale"], "sum": imaged["add"],
               "rescaled": imaged["scale"], "nap-time": imaged["nap"]}
    argo = MiniArgo(workflow, folders, tmp_path / "pods")
    argo.run({"n": "4", "factor": "2.5", "tag": '"quiet"'}, {"source": source})
    assert argo.outputs["data"] == {"count": "4"}
    assert argo.outputs["scaled"] == {"total": "115.0"}
    assert argo.outputs["sum"] == {"sum": "119.0"}
    assert argo.outputs["rescaled"] == {"total": "3.0"}  # the function's default factor
    assert argo.outputs["nap-time"] == {"tag": "QUIET"}
    scaled = tmp_path / "pods" / "scaled" / "outputs" / "scaled"
    assert [p.name for p in scaled.iterdir()] == ["scaled.csv"]  # the function's own name
    assert (scaled / "scaled.csv").read_text().splitlines() == [
        "value", "25.0", "27.5", "30.0", "32.5"]


@pytest.mark.slow
def test_catalog_functions_run_from_artifact_paths_without_suffixes(tmp_path: Path) -> None:
    """load-dataset -> split-dataset -> train -> evaluate and describe, on Parquet: every
    reader picks CSV or Parquet by the file's suffix, and Argo names artifact paths after the
    artifact."""
    folders = imaged_catalog(tmp_path / "catalog")
    workflow = yaml.safe_load(catalog_chain(folders).export("argo", tmp_path / "wf.yaml")
                              .read_text())
    argo = MiniArgo(workflow, folders, tmp_path / "pods")
    argo.run({"format": "parquet"}, {})
    assert argo.outputs["data"] == {"n_rows": "150", "n_features": "4"}
    assert json.loads(argo.outputs["split"]["sizes"]) == {"train": 120, "test": 30,
                                                          "validation": 0}
    assert argo.outputs["describe"] == {"n_rows": "150", "n_columns": "5"}
    assert float(argo.outputs["evaluate"]["score"]) > 0.8

    pods = tmp_path / "pods"
    assert [p.name for p in (pods / "split" / "inputs" / "table").iterdir()] == ["iris.parquet"]
    assert [p.name for p in (pods / "evaluate" / "inputs" / "dataset").iterdir()] == [
        "test.csv"]
    model = pods / "evaluate" / "inputs" / "model" / "model"  # the model folder, whole
    assert sorted(p.name for p in model.iterdir()) == ["model.json", "model.skops"]
    assert {p.suffix for p in (pods / "describe" / "outputs" / "plots").iterdir()} == {".png"}


@pytest.mark.parametrize(("build", "message"), [
    (lambda p, f, tmp: p.add("raw", f["boom"], table=p.param("t", type="dataset")),
     "cannot export step 'raw': {boom} is a local folder with no recorded image"),
    (lambda p, f, tmp: p.add("s", f["scale"], table=str(tmp / "data.csv")),
     "cannot export step 's': input 'table' is the local file {tmp}/data.csv"),
    (lambda p, f, tmp: (p.add("a_b", f["add"], a=1, b=2), p.add("a-b", f["add"], a=1, b=2)),
     "steps 'a_b' and 'a-b' both become task 'a-b'"),
    (lambda p, f, tmp: p.add("x", record_image(f["add"], cpu="fast"), a=1, b=2),
     "step 'x': tests/add spec.resources: "),
], ids=["local-folder", "local-file", "name-clash", "resources"])
def test_what_a_cluster_cannot_run_is_refused(imaged: dict[str, Path], tmp_path: Path,
                                              build, message: str) -> None:
    with Pipeline("bad") as p:
        build(p, imaged, tmp_path)
    out = tmp_path / "out.yaml"
    with pytest.raises(InvalidInput) as info:
        p.export("argo", out)
    assert message.format(boom=imaged["boom"], tmp=tmp_path) in info.value.message
    assert not out.exists()


@pytest.mark.slow
def test_cli_export(imaged: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text("""\
apiVersion: fnhub/v1
kind: Pipeline
metadata: {name: cli-export}
spec:
  steps:
    - {name: data, uses: ./functions/numbers, with: {n: 2}}
    - {name: scaled, uses: ./functions/scale, with: {table: "${{ steps.data.outputs.table }}"}}
""")
    cli = CLI(tmp_path / "user")
    assert "wrote wf.yaml" in cli.ok("pipeline", "export", "pipeline.yaml", "--to", "argo",
                                     "-o", "wf.yaml", cwd=tmp_path)
    workflow = yaml.safe_load((tmp_path / "wf.yaml").read_text())
    tasks = {t["name"]: t for t in workflow["spec"]["templates"][-1]["dag"]["tasks"]}
    assert tasks["scaled"]["dependencies"] == ["data"]


def test_the_hub_url_and_fnhub_spec_are_workflow_parameters(
        fns: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As in KFP: steps without an image get the hub URL and the fnhub requirement from
    workflow parameters (defaults: the configured hub's URL, this fnhub's version)."""
    monkeypatch.setenv("FNHUB_HUB", "http://hub.internal:8080")
    out = bootstrapped(fns, "hub.internal:8080").export("argo", tmp_path / "default.yaml")
    data = yaml.safe_load(out.read_text())
    assert models.Workflow.model_validate(data).model_dump(by_alias=True,
                                                           exclude_none=True) == data
    values = {p["name"]: p.get("value") for p in data["spec"]["arguments"]["parameters"]}
    assert values == {"fnhub_hub_url": "http://hub.internal:8080",
                      "fnhub_pip_spec": f"fnhub=={__version__}"}
    templates = {t["name"]: t for t in data["spec"]["templates"]}
    for task in ("data", "scaled"):
        container = templates[f"step-{task}"]["container"]
        assert container["args"][:2] == ["{{workflow.parameters.fnhub_hub_url}}",
                                          "{{workflow.parameters.fnhub_pip_spec}}"]
        assert "hub.internal" not in container["command"][2]
    assert "hub://tests/scale:1.0.0@sha256:" in templates["step-scaled"]["container"]["command"][2]

    out = bootstrapped(fns, "hub.internal:8080").export(
        "argo", tmp_path / "given.yaml", hub_url="https://fnhub.cluster.local",
        fnhub_spec="fnhub==0.1.0")
    values = {p["name"]: p.get("value")
              for p in yaml.safe_load(out.read_text())["spec"]["arguments"]["parameters"]}
    assert values == {"fnhub_hub_url": "https://fnhub.cluster.local",
                      "fnhub_pip_spec": "fnhub==0.1.0"}
