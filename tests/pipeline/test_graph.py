"""Building pipelines: wiring and type checks, YAML parsing and its errors, cycles, equality."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import fnhub
from fnhub.core.errors import InvalidInput, ManifestError
from fnhub.pipeline import Constant, OutputRef, ParamRef, Pipeline
from fnhub.pipeline.graph import compatible
from tests.pipeline.functions import make_function


def write_yaml(folder: Path, body: str, name: str = "pipeline.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


DEMO = """\
    apiVersion: fnhub/v1
    kind: Pipeline
    metadata: {name: demo}
    spec:
      params:
        n: {type: int, default: 3}
        factor: {type: float}
      steps:
        - name: scaled
          uses: ./functions/scale
          with: {table: "${{ steps.data.outputs.table }}", factor: "${{ params.factor }}"}
        - name: data
          uses: ./functions/numbers
          with: {n: "${{ params.n }}", start: 10}
"""


def test_python_and_yaml_forms_build_the_same_graph(fns: dict[str, Path], tmp_path: Path) -> None:
    with Pipeline("demo") as p:
        n = p.param("n", type="int", default=3)
        factor = p.param("factor", type="float")
        data = p.add("data", fns["numbers"], n=n, start=10)  # a Path is a local folder
        p.add("scaled", fnhub.import_function(str(fns["scale"])),
              table=data.outputs["table"], factor=factor)
    from_yaml = Pipeline.from_yaml(write_yaml(tmp_path, DEMO))
    assert from_yaml.graph == p.graph
    # the YAML lists `scaled` first; the graph keeps dependency order
    assert list(from_yaml.graph.steps) == ["data", "scaled"]
    node = from_yaml.graph.steps["scaled"]
    assert node.inputs == {"table": OutputRef("data", "table"), "factor": ParamRef("factor")}
    assert node.function.uses == "./functions/scale"
    assert node.function.digest.startswith("sha256:") and node.function.pinned is None
    assert from_yaml.graph.params["factor"].required
    assert not from_yaml.graph.params["n"].required

    other = Pipeline.from_yaml(write_yaml(tmp_path, DEMO.replace("start: 10", "start: 11"),
                                          "other.yaml"))
    assert other.graph != p.graph


def test_constant_artifacts_are_absolute_paths(fns: dict[str, Path], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with Pipeline("paths") as p:
        step = p.add("s", str(fns["scale"]), table="data/in.csv", factor="2.5")
    assert step.node.inputs == {"table": Constant(str(tmp_path / "data" / "in.csv")),
                                "factor": Constant(2.5)}
    (tmp_path / "sub").mkdir()
    yaml_path = write_yaml(tmp_path / "sub", """\
        apiVersion: fnhub/v1
        kind: Pipeline
        metadata: {name: paths}
        spec:
          steps:
            - {name: s, uses: ../functions/scale, with: {table: ../data/in.csv, factor: 2.5}}
    """)
    assert Pipeline.from_yaml(yaml_path).graph == p.graph


@pytest.mark.parametrize(("build", "message"), [
    (lambda p, f, d: p.add("x", f["nap"], seconds=1, tag=d.outputs["table"]),
     "step 'x' input 'tag' (str) cannot take steps.data.outputs.table (dataset)"),
    (lambda p, f, d: p.add("x", f["numbers"], n=d.outputs["count"], start=d.outputs["table"]),
     "step 'x' input 'start' (int) cannot take steps.data.outputs.table (dataset)"),
    (lambda p, f, d: p.add("x", f["scale"], table=d.outputs["count"]),
     "step 'x' input 'table' (dataset) cannot take steps.data.outputs.count (int)"),
    (lambda p, f, d: p.add("x", f["numbers"], n=p.param("size", type="float", default=1.0)),
     "step 'x' input 'n' (int) cannot take params.size (float)"),
    (lambda p, f, d: p.add("x", f["scale"], table=p.param("t", type="str", default="a.csv")),
     "step 'x' input 'table' (dataset) cannot take params.t (str)"),
    (lambda p, f, d: p.add("x", f["numbers"], n="three"),
     "step 'x' input 'n' (int) cannot take 'three' (str)"),
    (lambda p, f, d: p.add("x", f["numbers"], n=2.5),
     "step 'x' input 'n' (int) cannot take 2.5 (float)"),
    (lambda p, f, d: p.add("x", f["scale"], table=5),
     "step 'x' input 'table' (dataset) cannot take 5 (int): it needs a path"),
    (lambda p, f, d: p.add("x", f["numbers"], n=1, colour="red"),
     "step 'x': tests/numbers has no input 'colour'"),
    (lambda p, f, d: p.add("x", f["numbers"], n=1, strat=2),
     "has no input 'strat' (did you mean 'start'?)"),
    (lambda p, f, d: p.add("x", f["numbers"], start=2),
     "step 'x': missing required input 'n' (int) of tests/numbers"),
    (lambda p, f, d: p.add("x", f["scale"], table=d.outputs["tabel"]),
     "step 'data' (tests/numbers) has no output 'tabel' (outputs: table, count)"),
    (lambda p, f, d: p.add("data", f["numbers"], n=1),
     "step 'data' is defined twice"),
    (lambda p, f, d: p.add("Bad Name", f["numbers"], n=1),
     "invalid step name 'Bad Name'"),
    (lambda p, f, d: p.add("x", f["numbers"], n=ParamRef("nope")),
     "step 'x' input 'n' (int): unknown parameter 'nope'"),
    (lambda p, f, d: p.add("x", f["scale"], table=OutputRef("ghost", "table")),
     "step 'x' input 'table' (dataset): unknown step 'ghost'"),
    (lambda p, f, d: p.add("x", f["numbers"], n=p.param("n", type="int", default="x")),
     "parameter 'n' expects int, got 'x'"),
    (lambda p, f, d: p.param("n", type="integer"),
     "parameter 'n': unknown type 'integer'"),
    (lambda p, f, d: p.add("x", 42),
     "step 'x': expected a Function, a hub URI or a local folder path, got int"),
])
def test_wiring_errors_name_both_ends(fns: dict[str, Path], build, message: str) -> None:
    functions = {name: str(path) for name, path in fns.items()}
    with Pipeline("wires") as p:
        data = p.add("data", functions["numbers"], n=3)
        with pytest.raises(InvalidInput) as info:
            build(p, functions, data)
    assert message in info.value.message


def test_compatible_wires_are_accepted(fns: dict[str, Path], tmp_path: Path) -> None:
    reader = make_function(tmp_path / "reader", "reader", "def main(f, d=None):\n    return 1\n",
                           inputs=[{"name": "f", "type": "file"},
                                   {"name": "d", "type": "dir", "default": None}],
                           outputs=[{"name": "n", "type": "int"}])
    with Pipeline("ok") as p:
        data = p.add("data", str(fns["numbers"]), n=3)
        p.add("sum", str(fns["add"]), a=data.outputs["count"], b=2)  # int into float
        p.add("read", str(reader), f=data.outputs["table"])  # a dataset is a file
        p.add("read2", str(reader), f=p.param("model", type="model"))
    assert p.graph.steps["sum"].inputs["b"] == Constant(2)
    with pytest.raises(InvalidInput, match=r"input 'd' \(dir\) cannot take steps.data.outputs"):
        p.add("read3", str(reader), f=data.outputs["table"], d=data.outputs["table"])


@pytest.mark.parametrize(("source", "target", "ok"), [
    ("int", "float", True), ("float", "int", False), ("str", "str", True),
    ("bool", "int", False), ("dataset", "dataset", True), ("dataset", "file", True),
    ("model", "file", True), ("metrics", "file", True), ("dir", "file", False),
    ("file", "dataset", False), ("dataset", "model", False), ("dataset", "str", False),
    ("str", "file", False),
])
def test_type_rules(source: str, target: str, ok: bool) -> None:
    assert compatible(source, target) is ok


def test_outputs_mapping(fns: dict[str, Path]) -> None:
    with Pipeline("m") as p:
        data = p.add("data", str(fns["numbers"]), n=1)
    assert list(data.outputs) == ["table", "count"] and len(data.outputs) == 2
    assert "table" in data.outputs and "nope" not in data.outputs
    assert data.outputs.get("nope") is None
    assert data.outputs["count"] == OutputRef("data", "count")
    assert repr(data) == "<Step data: tests/numbers@1.0.0>"


def _pipeline(steps: str, params: str = "") -> str:
    return ("apiVersion: fnhub/v1\nkind: Pipeline\nmetadata: {name: bad}\nspec:\n"
            + (f"  params: {params}\n" if params else "") + "  steps:\n"
            + textwrap.indent(textwrap.dedent(steps), "    "))


@pytest.mark.parametrize(("body", "message"), [
    (_pipeline("""\
        - {name: a, uses: ./functions/add, with: {a: "${{ steps.b.outputs.sum }}", b: 1}}
        - {name: b, uses: ./functions/add, with: {a: "${{ steps.a.outputs.sum }}", b: 1}}
     """), "spec.steps: steps form a cycle: a -> b -> a"),
    (_pipeline("""\
        - {name: a, uses: ./functions/add, with: {a: "${{ steps.a.outputs.sum }}", b: 1}}
     """), "spec.steps: steps form a cycle: a -> a"),
    (_pipeline("""\
        - {name: a, uses: ./functions/add, with: {a: 1, b: 2}}
        - {name: b, uses: ./functions/add, with: {a: "${{ steps.c.outputs.sum }}", b: 1}}
        - {name: c, uses: ./functions/add, with: {a: "${{ steps.d.outputs.sum }}", b: 1}}
        - {name: d, uses: ./functions/add, with: {a: "${{ steps.b.outputs.sum }}", b: 1}}
     """), "cycle: b -> d -> c -> b"),
    (_pipeline("""\
        - {name: a, uses: ./functions/add, with: {a: "${{ steps.zz.outputs.sum }}", b: 1}}
     """), "spec.steps[0].with.a: unknown step 'zz' in steps.zz.outputs.sum"),
    (_pipeline("""\
        - {name: a, uses: ./functions/add, with: {a: "${{ params.x }}", b: 1}}
     """), "spec.steps[0].with.a: step 'a' input 'a' (float): unknown parameter 'x'"),
    (_pipeline("""\
        - {name: a, uses: ./functions/add, with: {a: "x${{ params.x }}", b: 1}}
     """, "{x: {type: float}}"), "spec.steps[0].with.a: 'x${{ params.x }}': a reference must "
                                 "be the whole value"),
    (_pipeline("""\
        - {name: a, uses: ./functions/add, with: {a: "${{ env.HOME }}", b: 1}}
     """), "spec.steps[0].with.a: unknown reference 'env.HOME'"),
    (_pipeline("""\
        - {name: a, uses: ./functions/numbers, with: {n: ["${{ params.n }}"]}}
     """), "spec.steps[0].with.n: references cannot be nested"),
    (_pipeline("""\
        - {name: a, uses: ./functions/add, with: {a: 1, b: 2}}
        - {name: a, uses: ./functions/add, with: {a: 1, b: 2}}
     """), "spec.steps[1].name: step 'a' is defined twice (first at spec.steps[0])"),
    (_pipeline("""\
        - {name: a, uses: ./functions/add, with: {a: 1}}
     """), "spec.steps[0]: step 'a': missing required input 'b'"),
    (_pipeline("""\
        - {name: a, with: {a: 1}}
     """), "spec.steps[0].uses: required field is missing"),
    (_pipeline("""\
        - {name: a, uses: ./functions/add, withh: {a: 1}}
     """), "spec.steps[0].withh: unknown field"),
    (_pipeline("""\
        - {name: a, uses: ./functions/nothing-here}
     """), "spec.steps[0].uses: no function.yaml or featureset.yaml (a regular file) in"),
    (_pipeline("""\
        - {name: a, uses: "hub://Bad_Name"}
     """), "spec.steps[0].uses: invalid URI 'hub://Bad_Name'"),
    (_pipeline("- {name: a, uses: ./functions/add, with: {a: 1, b: 2}}\n",
               "{n: {type: int, default: nope}}"),
     "spec.params.n: parameter 'n' expects int, got 'nope'"),
    ("apiVersion: fnhub/v1\nkind: Pipeline\nmetadata: {name: x}\nspec: {steps: []}\n",
     "spec.steps: List should have at least 1 item"),
    ("apiVersion: fnhub/v1\nkind: Function\nmetadata: {name: x}\nspec: {steps: []}\n",
     "kind: Input should be 'Pipeline'"),
    ("apiVersion: fnhub/v1\nkind: Pipeline\nmetadata: {name: Bad Name}\n"
     "spec: {steps: [{name: a, uses: ./functions/add}]}\n",
     "metadata.name: invalid pipeline name 'Bad Name'"),
    ("spec: [unclosed\n", "malformed YAML at line 2"),
    ("- just a list\n", "expected a mapping at the top level"),
])
def test_yaml_errors_name_the_path(fns: dict[str, Path], tmp_path: Path, body: str,
                                   message: str) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(body)
    with pytest.raises(InvalidInput) as info:
        Pipeline.from_yaml(path)
    assert info.value.message.startswith(f"{path}: "), info.value.message
    assert message in info.value.message


def test_missing_pipeline_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no pipeline file at"):
        Pipeline.from_yaml(tmp_path / "nope.yaml")
    with pytest.raises(InvalidInput, match="is a folder"):
        Pipeline.from_yaml(tmp_path)


def test_broken_function_manifest_is_reported_at_the_step(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "function.yaml").write_text("apiVersion: fnhub/v1\nkind: Function\n")
    path = tmp_path / "pipeline.yaml"
    path.write_text(_pipeline("- {name: a, uses: ./broken}\n"))
    with pytest.raises(ManifestError, match=r"spec.steps\[0\].uses: .*metadata: required"):
        Pipeline.from_yaml(path)


def test_mermaid_and_dict_views(fns: dict[str, Path], tmp_path: Path) -> None:
    graph = Pipeline.from_yaml(write_yaml(tmp_path, DEMO)).graph
    chart = graph.mermaid()
    assert chart.startswith("flowchart TD\n")
    assert 'data["data<br/>tests/numbers@1.0.0"]' in chart
    assert "data -->|table → table| scaled" in chart
    assert "param_factor -.->|factor| scaled" in chart
    view = graph.to_dict()
    assert [s["name"] for s in view["steps"]] == ["data", "scaled"]
    assert view["steps"][1]["with"] == {"table": "${{ steps.data.outputs.table }}",
                                        "factor": "${{ params.factor }}"}
    assert view["params"]["factor"] == {"type": "float", "default": None, "required": True}


def test_public_names() -> None:
    assert fnhub.Pipeline is Pipeline
    assert {"Pipeline", "PipelineRun"} <= set(fnhub.__all__)
    assert fnhub.PipelineRun.__module__ == "fnhub.pipeline.engine"
