"""`fnhub.Pipeline`: compose functions into a graph in Python or from `pipeline.yaml`, and run it.

    with fnhub.Pipeline("train-and-evaluate") as p:
        dataset = p.param("dataset", type="str", default="iris")
        data = p.add("data", "hub://load-dataset:^1", name=dataset)
        model = p.add("model", fnhub.import_function("hub://train:1"),
                      dataset=data.outputs["dataset"], label_column="target")
    run = p.run(dataset="wine")              # engine="dask" for a Dask cluster
    run.outputs["model"]["metrics"]

Each `add` resolves the function to an exact version and digest (installing it verified) and
checks every wire at once (see `fnhub.pipeline.graph` for the type rules), so a pipeline that
builds is well-typed. `Pipeline.from_yaml` builds the same graph from a pipeline file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path
from typing import Any

from fnhub.config import Config, load_config
from fnhub.core.errors import FnhubError, InvalidInput
from fnhub.core.names import name_problem
from fnhub.envs import Env
from fnhub.function import Function
from fnhub.install import Warn, default_warn
from fnhub.pipeline.containers import Bootstrap
from fnhub.pipeline.engine import OnEvent, PipelineRun, run_graph
from fnhub.pipeline.engines import Engine, engine_named, steps_env
from fnhub.pipeline.graph import (
    OutputRef,
    ParamRef,
    ParamSpec,
    PipelineGraph,
    StepNode,
    topological_order,
)
from fnhub.pipeline.lock import LOCK_NAME, PipelineLock
from fnhub.pipeline.resolve import Resolver
from fnhub.pipeline.spec import load_pipeline_file, parse_value

EXPORTERS = {"kfp": "fnhub.pipeline.export_kfp", "argo": "fnhub.pipeline.export_argo"}
_REQUIRED: Any = object()


def exporter_module(target: str) -> str:
    """The module that exports to `target` (`kfp`, `argo`)."""
    if target not in EXPORTERS:
        raise InvalidInput(f"unknown export target {target!r} (one of: {', '.join(EXPORTERS)})")
    return EXPORTERS[target]


class StepOutputs(Mapping[str, OutputRef]):
    """`step.outputs["name"]`: a reference to an output, to wire into another step's input."""

    def __init__(self, node: StepNode) -> None:
        self._node = node
        self._names = [p.name for p in node.function.manifest.spec.outputs]

    def __getitem__(self, name: str) -> OutputRef:
        if name not in self._names:
            raise InvalidInput(f"step {self._node.name!r} ({self._node.function.ref}) has no "
                               f"output {name!r} (outputs: {', '.join(self._names) or 'none'})")
        return OutputRef(self._node.name, name)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self._names else default

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class Step:
    """What `Pipeline.add` returns: the step's node, and references to its outputs."""

    def __init__(self, node: StepNode) -> None:
        self.node = node
        self.outputs = StepOutputs(node)

    @property
    def name(self) -> str:
        return self.node.name

    def __repr__(self) -> str:
        return f"<Step {self.name}: {self.node.function.ref}@{self.node.function.version}>"


@contextmanager
def _at(where: str) -> Iterator[None]:
    """Prefix errors raised inside with a location (`pipeline.yaml: spec.steps[1].uses`)."""
    try:
        yield
    except FnhubError as exc:
        raise type(exc)(f"{where}: {exc.message}", hint=exc.hint) from None


class Pipeline:
    """A graph of function steps; a context manager so its definition reads as a block."""

    def __init__(self, name: str, *, config: Config | None = None,
                 insecure_skip_verify: bool = False, warn: Warn | None = None,
                 lock_path: str | Path | None = None) -> None:
        if problem := name_problem(name):
            raise InvalidInput(f"invalid pipeline name {name!r}: {problem}")
        self.config = config or load_config()
        self.graph = PipelineGraph(name)
        self.lock_path = Path(lock_path) if lock_path else None
        self._resolver = Resolver(self.config, insecure_skip_verify=insecure_skip_verify,
                                  warn=warn or default_warn)

    @property
    def name(self) -> str:
        return self.graph.name

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __repr__(self) -> str:
        return f"<Pipeline {self.name}: {', '.join(self.graph.steps) or 'no steps'}>"

    # -- building ---------------------------------------------------------------

    def param(self, name: str, type: str = "str", *, default: Any = _REQUIRED,
              description: str = "") -> ParamRef:
        """Declare a pipeline parameter (required unless it has a default); returns its reference.

        Artifact types (`dataset`, `file`, ...) take a path at run time.
        """
        required = default is _REQUIRED
        return self.graph.add_param(ParamSpec(name, type, None if required else default,
                                              required, description))

    def add(self, step_name: str, function: Function | str | os.PathLike[str], /,
            **inputs: Any) -> Step:
        """Add a step running `function`: a Function, a hub URI, or a local folder (a Path, or
        text starting with `./`, `../`, `/` or `file://`).

        Each input is a constant, a `p.param(...)` reference or another step's
        `.outputs["name"]`; every required input of the function must be given.
        """
        fn = self._resolver.resolve(step_name, function)
        bindings = {name: self.graph.bind(step_name, fn, name, value,
                                          base_dir=self._resolver.base_dir)
                    for name, value in inputs.items()}
        return Step(self.graph.add_step(step_name, fn, bindings))

    @classmethod
    def from_yaml(cls, path: str | Path, *, locked: bool = False,
                  lock_path: str | Path | None = None, config: Config | None = None,
                  insecure_skip_verify: bool = False, warn: Warn | None = None) -> Pipeline:
        """Build the graph of a pipeline file; relative folders are taken from its folder.

        With `locked`, hub steps resolve to what the lock (`pipeline.lock` beside the file unless
        `lock_path`) pins, and a missing or stale lock is refused here, before anything runs.
        """
        path = Path(path)
        doc = load_pipeline_file(path)
        lock_file = Path(lock_path) if lock_path else path.parent / LOCK_NAME
        with _at(f"{path}: metadata.name"):
            pipeline = cls(doc.metadata.name, config=config, warn=warn, lock_path=lock_file,
                           insecure_skip_verify=insecure_skip_verify)
        resolver = pipeline._resolver
        resolver.base_dir = path.parent.resolve()
        if locked:
            resolver.lock, resolver.lock_path = PipelineLock.read(lock_file), lock_file
        for name, model in doc.spec.params.items():
            with _at(f"{path}: spec.params.{name}"):
                pipeline.param(name, model.type, description=model.description,
                               default=_REQUIRED if model.required else model.default)
        steps = doc.spec.steps
        index: dict[str, int] = {}
        values: list[dict[str, Any]] = []
        for i, step in enumerate(steps):
            if step.name in index:
                raise InvalidInput(f"{path}: spec.steps[{i}].name: step {step.name!r} is "
                                   f"defined twice (first at spec.steps[{index[step.name]}])")
            index[step.name] = i
            parsed = {}
            for input_name, raw in step.with_.items():
                with _at(f"{path}: spec.steps[{i}].with.{input_name}"):
                    parsed[input_name] = parse_value(raw)
            values.append(parsed)
        deps: dict[str, list[str]] = {}
        for i, step in enumerate(steps):
            deps[step.name] = []
            for input_name, value in values[i].items():
                if isinstance(value, OutputRef):
                    if value.step not in index:
                        raise InvalidInput(f"{path}: spec.steps[{i}].with.{input_name}: "
                                           f"unknown step {value.step!r} in {value}")
                    deps[step.name].append(value.step)
        with _at(f"{path}: spec.steps"):
            order = topological_order(deps)
        functions = {}
        for i, step in enumerate(steps):
            with _at(f"{path}: spec.steps[{i}].uses"):
                functions[step.name] = resolver.resolve(step.name, step.uses)
        for name in order:
            i, fn = index[name], functions[name]
            bindings = {}
            for input_name, value in values[i].items():
                with _at(f"{path}: spec.steps[{i}].with.{input_name}"):
                    bindings[input_name] = pipeline.graph.bind(name, fn, input_name, value,
                                                               base_dir=resolver.base_dir)
            with _at(f"{path}: spec.steps[{i}]"):
                pipeline.graph.add_step(name, fn, bindings)
        if resolver.lock is not None:
            resolver.lock.check(pipeline.graph, lock_file)
        return pipeline

    # -- locking, running, exporting ----------------------------------------------

    def _lock_file(self, path: str | Path | None) -> Path:
        if path:
            return Path(path)
        if self.lock_path is None:
            raise InvalidInput(f"pipeline {self.name!r} has no lock file",
                               hint="pass lock_path=..., or load it with Pipeline.from_yaml")
        return self.lock_path

    def lock(self, path: str | Path | None = None) -> PipelineLock:
        """Write what every step resolved to (default: `pipeline.lock` beside the YAML)."""
        lock = PipelineLock.from_graph(self.graph)
        lock.write(self._lock_file(path))
        return lock

    def check_lock(self, path: str | Path | None = None) -> None:
        """Refuse a missing or stale lock; the error names the step that differs."""
        lock_file = self._lock_file(path)
        PipelineLock.read(lock_file).check(self.graph, lock_file)

    def run(self, engine: str | Engine = "local", *, params: Mapping[str, Any] | None = None,
            env: str | Env = "current", cache: bool = True, locked: bool = False,
            runs_dir: str | Path | None = None, on_event: OnEvent | None = None,
            check: bool = True, workers: int | None = None, address: str | None = None,
            storage: str | None = None, **more_params: Any) -> PipelineRun:
        """Run every step; pipeline parameters come as `params=` and/or keyword arguments.

        engine: `local` (a pool of `workers` child processes) or `dask` (`address` of a
        scheduler, or a LocalCluster of `workers` processes; storage `s3://bucket/prefix`
        passes its functions and artifacts through that bucket, so its workers need no disk
        shared with this process, and outputs are then `s3://` URIs), or an engine object
        carrying those options (`LocalEngine(workers=4)`, `DaskEngine(address=...)`).
        env: `current` (this interpreter) or `venv` (a cached venv per requirement set).
        cache=False runs every step even when the step cache has its outputs. locked: refuse
        to run unless the lock matches. Without `locked`, a pipeline that has a lock file
        (from_yaml, lock_path) rewrites it. With check (the default) a failed run raises
        RunError naming the failed steps, with their log tails; otherwise the returned run's
        `status` says it.
        """
        engine = engine_named(engine, workers=workers, address=address, storage=storage)
        env = steps_env(env, self.config.home)
        if locked:
            self.check_lock()
        elif self.lock_path is not None and not self.config.offline:
            self.lock()
        result = run_graph(
            self.graph, {**(params or {}), **more_params}, engine=engine, env=env,
            home=self.config.home, use_cache=cache,
            runs_dir=Path(runs_dir) if runs_dir else None, on_event=on_event)
        if check:
            result.raise_for_status()
        return result

    def export(self, target: str, path: str | Path, *, hub_url: str | None = None,
               fnhub_spec: str | None = None) -> Path:
        """Write the pipeline for another workflow engine: `kfp` (Kubeflow Pipelines IR YAML)
        or `argo` (an Argo Workflow). Each needs its extra: `pip install "fnhub[kfp]"`.

        Steps without an image of their own install fnhub (`fnhub_spec`, a pip requirement;
        default `fnhub==<this version>`) and their function from the hub at `hub_url` (as the
        cluster reaches it; default the configured URL of the hub the steps come from); both
        are pipeline parameters, `fnhub_pip_spec` and `fnhub_hub_url`, set when a run is
        submitted. A step ingesting into a feature set is refused: it writes to a feature
        store that only `hub pipeline run` knows how to reach."""
        module_name = exporter_module(target)
        for node in self.graph.steps.values():
            if node.function.feature_set:
                raise InvalidInput(
                    f"step {node.name!r} ingests into the feature set {node.function.ref}, "
                    f"which an export to {target} cannot run",
                    hint="run the pipeline with `hub pipeline run` (local or dask engine)")
        bootstrap = Bootstrap.for_graph(self.graph, self.config, hub_url, fnhub_spec)
        try:
            module = import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                raise InvalidInput(f"export to {target} is not available in this fnhub "
                                   f"installation ({module_name} is missing)") from None
            raise InvalidInput(f"export to {target} needs the fnhub[{target}] extra "
                               f"({exc.name} is not installed)",
                               hint=f'pip install "fnhub[{target}]"') from None
        out = Path(path)
        module.export(self.graph, out, bootstrap)
        return out
