"""Export a pipeline to Kubeflow Pipelines: built with the kfp SDK's DSL, compiled to IR YAML.

    p.export("kfp", "pipeline.yaml")        # hub pipeline export pipeline.yaml --to kfp -o ...

Needs the `fnhub[kfp]` extra (`kfp>=2.7`). What the IR holds:

- one container component per step (`comp-<task>`), running the step's image with
  `python -m fnhub.runtime` in the flag form (see `fnhub.pipeline.containers` for the image,
  the bootstrap of functions without one, and how every input reaches the command line);
- the pipeline parameters as KFP pipeline parameters (`str int float bool list dict`, with their
  defaults; a parameter whose default is null is optional, and a step then gets `null`);
  an artifact-typed parameter becomes a `str` parameter holding the artifact's URI, imported by a
  `dsl.importer` task (named `importer`, `importer-2`, ...): the URI of the file itself (its
  name keeps its suffix) or of a folder holding it under its name;
- the inputs a step sets as inputs of its component: constants as constant arguments,
  parameters as pipeline-parameter channels, other steps' outputs as task outputs, so KFP
  derives each task's `dependentTasks`. Artifacts are `Input/Output[Dataset|Model|Metrics|
  Artifact]` (`file` and `dir` are plain `Artifact`s), each stored at its `.path` as a folder
  holding the file under its own name (the runtime's folder form, so readers that go by the
  suffix work); parameter outputs are `OutputPath`s. An
  output named like one of its function's inputs is `<name>_output` in KFP (a Python signature
  cannot repeat a name);
- the manifest's resources: `cpu` and `memory` as request and limit, `gpu` as an accelerator
  limit of type `nvidia.com/gpu`;
- when a step installs its function (it has no image of its own), two more pipeline
  parameters, `fnhub_hub_url` and `fnhub_pip_spec` (defaults from `Bootstrap`), given to those
  steps' components as their first two arguments.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from kfp import compiler, dsl

from fnhub.core.errors import InvalidInput
from fnhub.core.manifest import Port
from fnhub.pipeline import containers
from fnhub.pipeline.graph import (
    Binding,
    Constant,
    OutputRef,
    ParamRef,
    PipelineGraph,
    StepNode,
)
from fnhub.runtime_flags import artifact_arg, fixed_args, output_arg, value_flag

ARTIFACT_CLASSES: dict[str, type[dsl.Artifact]] = {
    "dataset": dsl.Dataset, "model": dsl.Model, "metrics": dsl.Metrics,
    "file": dsl.Artifact, "dir": dsl.Artifact,
}
PARAMETER_TYPES: dict[str, type] = {
    "str": str, "int": int, "float": float, "bool": bool, "list": list, "dict": dict,
}
_KEYWORD = inspect.Parameter.KEYWORD_ONLY

# One command-line piece of a step: fixed text, or a function of the component's placeholders.
Piece = Callable[[dict[str, Any]], list[Any]]


class _StepComponent:
    """A step's container component, and the KFP names of its outputs."""

    def __init__(self, graph: PipelineGraph, node: StepNode, task: str) -> None:
        self.inputs: list[str] = []  # inputs the pipeline wires (the others are fixed)
        self.outputs: dict[str, str] = {}  # fnhub output name -> KFP output key
        container = containers.step_container(node)
        containers.check_constants(node)
        self.bootstrap = container.bootstrap
        parameters: list[inspect.Parameter] = []
        pieces: list[Piece] = []
        if container.bootstrap:  # the hub URL and pip spec, first
            for name in (containers.HUB_URL_PARAM, containers.PIP_SPEC_PARAM):
                parameters.append(inspect.Parameter(name, _KEYWORD, annotation=str))
            pieces.append(lambda v: [v[containers.HUB_URL_PARAM], v[containers.PIP_SPEC_PARAM],
                                     *container.args])
        else:
            pieces.append(lambda _: list(container.args))
        for port in node.function.manifest.spec.inputs:
            binding = node.inputs.get(port.name)
            if binding is None or (isinstance(binding, Constant) and binding.value is None):
                value = port.default if binding is None else None
                fixed = fixed_args(port.name, port.type, value, artifact=port.is_artifact)
                pieces.append(lambda _, fixed=fixed: fixed)
                continue
            self.inputs.append(port.name)
            parameters.append(self._input(graph, port, binding, pieces))
        taken = {p.name for p in node.function.manifest.spec.inputs}
        for port in node.function.manifest.spec.outputs:
            key = port.name
            while key in taken:
                key += "_output"
            taken.add(key)
            self.outputs[port.name] = key
            if port.is_artifact:
                annotation: Any = dsl.Output[ARTIFACT_CLASSES[port.type]]
                pieces.append(lambda v, key=key, port=port: output_arg(
                    port.name, port.type, v[key].path, artifact=True))
            else:
                annotation = dsl.OutputPath(PARAMETER_TYPES[port.type])
                pieces.append(lambda v, key=key, port=port: output_arg(
                    port.name, port.type, v[key], artifact=False))
            parameters.append(inspect.Parameter(key, _KEYWORD, annotation=annotation))

        names = [p.name for p in parameters]

        def container_spec(*placeholders: Any) -> dsl.ContainerSpec:
            values = dict(zip(names, placeholders, strict=True))
            args: list[Any] = []
            for piece in pieces:
                args.extend(piece(values))
            return dsl.ContainerSpec(image=container.image, command=container.command, args=args)

        container_spec.__name__ = task
        container_spec.__doc__ = node.function.manifest.metadata.description or None
        container_spec.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        self.component = dsl.container_component(container_spec)

    @staticmethod
    def _input(graph: PipelineGraph, port: Port, binding: Binding,
               pieces: list[Piece]) -> inspect.Parameter:
        """The component input for a wired input, and its command-line piece."""
        name = port.name
        if port.is_artifact:
            pieces.append(lambda v: artifact_arg(name, port.type, v[name].path))
            return inspect.Parameter(name, _KEYWORD,
                                     annotation=dsl.Input[ARTIFACT_CLASSES[port.type]])
        source_type = port.type
        if isinstance(binding, ParamRef):
            source_type = graph.params[binding.name].type
        elif isinstance(binding, OutputRef):
            output = graph.steps[binding.step].function.output(binding.output)
            source_type = output.type if output else port.type
        annotation: Any = PARAMETER_TYPES[source_type]
        flag = value_flag(port.type)
        spec = graph.params[binding.name] if isinstance(binding, ParamRef) else None
        if spec is not None and not spec.required and spec.default is None:
            pieces.append(lambda v: [dsl.IfPresentPlaceholder(
                input_name=name, then=[flag, f"{name}={v[name]}"],
                else_=["--param", f"{name}=null"])])
            # typing.Optional: kfp strips `Optional[...]` but not `X | None`
            return inspect.Parameter(name, _KEYWORD, annotation=Optional[annotation],  # noqa: UP045
                                     default=None)
        pieces.append(lambda v: [flag, f"{name}={v[name]}"])
        return inspect.Parameter(name, _KEYWORD, annotation=annotation)


def _pipeline_parameters(graph: PipelineGraph,
                         bootstrap: containers.Bootstrap | None) -> list[inspect.Parameter]:
    parameters = []
    if bootstrap is not None:
        parameters += [
            inspect.Parameter(containers.HUB_URL_PARAM, _KEYWORD, default=bootstrap.hub_url,
                              annotation=str),
            inspect.Parameter(containers.PIP_SPEC_PARAM, _KEYWORD, default=bootstrap.pip_spec,
                              annotation=str)]
    for spec in graph.params.values():
        artifact = spec.type not in PARAMETER_TYPES
        annotation: Any = str if artifact else PARAMETER_TYPES[spec.type]
        if spec.required:
            parameters.append(inspect.Parameter(spec.name, _KEYWORD, annotation=annotation))
        elif spec.default is None:
            parameters.append(inspect.Parameter(spec.name, _KEYWORD, default=None,
                                                annotation=Optional[annotation]))  # noqa: UP045
        else:
            default = os.fspath(spec.default) if artifact else spec.default
            if spec.type == "float":
                default = float(default)
            parameters.append(inspect.Parameter(spec.name, _KEYWORD, default=default,
                                                annotation=annotation))
    return parameters


def _set_resources(task: dsl.PipelineTask, node: StepNode) -> None:
    resources = node.function.manifest.spec.resources
    try:
        if resources.cpu:
            task.set_cpu_request(resources.cpu).set_cpu_limit(resources.cpu)
        if resources.memory:
            task.set_memory_request(resources.memory).set_memory_limit(resources.memory)
        if resources.gpu:
            task.set_accelerator_type(containers.GPU_RESOURCE).set_accelerator_limit(resources.gpu)
    except ValueError as exc:
        raise InvalidInput(f"step {node.name!r}: {node.function.ref} spec.resources: {exc}"
                           ) from None


def build(graph: PipelineGraph, bootstrap: containers.Bootstrap) -> Any:
    """The pipeline as a KFP graph component (`@dsl.pipeline`), ready to compile."""
    names = containers.task_names(graph)
    containers.check_parameter_names(graph)
    components = {step: _StepComponent(graph, node, names[step])
                  for step, node in graph.steps.items()}
    parameters = _pipeline_parameters(graph,
                                      bootstrap if containers.needs_bootstrap(graph) else None)
    parameter_names = [p.name for p in parameters]

    def pipeline(*channels: Any) -> None:
        params = dict(zip(parameter_names, channels, strict=True))
        imported: dict[str, Any] = {}
        tasks: dict[str, dsl.PipelineTask] = {}

        def argument(node: StepNode, name: str) -> Any:
            binding = node.inputs[name]
            if isinstance(binding, Constant):
                port_type = next(p.type for p in node.function.manifest.spec.inputs
                                 if p.name == name)
                return float(binding.value) if port_type == "float" else binding.value
            if isinstance(binding, OutputRef):
                key = components[binding.step].outputs[binding.output]
                return tasks[binding.step].outputs[key]
            spec = graph.params[binding.name]
            if spec.type in PARAMETER_TYPES:
                return params[binding.name]
            if binding.name not in imported:
                importer = dsl.importer(artifact_uri=params[binding.name],
                                        artifact_class=ARTIFACT_CLASSES[spec.type],
                                        reimport=False)
                importer.set_display_name(f"import {binding.name}")
                imported[binding.name] = importer.output
            return imported[binding.name]

        for step, node in graph.steps.items():
            component = components[step]
            arguments = {name: argument(node, name) for name in component.inputs}
            if component.bootstrap:
                wired = (containers.HUB_URL_PARAM, containers.PIP_SPEC_PARAM)
                arguments.update({name: params[name] for name in wired})
            task = component.component(**arguments)
            if task.name != names[step]:
                raise InvalidInput(f"step {step!r} would be KFP task {task.name!r}: its name "
                                   "is taken by an importer task; rename the step")
            _set_resources(task, node)
            tasks[step] = task

    pipeline.__name__ = containers.k8s_name(graph.name)
    pipeline.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return dsl.pipeline(name=containers.k8s_name(graph.name))(pipeline)


def export(graph: PipelineGraph, path: Path, bootstrap: containers.Bootstrap) -> None:
    """Compile `graph` to KFP IR YAML at `path` (written whole or not at all)."""
    pipeline = build(graph, bootstrap)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.yaml")
    try:
        compiler.Compiler().compile(pipeline_func=pipeline, package_path=str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
