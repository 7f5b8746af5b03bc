"""The pipeline graph: steps, their resolved functions, and how their inputs are wired.

This is the one structure that every engine and exporter walks (local, Dask, KFP, Argo):

    PipelineGraph(name, params, steps)
      params: {name: ParamSpec(name, type, default, required, description)}
      steps:  {name: StepNode(name, function, inputs)}, in a topological order: a step comes
              after every step it reads from
    StepNode.function: FunctionRef(uses, ref, version, digest, pinned, folder, manifest, kind)
              uses is the reference as written (`hub://train:^1`, `./my_fn`); ref/version/digest
              are what it resolved to; pinned is the exact hub URI (None for a local folder);
              the manifest gives the entrypoint, port types, image and resources; kind is
              `function`, or `feature-set` for a step ingesting into a feature set, whose
              manifest is the step's interface (`fnhub.pipeline.featuresets`)
    StepNode.inputs: {input name: Binding}, only the inputs the pipeline sets; the others take
              the default declared in the function's manifest
    Binding = Constant(value) | ParamRef(name) | OutputRef(step, output)
              a Constant for an artifact input is an absolute path

Every wire is type-checked when its step is added, and errors name both ends. The rules:

- parameter into parameter: the same type, or an `int` into a `float`;
- artifact into artifact: the same type, or any artifact but `dir` into a `file` input (a
  dataset, model or metrics file is a file; a function that only reads a file takes them all).
  Nothing else converts: a `file` output does not satisfy a `dataset` input, and a `dir` is a
  folder, never a file;
- a parameter never feeds an artifact input, nor an artifact a parameter input;
- a constant must fit its input: text for a non-`str` parameter is parsed as with `hub run -p`
  (`"2.5"` into a float), a constant for an artifact input is a path.

Two graphs are equal when they have the same name and parameters and their steps run the same
functions (namespace/name, version, package digest) with the same bindings: how a function was
written (`uses`) and where its files are do not matter.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fnhub.core.errors import InvalidInput
from fnhub.core.manifest import ALL_TYPES, ARTIFACT_TYPES, Manifest, Port
from fnhub.core.names import closest
from fnhub.pipeline.featuresets import anchor_offline, check_step_input, is_feature_step
from fnhub.runner import parse_param
from fnhub.runtime import value_matches

STEP_NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:[_-][a-z0-9]+)*$")
MAX_STEP_NAME = 63


@dataclass(frozen=True)
class Constant:
    """A value written into the pipeline."""

    value: Any

    def __str__(self) -> str:
        return repr(self.value)


@dataclass(frozen=True)
class ParamRef:
    """`params.NAME`: a pipeline parameter, given when the pipeline runs."""

    name: str

    def __str__(self) -> str:
        return f"params.{self.name}"


@dataclass(frozen=True)
class OutputRef:
    """`steps.STEP.outputs.NAME`: an output of an earlier step."""

    step: str
    output: str

    def __str__(self) -> str:
        return f"steps.{self.step}.outputs.{self.output}"


Binding = Constant | ParamRef | OutputRef


@dataclass(frozen=True)
class ParamSpec:
    """A pipeline parameter; an artifact-typed one takes a path."""

    name: str
    type: str = "str"
    default: Any = None
    required: bool = True
    description: str = ""


@dataclass(frozen=True)
class FunctionRef:
    """A step's function, resolved to one exact version and package digest."""

    uses: str = field(compare=False)
    ref: str  # NAMESPACE/NAME
    version: str
    digest: str  # sha256:<hex> of the package (for a local folder: of what it would pack to)
    pinned: str | None = field(compare=False)  # hub://HOST/NS/NAME:VERSION@DIGEST; None if local
    folder: Path = field(compare=False)
    manifest: Manifest = field(compare=False, repr=False)
    kind: str = field(default="function", compare=False)  # or "feature-set"
    transform: str | None = None  # a feature set's hub transform, its exact pinned URI

    @property
    def local(self) -> bool:
        return self.pinned is None

    @property
    def feature_set(self) -> bool:
        """A step ingesting into a feature set rather than a function call."""
        return is_feature_step(self.kind)

    def input(self, name: str) -> Port | None:
        return self.manifest.input(name)

    def output(self, name: str) -> Port | None:
        return next((p for p in self.manifest.spec.outputs if p.name == name), None)


@dataclass(frozen=True)
class StepNode:
    name: str
    function: FunctionRef
    inputs: dict[str, Binding]

    @property
    def upstream(self) -> list[str]:
        """The steps this one reads from, in the order of its inputs."""
        steps = [b.step for b in self.inputs.values() if isinstance(b, OutputRef)]
        return list(dict.fromkeys(steps))


def compatible(source: str, target: str) -> bool:
    """Whether a value of type `source` may feed an input of type `target` (rules above)."""
    if source == target:
        return True
    if source in ARTIFACT_TYPES and target in ARTIFACT_TYPES:
        return target == "file" and source != "dir"
    return source == "int" and target == "float"


def _type_of(value: Any) -> str:
    names = {bool: "bool", int: "int", float: "float", str: "str", list: "list", tuple: "list",
             dict: "dict"}
    return names.get(type(value), type(value).__name__)


def check_param_value(spec: ParamSpec, value: Any, *, what: str = "value") -> Any:
    """A run-time (or default) value of a parameter, as its type; text is parsed."""
    if spec.type in ARTIFACT_TYPES:
        if not isinstance(value, (str, os.PathLike)):
            raise InvalidInput(f"parameter {spec.name!r} ({spec.type}) takes a path, "
                               f"got {value!r}")
        return value
    if isinstance(value, str) and spec.type != "str":
        value = parse_param(Port(name=spec.name, type=spec.type), value)
    if not value_matches(spec.type, value):
        raise InvalidInput(f"parameter {spec.name!r} ({spec.type}): {what} {value!r} is "
                           f"{_type_of(value)}")
    return float(value) if spec.type == "float" and value is not None else value


def step_name_problem(name: str) -> str | None:
    if not isinstance(name, str) or not STEP_NAME_RE.fullmatch(name):
        return ("must be lowercase letters and digits, starting with a letter, separated by "
                "single '_' or '-'")
    if len(name) > MAX_STEP_NAME:
        return f"is longer than {MAX_STEP_NAME} characters"
    return None


@dataclass
class PipelineGraph:
    name: str
    params: dict[str, ParamSpec] = field(default_factory=dict)
    steps: dict[str, StepNode] = field(default_factory=dict)

    # -- building -------------------------------------------------------------

    def add_param(self, spec: ParamSpec) -> ParamRef:
        if not spec.name.isidentifier():
            raise InvalidInput(f"parameter name {spec.name!r} must be a Python identifier")
        if spec.name in self.params:
            raise InvalidInput(f"parameter {spec.name!r} is declared twice")
        if spec.type not in ALL_TYPES:
            raise InvalidInput(f"parameter {spec.name!r}: unknown type {spec.type!r} "
                               f"(one of: {', '.join(ALL_TYPES)})")
        if not spec.required and spec.default is not None:
            check_param_value(spec, spec.default, what="default")
        self.params[spec.name] = spec
        return ParamRef(spec.name)

    def bind(self, step: str, function: FunctionRef, input_name: str, value: Any, *,
             base_dir: Path | None = None) -> Binding:
        """Check one wire into `step`'s input and return it as a Binding.

        `value` is a ParamRef, an OutputRef or a constant; a relative path constant for an
        artifact input is taken relative to `base_dir` (default: the current directory).
        """
        if function.feature_set:
            check_step_input(step, function.ref, input_name)
            value = anchor_offline(input_name, value, base_dir)
        port = function.input(input_name)
        if port is None:
            names = [p.name for p in function.manifest.spec.inputs]
            guess = closest(input_name, names)
            raise InvalidInput(
                f"step {step!r}: {function.ref} has no input {input_name!r}"
                + (f" (did you mean {guess!r}?)" if guess else
                   f" (inputs: {', '.join(names) or 'none'})"))
        target = f"step {step!r} input {input_name!r} ({port.type})"
        if isinstance(value, ParamRef):
            spec = self.params.get(value.name)
            if spec is None:
                raise InvalidInput(f"{target}: unknown parameter {value.name!r}"
                                   + self._hint(value.name, self.params))
            self._check_wire(target, port.type, str(value), spec.type)
            return value
        if isinstance(value, OutputRef):
            source = self.steps.get(value.step)
            if source is None:
                raise InvalidInput(f"{target}: unknown step {value.step!r}"
                                   + self._hint(value.step, self.steps))
            out = source.function.output(value.output)
            if out is None:
                outputs = [p.name for p in source.function.manifest.spec.outputs]
                raise InvalidInput(f"{target}: step {value.step!r} has no output "
                                   f"{value.output!r} (outputs: {', '.join(outputs) or 'none'})")
            self._check_wire(target, port.type, str(value), out.type)
            return value
        return Constant(self._constant(target, port, value, base_dir))

    @staticmethod
    def _hint(name: str, known: dict[str, Any]) -> str:
        guess = closest(name, known)
        return f" (did you mean {guess!r}?)" if guess else ""

    @staticmethod
    def _check_wire(target: str, target_type: str, source: str, source_type: str) -> None:
        if not compatible(source_type, target_type):
            raise InvalidInput(f"{target} cannot take {source} ({source_type})")

    @staticmethod
    def _constant(target: str, port: Port, value: Any, base_dir: Path | None) -> Any:
        if isinstance(value, Constant):
            value = value.value
        if value is None:
            return None
        if port.is_artifact:
            if not isinstance(value, (str, os.PathLike)):
                raise InvalidInput(f"{target} cannot take {value!r} ({_type_of(value)}): "
                                   "it needs a path or another step's output")
            return os.path.abspath((base_dir or Path.cwd()) / Path(value).expanduser())
        if isinstance(value, str) and port.type != "str":
            try:
                value = parse_param(port, value)
            except InvalidInput:
                raise InvalidInput(f"{target} cannot take {value!r} (str)") from None
        if isinstance(value, os.PathLike) or not value_matches(port.type, value):
            raise InvalidInput(f"{target} cannot take {value!r} ({_type_of(value)})")
        return list(value) if isinstance(value, tuple) else value

    def add_step(self, name: str, function: FunctionRef, inputs: dict[str, Binding]) -> StepNode:
        """Add a step whose inputs were checked by `bind`; required inputs must all be set."""
        if problem := step_name_problem(name):
            raise InvalidInput(f"invalid step name {name!r}: {problem}")
        if name in self.steps:
            raise InvalidInput(f"step {name!r} is defined twice (step names are unique)")
        for port in function.manifest.spec.inputs:
            if port.required and port.name not in inputs:
                raise InvalidInput(f"step {name!r}: missing required input {port.name!r} "
                                   f"({port.type}) of {function.ref}")
        node = StepNode(name, function, dict(inputs))
        self.steps[name] = node
        return node

    # -- reading --------------------------------------------------------------

    def downstream(self, step: str) -> list[str]:
        """Every step that reads, directly or not, from `step`."""
        found: set[str] = {step}
        for node in self.steps.values():  # topological order: one pass suffices
            if any(up in found for up in node.upstream):
                found.add(node.name)
        found.discard(step)
        return [name for name in self.steps if name in found]

    def to_dict(self) -> dict[str, Any]:
        """A JSON view (for `hub pipeline show --json` and run records)."""
        def binding(b: Binding) -> Any:
            return b.value if isinstance(b, Constant) else f"${{{{ {b} }}}}"

        return {
            "name": self.name,
            "params": {p.name: {"type": p.type, "default": p.default, "required": p.required}
                       for p in self.params.values()},
            "steps": [{"name": s.name, "uses": s.function.uses, "kind": s.function.kind,
                       "function": s.function.ref,
                       "version": s.function.version, "digest": s.function.digest,
                       "with": {k: binding(v) for k, v in s.inputs.items()}}
                      for s in self.steps.values()],
        }

    def mermaid(self) -> str:
        """A Mermaid flowchart: one node per step, one edge per wire labelled output → input."""
        lines = ["flowchart TD"]
        for node in self.steps.values():
            lines.append(f'    {_mermaid_id(node.name)}["{node.name}<br/>'
                         f'{node.function.ref}@{node.function.version}"]')
        for param in self.params:
            lines.append(f'    {_mermaid_id("param-" + param)}(["params.{param}"])')
        for node in self.steps.values():
            for input_name, b in node.inputs.items():
                if isinstance(b, OutputRef):
                    lines.append(f"    {_mermaid_id(b.step)} -->|{b.output} → {input_name}| "
                                 f"{_mermaid_id(node.name)}")
                elif isinstance(b, ParamRef):
                    lines.append(f"    {_mermaid_id('param-' + b.name)} -.->|{input_name}| "
                                 f"{_mermaid_id(node.name)}")
        return "\n".join(lines) + "\n"


def _mermaid_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def topological_order(deps: dict[str, list[str]]) -> list[str]:
    """Steps ordered so that each follows its dependencies; a cycle is an error naming it.

    Ties keep the given order, so a pipeline written in dependency order stays as written.
    """
    order: list[str] = []
    placed: set[str] = set()
    pending = list(deps)
    while pending:
        ready = [name for name in pending if all(d in placed for d in deps[name])]
        if not ready:
            raise InvalidInput(f"steps form a cycle: {' -> '.join(_find_cycle(deps, pending))}")
        order.append(ready[0])
        placed.add(ready[0])
        pending.remove(ready[0])
    return order


def _find_cycle(deps: dict[str, list[str]], pending: list[str]) -> list[str]:
    """Walk dependencies among the steps that cannot be placed until one repeats; the cycle
    is returned in the direction data flows (`a -> b`: b reads from a)."""
    path: list[str] = [pending[0]]
    while True:
        nxt = next(d for d in deps[path[-1]] if d in pending)
        if nxt in path:
            return [*path[path.index(nxt):], nxt][::-1]
        path.append(nxt)
