"""Export a pipeline to Argo Workflows: a `Workflow` built with `hera`, written as YAML.

    p.export("argo", "workflow.yaml")       # hub pipeline export pipeline.yaml --to argo -o ...

Needs the `fnhub[argo]` extra (`hera>=5`). What the Workflow holds:

- a DAG template `pipeline` (the entrypoint) with one task per step, each with the
  `dependencies` of the steps it reads from;
- one container template per step, `step-<task>`, running the step's image with
  `python -m fnhub.runtime` in the flag form (see `fnhub.pipeline.containers`): its wired
  inputs are template inputs (`{{inputs.parameters.NAME}}`; artifacts are placed at
  `/tmp/fnhub/inputs/NAME`), every output is a template output collected from
  `/tmp/fnhub/outputs/NAME` (an artifact, or a parameter read from that file). An artifact is
  a folder there holding the file under its own name (the runtime's folder form: Argo archives
  the folder and unpacks it at the consumer's input path), so readers that go by the file's
  suffix work;
- the pipeline parameters as workflow parameters (`spec.arguments.parameters`): a string as is,
  other types as JSON (`3`, `true`, `[1, 2]`); a parameter whose default is null defaults to
  `null` and is read as JSON, so a string given for it is quoted (`"wine"`). An artifact-typed
  parameter is a workflow argument artifact (`spec.arguments.artifacts`), an input of the DAG
  template, which the submitter binds to a location (S3, HTTP, ...). Argo stores a single file
  at the input path under the artifact's name, so for a function that reads by suffix, bind it
  to a folder (a key prefix) holding the file under its own name;
- constants as task arguments; other steps' outputs as `{{tasks.TASK.outputs.parameters.NAME}}`
  or artifacts `from: {{tasks.TASK.outputs.artifacts.NAME}}`;
- the manifest's resources as requests and limits: `cpu`, `memory`, and `gpu` as
  `nvidia.com/gpu`;
- when a step installs its function (it has no image of its own), two more workflow
  parameters, `fnhub_hub_url` and `fnhub_pip_spec` (defaults from `Bootstrap`), the first two
  arguments of those steps' containers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hera.workflows import DAG, Artifact, Container, Parameter, Resources, Task, Workflow
from hera.workflows.models import ValueFrom

from fnhub.core.errors import InvalidInput
from fnhub.core.manifest import ARTIFACT_TYPES
from fnhub.pipeline import containers
from fnhub.pipeline.graph import Binding, Constant, OutputRef, ParamRef, PipelineGraph, StepNode
from fnhub.runtime_flags import artifact_arg, fixed_args, output_arg, text_value, value_flag
from fnhub.store import write_atomic

DAG_TEMPLATE = "pipeline"
INPUTS_DIR = "/tmp/fnhub/inputs"
OUTPUTS_DIR = "/tmp/fnhub/outputs"


def _optional_param(graph: PipelineGraph, binding: Binding) -> bool:
    """A parameter whose default is null: the workflow passes it as JSON (`null`)."""
    if not isinstance(binding, ParamRef):
        return False
    spec = graph.params[binding.name]
    return not spec.required and spec.default is None


def _resources(node: StepNode) -> Resources | None:
    res = node.function.manifest.spec.resources
    if not (res.cpu or res.memory or res.gpu):
        return None
    try:
        return Resources(cpu_request=res.cpu, cpu_limit=res.cpu, memory_request=res.memory,
                         memory_limit=res.memory, gpus=res.gpu or None,
                         gpu_flag=containers.GPU_RESOURCE)
    except ValueError as exc:
        raise InvalidInput(f"step {node.name!r}: {node.function.ref} spec.resources: {exc}"
                           ) from None


def _template(graph: PipelineGraph, node: StepNode, task: str) -> Container:
    """The container template of one step."""
    container = containers.step_container(node)
    containers.check_constants(node)
    args = [f"{{{{workflow.parameters.{name}}}}}"
            for name in (containers.HUB_URL_PARAM, containers.PIP_SPEC_PARAM)
            ] if container.bootstrap else []
    args += container.args
    inputs: list[Parameter | Artifact] = []
    for port in node.function.manifest.spec.inputs:
        binding = node.inputs.get(port.name)
        if binding is None or (isinstance(binding, Constant) and binding.value is None):
            value = port.default if binding is None else None
            args += fixed_args(port.name, port.type, value, artifact=port.is_artifact)
        elif port.is_artifact:
            path = f"{INPUTS_DIR}/{port.name}"
            inputs.append(Artifact(name=port.name, path=path))
            args += artifact_arg(port.name, port.type, path)
        else:
            inputs.append(Parameter(name=port.name))
            flag = "--param" if _optional_param(graph, binding) else value_flag(port.type)
            args += [flag, f"{port.name}={{{{inputs.parameters.{port.name}}}}}"]
    outputs: list[Parameter | Artifact] = []
    for port in node.function.manifest.spec.outputs:
        path = f"{OUTPUTS_DIR}/{port.name}"
        args += output_arg(port.name, port.type, path, artifact=port.is_artifact)
        outputs.append(Artifact(name=port.name, path=path) if port.is_artifact else
                       Parameter(name=port.name, value_from=ValueFrom(path=path)))
    return Container(name=f"step-{task}", image=container.image, command=container.command,
                     args=args, inputs=inputs or None, outputs=outputs or None,
                     resources=_resources(node))


def _arguments(graph: PipelineGraph, node: StepNode,
               names: dict[str, str]) -> list[Parameter | Artifact]:
    """The task's arguments: constants, workflow parameters and upstream outputs."""
    arguments: list[Parameter | Artifact] = []
    for port in node.function.manifest.spec.inputs:
        name, binding = port.name, node.inputs.get(port.name)
        if binding is None or (isinstance(binding, Constant) and binding.value is None):
            continue  # written into the command line
        if isinstance(binding, Constant):
            arguments.append(Parameter(name=name, value=text_value(binding.value)))
        elif isinstance(binding, OutputRef):
            kind = "artifacts" if port.is_artifact else "parameters"
            ref = f"{{{{tasks.{names[binding.step]}.outputs.{kind}.{binding.output}}}}}"
            arguments.append(Artifact(name=name, from_=ref) if port.is_artifact else
                             Parameter(name=name, value=ref))
        elif port.is_artifact:
            arguments.append(Artifact(name=name, from_=f"{{{{inputs.artifacts.{binding.name}}}}}"))
        else:
            arguments.append(Parameter(name=name,
                                       value=f"{{{{workflow.parameters.{binding.name}}}}}"))
    return arguments


def build(graph: PipelineGraph, bootstrap: containers.Bootstrap) -> Workflow:
    """The pipeline as a hera Workflow."""
    names = containers.task_names(graph)
    containers.check_parameter_names(graph)
    parameters: list[Parameter | Artifact] = []
    artifacts: list[Artifact] = []
    if containers.needs_bootstrap(graph):
        parameters += [
            Parameter(name=containers.HUB_URL_PARAM, value=bootstrap.hub_url,
                      description="The hub the steps install their functions from"),
            Parameter(name=containers.PIP_SPEC_PARAM, value=bootstrap.pip_spec,
                      description="The pip requirement that installs fnhub in the steps")]
    for spec in graph.params.values():
        if spec.type in ARTIFACT_TYPES:
            artifacts.append(Artifact(name=spec.name))
        elif spec.required:
            parameters.append(Parameter(name=spec.name, description=spec.description or None))
        else:
            value = "null" if spec.default is None else text_value(spec.default)
            parameters.append(Parameter(name=spec.name, value=value,
                                        description=spec.description or None))
    arguments: Any = [*parameters, *artifacts] or None
    with Workflow(generate_name=f"{containers.k8s_name(graph.name)}-", entrypoint=DAG_TEMPLATE,
                  arguments=arguments) as workflow:
        templates = {step: _template(graph, node, names[step])
                     for step, node in graph.steps.items()}
        with DAG(name=DAG_TEMPLATE, inputs=[Artifact(name=a.name) for a in artifacts] or None):
            for step, node in graph.steps.items():
                Task(name=names[step], template=templates[step],
                     arguments=_arguments(graph, node, names) or None,
                     dependencies=[names[up] for up in node.upstream] or None)
    return workflow


def export(graph: PipelineGraph, path: Path, bootstrap: containers.Bootstrap) -> None:
    """Write `graph` as an Argo Workflow YAML file at `path` (atomically)."""
    write_atomic(path, build(graph, bootstrap).to_yaml().encode())
