"""Export to Kubeflow Pipelines: the IR loads back, matches the pipeline, and its command lines
run the functions when filled in the way KFP's launcher fills them, catalog functions that read
by the file's suffix included, from artifact paths named after the artifact."""

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
    published,
    record_image,
)

kfp_components = pytest.importorskip("kfp.components")

PLACEHOLDER = re.compile(
    r"\{\{\$\.(inputs|outputs)\.(parameters|artifacts)\['([^']+)'\](?:\.(path|output_file))?\}\}")


def test_the_ir_loads_back_and_matches_the_pipeline(imaged: dict[str, Path],
                                                    tmp_path: Path) -> None:
    out = demo(imaged).export("kfp", tmp_path / "out" / "pipeline.yaml")
    component = kfp_components.load_component_from_file(str(out))
    assert component.name == "demo-export"
    assert set(component.component_spec.inputs) == {"n", "factor", "tag", "source"}

    ir = yaml.safe_load(out.read_text())
    assert ir["pipelineInfo"]["name"] == "demo-export"
    params = ir["root"]["inputDefinitions"]["parameters"]
    assert params["n"] == {"defaultValue": 3.0, "isOptional": True,
                           "parameterType": "NUMBER_INTEGER"}
    assert params["factor"] == {"parameterType": "NUMBER_DOUBLE"}  # required
    assert params["tag"] == {"isOptional": True, "parameterType": "STRING"}
    assert params["source"] == {"parameterType": "STRING"}  # an artifact's URI

    tasks = ir["root"]["dag"]["tasks"]
    assert set(tasks) == {"data", "scaled", "sum", "rescaled", "nap-time", "importer"}
    assert {name: task.get("dependentTasks", []) for name, task in tasks.items()} == {
        "data": [], "scaled": ["data"], "sum": ["data", "scaled"], "importer": [],
        "rescaled": ["importer"], "nap-time": []}
    assert tasks["data"]["inputs"]["parameters"] == {
        "n": {"componentInputParameter": "n"}, "start": {"runtimeValue": {"constant": 10.0}}}
    assert tasks["scaled"]["inputs"] == {
        "artifacts": {"table": {"taskOutputArtifact": {"outputArtifactKey": "table",
                                                       "producerTask": "data"}}},
        "parameters": {"factor": {"componentInputParameter": "factor"}}}
    assert tasks["sum"]["inputs"]["parameters"] == {
        "a": {"taskOutputParameter": {"outputParameterKey": "total", "producerTask": "scaled"}},
        "b": {"taskOutputParameter": {"outputParameterKey": "count", "producerTask": "data"}}}
    assert tasks["importer"]["inputs"]["parameters"] == {
        "uri": {"componentInputParameter": "source"}}
    assert tasks["rescaled"]["inputs"]["artifacts"]["table"] == {
        "taskOutputArtifact": {"outputArtifactKey": "artifact", "producerTask": "importer"}}
    assert tasks["nap-time"]["inputs"]["parameters"] == {
        "seconds": {"runtimeValue": {"constant": 0.0}}, "tag": {"componentInputParameter": "tag"}}

    components = ir["components"]
    assert components["comp-data"]["outputDefinitions"] == {
        "artifacts": {"table": {"artifactType": {"schemaTitle": "system.Dataset",
                                                 "schemaVersion": "0.0.1"}}},
        "parameters": {"count": {"parameterType": "NUMBER_INTEGER"}}}
    assert components["comp-nap-time"]["outputDefinitions"]["parameters"] == {
        "tag_output": {"parameterType": "STRING"}}

    executors = ir["deploymentSpec"]["executors"]
    functions = {"data": "numbers", "scaled": "scale", "sum": "add", "rescaled": "scale",
                 "nap-time": "nap"}
    entrypoints = {"numbers": "main.py:main", "scale": "scale.py:scale", "add": "main.py:main",
                   "nap": "main.py:main"}
    for task, function in functions.items():
        container = executors[f"exec-{task}"]["container"]
        assert container["image"] == image_of(function)
        assert container["command"] == ["python", "-m", "fnhub.runtime"]
        # the folder `hub build` puts the function in (its label says where)
        assert container["args"][:4] == ["--function-dir", "/opt/fnhub/function",
                                         "--entrypoint", entrypoints[function]]
        assert container["args"][1] == built_function_dir(imaged[function])
    # artifacts travel typed, and are written as folders keeping their files' own names
    assert executors["exec-scaled"]["container"]["args"][4:] == [
        "--artifact", "table:dataset={{$.inputs.artifacts['table'].path}}",
        "--param", "factor={{$.inputs.parameters['factor']}}",
        "--output", "scaled:dataset={{$.outputs.artifacts['scaled'].path}}/",
        "--output", "total:float={{$.outputs.parameters['total'].output_file}}"]
    assert executors["exec-data"]["container"]["resources"] == {
        "cpuLimit": 0.5, "cpuRequest": 0.5, "memoryLimit": 1.073741824,
        "memoryRequest": 1.073741824, "resourceCpuLimit": "500m", "resourceCpuRequest": "500m",
        "resourceMemoryLimit": "1Gi", "resourceMemoryRequest": "1Gi"}
    scaled = executors["exec-scaled"]["container"]["resources"]
    assert (scaled["resourceCpuLimit"], scaled["resourceMemoryLimit"]) == ("2", "4Gi")
    assert scaled["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert scaled["accelerator"]["resourceCount"] == "1"
    assert "resources" not in executors["exec-sum"]["container"]
    assert executors["exec-importer"]["importer"]["typeSchema"]["schemaTitle"] == "system.Dataset"


def render(args: list[str], inputs: dict[str, str], outputs: dict[str, Path]) -> list[str]:
    """Fill an executor's placeholders the way KFP's launcher does."""
    rendered: list[str] = []
    for arg in args:
        if arg.startswith('{"IfPresent"'):
            spec = json.loads(arg)["IfPresent"]
            chosen = spec["Then"] if spec["InputName"] in inputs else spec["Else"]
            rendered += render(chosen, inputs, outputs)
            continue
        rendered.append(PLACEHOLDER.sub(
            lambda m: inputs[m[3]] if m[1] == "inputs" else str(outputs[m[3]]), arg))
    return rendered


def launch(ir: dict[str, Any], task: str, folder: Path, inputs: dict[str, str],
           outputs: dict[str, Path]) -> subprocess.CompletedProcess[str]:
    container = ir["deploymentSpec"]["executors"][f"exec-{task}"]["container"]
    args = render(container["args"], inputs, outputs)
    where = args.index("--function-dir") + 1
    assert args[where] == built_function_dir(folder)
    args[where] = str(folder)  # the image's function folder, here
    return subprocess.run([sys.executable, *container["command"][1:], *args],
                          capture_output=True, text=True, check=False, timeout=120)


@pytest.mark.slow
def test_the_command_lines_run_the_functions(imaged: dict[str, Path], tmp_path: Path) -> None:
    ir = yaml.safe_load(demo(imaged).export("kfp", tmp_path / "kfp.yaml").read_text())
    out = tmp_path / "launcher"
    data = {"table": out / "data" / "table", "count": out / "data" / "count"}
    proc = launch(ir, "data", imaged["numbers"], {"n": "4", "start": "10"}, data)
    assert proc.returncode == 0, proc.stderr
    # the artifact is a folder holding the file the function wrote, under its own name
    assert [p.name for p in data["table"].iterdir()] == ["numbers.csv"]
    assert (data["table"] / "numbers.csv").read_text().splitlines() == [
        "value", "10", "11", "12", "13"]
    assert data["count"].read_text() == "4"

    scaled = {"scaled": out / "scaled" / "scaled", "total": out / "scaled" / "total"}
    proc = launch(ir, "scaled", imaged["scale"], {"table": str(data["table"]), "factor": "2.5"},
                  scaled)
    assert proc.returncode == 0, proc.stderr
    assert scaled["total"].read_text() == "115.0"
    assert (scaled["scaled"] / "scaled.csv").is_file()

    total = {"sum": out / "sum" / "sum"}
    proc = launch(ir, "sum", imaged["add"], {"a": "115.0", "b": "4"}, total)
    assert proc.returncode == 0, proc.stderr
    assert total["sum"].read_text() == "119.0"

    nap = {"tag_output": out / "nap" / "tag"}
    proc = launch(ir, "nap-time", imaged["nap"], {"seconds": "0", "tag": "quiet"}, nap)
    assert proc.returncode == 0, proc.stderr
    assert nap["tag_output"].read_text() == "QUIET"  # a string output is written as is
    args = ir["deploymentSpec"]["executors"]["exec-nap-time"]["container"]["args"]
    assert "tag=null" in render(args, {"seconds": "0"}, nap)  # the optional parameter unset


def launcher_text(value: Any, parameter_type: str) -> str:
    """A parameter value as KFP's launcher puts it on a command line: strings as is, numbers
    without a needless `.0` (the IR stores every number as a double), structs and lists as
    JSON."""
    def plain(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return [plain(x) for x in v] if isinstance(v, list) else v

    if parameter_type == "STRING":
        return value
    if parameter_type == "BOOLEAN":
        return "true" if value else "false"
    return json.dumps(plain(value), separators=(",", ":"))


class MiniKFP:
    """Carries out compiled IR the way KFP's driver and launcher do, with local folders for the
    pods: each input artifact is downloaded to a path named after the artifact (no suffix),
    each output goes to such a path too, output parameters are read back from their files."""

    def __init__(self, ir: dict[str, Any], folders: dict[str, Path], root: Path) -> None:
        self.ir, self.folders, self.root = ir, folders, root
        self.parameters: dict[str, dict[str, Any]] = {}  # task -> output parameter values
        self.artifacts: dict[str, dict[str, Path]] = {}  # task -> uploaded output artifacts

    def run(self, arguments: dict[str, Any]) -> None:
        defined = self.ir["root"].get("inputDefinitions", {}).get("parameters", {})
        params = {name: spec.get("defaultValue") for name, spec in defined.items()}
        params.update(arguments)
        tasks = self.ir["root"]["dag"]["tasks"]
        while len(self.parameters) < len(tasks):
            ready = [name for name, task in tasks.items() if name not in self.parameters
                     and set(task.get("dependentTasks", [])) <= set(self.parameters)]
            assert ready, "the DAG is stuck"
            for name in ready:
                self._task(name, tasks[name], params)

    def _task(self, name: str, task: dict[str, Any], params: dict[str, Any]) -> None:
        component = self.ir["components"][task["componentRef"]["name"]]
        types = {k: v["parameterType"]
                 for k, v in component.get("inputDefinitions", {}).get("parameters", {}).items()}
        pod = self.root / name
        inputs: dict[str, str] = {}
        for key, source in task.get("inputs", {}).get("parameters", {}).items():
            if "componentInputParameter" in source:
                value = params[source["componentInputParameter"]]
            elif "runtimeValue" in source:
                value = source["runtimeValue"]["constant"]
            else:
                ref = source["taskOutputParameter"]
                value = self.parameters[ref["producerTask"]][ref["outputParameterKey"]]
            inputs[key] = launcher_text(value, types[key])
        for key, source in task.get("inputs", {}).get("artifacts", {}).items():
            ref = source["taskOutputArtifact"]
            uploaded = self.artifacts[ref["producerTask"]][ref["outputArtifactKey"]]
            local = pod / "inputs" / key
            local.parent.mkdir(parents=True, exist_ok=True)
            if uploaded.is_dir():
                shutil.copytree(uploaded, local)
            else:
                shutil.copy(uploaded, local)
            inputs[key] = str(local)
        defined = component.get("outputDefinitions", {})
        outputs = {key: pod / "outputs" / key
                   for kind in ("artifacts", "parameters") for key in defined.get(kind, {})}
        for path in outputs.values():
            path.parent.mkdir(parents=True, exist_ok=True)
        proc = launch(self.ir, name, self.folders[name], inputs, outputs)
        assert proc.returncode == 0, f"{name}: {proc.stderr}"
        self.artifacts[name] = {key: outputs[key] for key in defined.get("artifacts", {})}
        self.parameters[name] = {
            key: (outputs[key].read_text() if spec["parameterType"] == "STRING"
                  else json.loads(outputs[key].read_text()))
            for key, spec in defined.get("parameters", {}).items()}


@pytest.mark.slow
def test_catalog_functions_run_from_artifact_paths_without_suffixes(tmp_path: Path) -> None:
    """load-dataset -> split-dataset -> train -> evaluate and describe: every reader picks
    CSV or Parquet by the file's suffix, and KFP names artifact paths after the artifact."""
    folders = imaged_catalog(tmp_path / "catalog")
    ir = yaml.safe_load(catalog_chain(folders).export("kfp", tmp_path / "kfp.yaml").read_text())
    kfp = MiniKFP(ir, folders, tmp_path / "pods")
    kfp.run({})
    assert kfp.parameters["data"] == {"n_rows": 150, "n_features": 4}
    assert kfp.parameters["split"] == {"sizes": {"train": 120, "test": 30, "validation": 0}}
    assert kfp.parameters["describe"] == {"n_rows": 150, "n_columns": 5}
    assert kfp.parameters["train"]["cv_score"] > 0.8
    assert kfp.parameters["evaluate"]["score"] > 0.8

    dataset = kfp.artifacts["data"]["dataset"]
    assert (dataset.name, [p.name for p in dataset.iterdir()]) == ("dataset", ["iris.csv"])
    assert [p.name for p in kfp.artifacts["split"]["test"].iterdir()] == ["test.csv"]
    model = kfp.artifacts["train"]["model"]  # a model folder, kept whole under its name
    assert sorted(p.name for p in (model / "model").iterdir()) == ["model.json", "model.skops"]
    plots = kfp.artifacts["describe"]["plots"]  # a `dir` artifact: the folder's contents
    assert {p.suffix for p in plots.iterdir()} == {".png"}
    metrics = kfp.artifacts["evaluate"]["metrics"] / "metrics.json"
    assert json.loads(metrics.read_text())["n_rows"] == 30


@pytest.mark.slow
def test_the_exporters_do_not_import_docker() -> None:
    """The function folder comes from where `hub build` defines it, without its docker SDK."""
    code = ("import sys, fnhub.pipeline.export_kfp, fnhub.pipeline.export_argo; "
            "print('docker' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert proc.stdout.strip() == "False"


@pytest.mark.parametrize(("build", "message"), [
    (lambda p, f, tmp: p.add("raw", f["boom"], table=p.param("t", type="dataset")),
     "cannot export step 'raw': " + "{boom} is a local folder with no recorded image"),
    (lambda p, f, tmp: p.add("s", f["scale"], table=str(tmp / "data.csv")),
     "cannot export step 's': input 'table' is the local file {tmp}/data.csv"),
    (lambda p, f, tmp: (p.add("a_b", f["add"], a=1, b=2), p.add("a-b", f["add"], a=1, b=2)),
     "steps 'a_b' and 'a-b' both become task 'a-b'"),
    (lambda p, f, tmp: p.add("x", record_image(f["add"], memory="lots"), a=1, b=2),
     "step 'x': tests/add spec.resources: "),
    (lambda p, f, tmp: (p.add("s", f["scale"], table=p.param("t", type="dataset")),
                        p.add("importer", f["add"], a=1, b=2)),
     "step 'importer' would be KFP task 'importer-2'"),
], ids=["local-folder", "local-file", "name-clash", "resources", "importer-clash"])
def test_what_a_cluster_cannot_run_is_refused(imaged: dict[str, Path], tmp_path: Path,
                                              build, message: str) -> None:
    with Pipeline("bad") as p:
        build(p, imaged, tmp_path)
    out = tmp_path / "out.yaml"
    with pytest.raises(InvalidInput) as info:
        p.export("kfp", out)
    assert message.format(boom=imaged["boom"], tmp=tmp_path) in info.value.message
    assert not out.exists()


def test_an_image_digest_without_a_ref_needs_a_hub(imaged: dict[str, Path],
                                                   tmp_path: Path) -> None:
    manifest = yaml.safe_load((imaged["add"] / "function.yaml").read_text())
    del manifest["spec"]["image"]["ref"]
    (imaged["add"] / "function.yaml").write_text(yaml.safe_dump(manifest))
    with Pipeline("noref") as p:
        p.add("x", imaged["add"], a=1, b=2)
    with pytest.raises(InvalidInput, match="records an image digest but no image ref"):
        p.export("kfp", tmp_path / "out.yaml")


PIPELINE = """\
apiVersion: fnhub/v1
kind: Pipeline
metadata: {name: cli-export}
spec:
  params: {n: {type: int, default: 3}}
  steps:
    - {name: data, uses: ./functions/numbers, with: {n: "${{ params.n }}"}}
    - name: scaled
      uses: ./functions/scale
      with: {table: "${{ steps.data.outputs.table }}", factor: 2}
"""


@pytest.mark.slow
def test_cli_export(imaged: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    cli = CLI(tmp_path / "user")
    assert "wrote out/kfp.yaml" in cli.ok("pipeline", "export", "pipeline.yaml", "--to", "kfp",
                                          "-o", "out/kfp.yaml", cwd=tmp_path)
    ir = yaml.safe_load((tmp_path / "out" / "kfp.yaml").read_text())
    assert ir["root"]["dag"]["tasks"]["scaled"]["dependentTasks"] == ["data"]
    assert ir["deploymentSpec"]["executors"]["exec-scaled"]["container"]["image"] == \
        image_of("scale")

    (tmp_path / "pipeline.yaml").write_text(
        PIPELINE.replace("./functions/scale", "./functions/boom").replace(", factor: 2", ""))
    cli.fails("pipeline", "export", "pipeline.yaml", "--to", "kfp", "-o", "bad.yaml",
              cwd=tmp_path, match="cannot export step 'scaled': ./functions/boom is a local "
                                  "folder with no recorded image")


def test_the_hub_url_and_fnhub_spec_are_pipeline_parameters(
        fns: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Steps without an image install fnhub and their function in the pod: from the hub and
    the requirement given as pipeline parameters, never the exporting machine's hub address
    baked into the command. By default, the URL this machine's configuration gives the hub
    the steps came from (its scheme included) and this fnhub's version."""
    monkeypatch.setenv("FNHUB_HUB", "http://hub.internal:8080")
    ir = yaml.safe_load(bootstrapped(fns, "hub.internal:8080").export(
        "kfp", tmp_path / "default.yaml").read_text())
    params = ir["root"]["inputDefinitions"]["parameters"]
    assert params["fnhub_hub_url"] == {"defaultValue": "http://hub.internal:8080",
                                       "isOptional": True, "parameterType": "STRING"}
    assert params["fnhub_pip_spec"]["defaultValue"] == f"fnhub=={__version__}"
    for task in ("data", "scaled"):
        wired = ir["root"]["dag"]["tasks"][task]["inputs"]["parameters"]
        assert wired["fnhub_hub_url"] == {"componentInputParameter": "fnhub_hub_url"}
        assert wired["fnhub_pip_spec"] == {"componentInputParameter": "fnhub_pip_spec"}
        container = ir["deploymentSpec"]["executors"][f"exec-{task}"]["container"]
        assert container["args"][:2] == ["{{$.inputs.parameters['fnhub_hub_url']}}",
                                          "{{$.inputs.parameters['fnhub_pip_spec']}}"]
        script = container["command"][2]
        assert "hub.internal" not in script and "FNHUB_PIP_SPEC" not in script
        assert 'export FNHUB_HUB="$1"' in script and '"$2"' in script
    assert "hub://tests/scale:1.0.0@sha256:" in \
        ir["deploymentSpec"]["executors"]["exec-scaled"]["container"]["command"][2]

    ir = yaml.safe_load(bootstrapped(fns, "hub.internal:8080").export(
        "kfp", tmp_path / "given.yaml", hub_url="https://fnhub.cluster.local/",
        fnhub_spec="fnhub @ https://files.example/fnhub-0.1.0-py3-none-any.whl").read_text())
    params = ir["root"]["inputDefinitions"]["parameters"]
    assert params["fnhub_hub_url"]["defaultValue"] == "https://fnhub.cluster.local"
    assert params["fnhub_pip_spec"]["defaultValue"] == \
        "fnhub @ https://files.example/fnhub-0.1.0-py3-none-any.whl"


def test_steps_with_images_need_no_hub_parameters(imaged: dict[str, Path],
                                                  tmp_path: Path) -> None:
    ir = yaml.safe_load(published(demo(imaged), "127.0.0.1:8080").export(
        "kfp", tmp_path / "out.yaml", hub_url="http://elsewhere:1").read_text())
    assert not {"fnhub_hub_url", "fnhub_pip_spec"} & set(
        ir["root"]["inputDefinitions"]["parameters"])


@pytest.mark.parametrize(("options", "message"), [
    ({"hub_url": "hub.internal"}, "invalid hub URL 'hub.internal'"),
    ({"fnhub_spec": "--index-url=https://evil.example"}, "invalid fnhub package spec"),
    ({"fnhub_spec": "fnhub\n--pre"}, "invalid fnhub package spec"),
    ({"fnhub_spec": "fnhub >= = 1"}, "invalid fnhub package spec"),
    ({"several_hubs": True}, "the steps come from several hubs (a.example, b.example)"),
    ({"reserved": True}, "pipeline parameter 'fnhub_hub_url' is reserved"),
])
def test_bad_export_options_are_refused(fns: dict[str, Path], tmp_path: Path,
                                        options: dict[str, Any], message: str) -> None:
    pipeline = bootstrapped(fns, "a.example")
    if options.pop("several_hubs", False):
        pipeline.graph.steps["scaled"] = bootstrapped(fns, "b.example").graph.steps["scaled"]
    if options.pop("reserved", False):
        pipeline.param("fnhub_hub_url", type="str", default="x")
    out = tmp_path / "out.yaml"
    with pytest.raises(InvalidInput) as info:
        pipeline.export("kfp", out, **options)
    assert message in info.value.message
    assert not out.exists()


def test_cli_export_documents_and_takes_the_hub_options(imaged: dict[str, Path],
                                                       tmp_path: Path) -> None:
    cli = CLI(tmp_path / "user")
    usage = cli.ok("pipeline", "export", "--help")
    for text in ("--hub-url", "--fnhub-spec", "fnhub_hub_url", "fnhub_pip_spec"):
        assert text in usage
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    export = ("pipeline", "export", "pipeline.yaml", "--to", "kfp", "-o", "kfp.yaml")
    cli.ok(*export, "--hub-url", "https://hub.example", "--fnhub-spec", "fnhub==0.1.0",
           cwd=tmp_path)
    cli.fails(*export, "--fnhub-spec", "-r evil.txt", cwd=tmp_path,
              match="invalid fnhub package spec '-r evil.txt'")
    cli.fails(*export, "--hub-url", "ftp://hub.example", cwd=tmp_path,
              match="invalid hub URL 'ftp://hub.example'")
