"""Running a pipeline graph: checks, scheduling, caching and the run record.

The scheduler is the same for every engine; an engine (`fnhub.pipeline.engines`: `LocalEngine`,
`DaskEngine`) only decides where `execute_step` runs, and the steps' environment
(`fnhub.envs`: current or venv) how it starts the function.

Before any step starts: parameters are checked against their declared types, every step's
files must still pack to the digest its graph resolved (an installed function was not modified,
a local folder did not change since the pipeline was built), the environment accepts each
function (Python and, for the current environment, its requirements), and constant input artifacts
must exist. A failing step stops the steps downstream of it (`skipped`); independent steps still
finish. A step is `cached` when the step cache holds a run of the same function on the same
inputs (see `fnhub.pipeline.cache`). A feature-set step (`fnhub.pipeline.featuresets`) writes
to a feature store: it always runs, in the current environment, and never with S3 storage.

Run folder, `<runs>/<run-id>/` (`<FNHUB_HOME>/runs/` unless given, for the SDK and the CLI
alike, next to `hub run`'s run folders; a Dask cluster on other machines needs a `runs_dir` on
storage they share, or `storage="s3://bucket/prefix"`: then the step folders, artifacts and
logs are objects under `<prefix>/runs/<run-id>/`, named by `s3://` URIs in the run record, and
the run folder holds only run.json):

    run.json                    the run record, written atomically when the run starts, at
                                most every SAVE_INTERVAL seconds while steps change (a change
                                is on disk within that time) and when the run ends:
                                pipeline, engine, params, status, timings, and per step its
                                function and digest, status, inputs, outputs, log, timings,
                                host, cache key, error and log tail
    <step>/outputs/...          the step's artifact outputs (linked from the cache when cached)
    <step>/log.txt              what the function printed
    <step>/request.json, result.json   the `fnhub.runtime` request and answer, for steps run
                                in a new child process (venv steps, the dask engine)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fnhub.core.errors import (
    DigestMismatch,
    FnhubError,
    InvalidInput,
    MissingRequirements,
    RunError,
)
from fnhub.core.manifest import ARTIFACT_TYPES
from fnhub.core.names import closest
from fnhub.envs import CurrentEnv, Env, run_request
from fnhub.pipeline.cache import StepCache, artifact_digest, cache_key, is_remote
from fnhub.pipeline.engines import Engine, Executor
from fnhub.pipeline.execute import StepOutcome, StepTask, failed_outcome
from fnhub.pipeline.featuresets import check_features_extra
from fnhub.pipeline.graph import (
    Constant,
    OutputRef,
    ParamRef,
    PipelineGraph,
    StepNode,
    check_param_value,
)
from fnhub.pipeline.resolve import pack_digest
from fnhub.runner import build_request, check_inputs, new_run_dir
from fnhub.store import write_atomic

if TYPE_CHECKING:
    from fnhub.pipeline.s3_artifacts import S3Storage

FINISHED_OK = ("succeeded", "cached")
RUN_FILE = "run.json"
SAVE_INTERVAL = 0.5  # seconds between two writes of run.json while a run goes on


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


def _artifact(value: str) -> Path | str:
    """An artifact output as the run holds it: a Path, or the URI of an object."""
    return value if is_remote(value) else Path(value)


@dataclass
class StepRun:
    """One step of a run: pending, queued, running, succeeded, cached, failed or skipped."""

    name: str
    function: str  # NAMESPACE/NAME@VERSION
    digest: str
    step_dir: Path
    status: str = "pending"
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)  # artifacts as Paths (or s3:// URIs)
    log_uri: str | None = None  # the log, when the step ran with S3 storage
    cache_key: str | None = None
    cached_from: str | None = None  # when the reused outputs were made
    started_at: str | None = None
    finished_at: str | None = None
    duration: float | None = None
    host: str | None = None
    error: str | None = None
    log_tail: str = ""

    @property
    def log(self) -> Path | str:
        return self.log_uri or self.step_dir / "log.txt"

    def to_json(self) -> dict[str, Any]:
        return {
            "function": self.function, "digest": self.digest, "status": self.status,
            "inputs": {k: _plain(v) for k, v in self.inputs.items()},
            "outputs": {k: _plain(v) for k, v in self.outputs.items()},
            "log": str(self.log), "started_at": self.started_at,
            "finished_at": self.finished_at, "duration_s": self.duration, "host": self.host,
            "cache_key": self.cache_key, "cached_from": self.cached_from, "error": self.error,
            "log_tail": self.log_tail or None,
        }


@dataclass
class PipelineRun:
    """The result of `Pipeline.run`: status, run folder, and outputs per step."""

    pipeline: str
    run_dir: Path
    engine: str
    params: dict[str, Any]
    steps: dict[str, StepRun]
    status: str = "running"  # then succeeded or failed
    started_at: str = field(default_factory=_now)
    finished_at: str | None = None
    duration: float | None = None

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    @property
    def outputs(self) -> dict[str, dict[str, Any]]:
        """`run.outputs[step][output]`: values, and artifacts as paths in the run folder
        (`s3://` URIs with S3 storage)."""
        return {name: dict(s.outputs) for name, s in self.steps.items()
                if s.status in FINISHED_OK}

    @property
    def error(self) -> str | None:
        """What failed, with each failed step's log tail; None for a successful run."""
        failed = [s for s in self.steps.values() if s.status == "failed"]
        if not failed:
            return None
        parts = []
        for step in failed:
            text = f"step {step.name!r} failed: {step.error}"
            if step.log_tail:
                tail = "\n".join("  | " + line for line in step.log_tail.splitlines())
                text += f"\n  log tail ({step.log}):\n{tail}"
            parts.append(text)
        skipped = [s.name for s in self.steps.values() if s.status == "skipped"]
        if skipped:
            parts.append(f"skipped (downstream of a failure): {', '.join(skipped)}")
        return "\n".join(parts)

    def raise_for_status(self) -> None:
        if self.status != "succeeded":
            raise RunError(f"pipeline {self.pipeline!r} failed: {self.error}",
                           hint=f"the run record is {self.run_dir / RUN_FILE}")

    def to_json(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline, "run_id": self.run_id, "run_dir": str(self.run_dir),
            "engine": self.engine, "status": self.status,
            "params": {k: _plain(v) for k, v in self.params.items()},
            "started_at": self.started_at, "finished_at": self.finished_at,
            "duration_s": self.duration,
            "steps": {name: s.to_json() for name, s in self.steps.items()},
        }

    def save(self) -> None:
        write_atomic(self.run_dir / RUN_FILE,
                     json.dumps(self.to_json(), indent=2, default=str).encode())


OnEvent = Callable[[PipelineRun, StepRun], None]


# -- checks before any step runs -------------------------------------------------


def resolve_params(graph: PipelineGraph, given: dict[str, Any]) -> dict[str, Any]:
    """Every parameter's value: given (text is parsed by type) or its default."""
    for name in given:
        if name not in graph.params:
            guess = closest(name, graph.params)
            raise InvalidInput(
                f"pipeline {graph.name!r} has no parameter {name!r}"
                + (f" (did you mean {guess!r}?)" if guess else
                   f" (parameters: {', '.join(graph.params) or 'none'})"))
    values: dict[str, Any] = {}
    for spec in graph.params.values():
        if spec.name in given:
            value = check_param_value(spec, given[spec.name])
        elif spec.required:
            raise InvalidInput(f"missing pipeline parameter {spec.name!r} ({spec.type})",
                               hint=f"give it: -p {spec.name}=VALUE")
        else:
            value = spec.default
        if spec.type in ARTIFACT_TYPES and value is not None:
            value = Path(value).expanduser().resolve()
            if not value.exists():
                raise InvalidInput(f"parameter {spec.name!r}: {value} does not exist")
        values[spec.name] = value
    return values


def preflight(graph: PipelineGraph, env: Env) -> None:
    """Refuse to start a run that cannot succeed or would run other code than was resolved."""
    digests: dict[Path, str] = {}
    checked: set[str] = set()  # the function digests the environment has checked
    for node in graph.steps.values():
        fn = node.function
        if fn.folder not in digests:
            digests[fn.folder] = pack_digest(fn.folder)
        if digests[fn.folder] != fn.digest:
            what = "the files of" if fn.local else "the installed files of"
            raise DigestMismatch(
                f"step {node.name!r}: {what} {fn.ref}@{fn.version} changed since the pipeline "
                f"was resolved ({fn.folder})",
                hint="load the pipeline again" if fn.local else
                f"reinstall it: hub uninstall {fn.ref}:{fn.version}")
        if fn.digest not in checked:  # a function used by many steps is checked once
            checked.add(fn.digest)
            try:
                env.check(fn.manifest)
            except MissingRequirements as exc:
                raise MissingRequirements(f"step {node.name!r}: {exc.message}",
                                          hint=exc.hint) from None
        for input_name, binding in node.inputs.items():
            port = fn.input(input_name)
            if (isinstance(binding, Constant) and port is not None and port.is_artifact
                    and binding.value is not None and not Path(binding.value).exists()):
                raise InvalidInput(f"step {node.name!r} input {input_name!r}: "
                                   f"{binding.value} does not exist")


def check_feature_steps(graph: PipelineGraph, engine: Engine) -> None:
    """Refuse a feature-set step without the feature store's dependencies, or on an engine
    whose workers share only a bucket: it writes to a feature store and reads its source from
    this machine's disk."""
    for node in graph.steps.values():
        if not node.function.feature_set:
            continue
        check_features_extra(node.name)
        if engine.remote_storage is not None:
            raise InvalidInput(
                f"step {node.name!r} ingests into the feature set {node.function.ref}, which "
                f"the {engine.name} engine cannot do with storage {engine.remote_storage}",
                hint="run it without --storage (workers sharing the run folder and the "
                     "feature store), or with --engine local")


# -- the scheduler ---------------------------------------------------------------


class Scheduler:
    """Starts each step once its inputs are ready; a step the cache cannot answer waits in a
    queue for one of the executor's `slots`."""

    def __init__(self, graph: PipelineGraph, params: dict[str, Any], *, engine: Engine,
                 env: Env, cache: StepCache, use_cache: bool, runs_dir: Path,
                 storage: S3Storage | None = None, on_event: OnEvent | None = None) -> None:
        self.graph, self.params, self.engine = graph, params, engine
        self.storage = storage
        self.env, self.cache, self.use_cache = env, cache, use_cache
        self.feature_env = CurrentEnv().for_steps(run_request)  # feature-set steps run here
        self.on_event = on_event
        run_dir = new_run_dir(runs_dir, graph.name)
        self.run = PipelineRun(
            pipeline=graph.name, run_dir=run_dir, engine=engine.name, params=params,
            steps={name: StepRun(name, f"{n.function.ref}@{n.function.version}",
                                 n.function.digest, run_dir / name)
                   for name, n in graph.steps.items()})
        self.executor: Executor | None = None
        self.queue: list[StepTask] = []
        self.running: dict[Future[StepOutcome], str] = {}
        self.digests: dict[str, str] = {}  # artifact path -> digest, known for this run
        self.saved_at = 0.0  # time.monotonic() of the last write of run.json
        self.unsaved = False  # the run changed since then

    def execute(self) -> PipelineRun:
        started = time.monotonic()
        self._save()
        try:
            self._advance()
            while self.running:
                done, _ = wait(list(self.running), timeout=self._save_due(),
                               return_when=FIRST_COMPLETED)
                if not done:
                    self._save()
                for future in done:
                    name = self.running.pop(future)
                    self._finish(name, self._outcome(name, future))
                self._advance()
        except BaseException:
            for name in [*self.running.values(), *(t.step for t in self.queue)]:
                self._set(self.run.steps[name], status="failed", error="interrupted")
            raise
        finally:
            if self.executor is not None:
                self.executor.close()
            ok = all(s.status in FINISHED_OK for s in self.run.steps.values())
            self.run.status = "succeeded" if ok else "failed"
            self.run.finished_at = _now()
            self.run.duration = round(time.monotonic() - started, 3)
            self._save()
        return self.run

    def _save(self) -> None:
        self.run.save()
        self.saved_at, self.unsaved = time.monotonic(), False

    def _save_due(self) -> float | None:
        """Seconds until unsaved changes must be written; None when there are none."""
        if not self.unsaved:
            return None
        return max(0.0, self.saved_at + SAVE_INTERVAL - time.monotonic())

    def _emit(self, step: StepRun) -> None:
        self.unsaved = True
        if time.monotonic() - self.saved_at >= SAVE_INTERVAL:
            self._save()
        if self.on_event:
            self.on_event(self.run, step)

    def _set(self, step: StepRun, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(step, key, value)
        self._emit(step)

    def _advance(self) -> None:
        """Prepare every step whose upstream steps are done (cached ones finish at once, and
        may make more steps ready), then start queued steps while there are free slots."""
        progressed = True
        while progressed:
            progressed = False
            for name, node in self.graph.steps.items():
                upstream_ok = all(self.run.steps[u].status in FINISHED_OK for u in node.upstream)
                if self.run.steps[name].status == "pending" and upstream_ok:
                    self._prepare(node)
                    progressed = True
        while self.queue:
            if self.executor is None:
                self.executor = self.engine.executor(self.storage)
            if len(self.running) >= self.executor.slots:
                break
            task = self.queue.pop(0)
            self.running[self.executor.submit(task)] = task.step
            self._set(self.run.steps[task.step], status="running", started_at=_now())

    def _digest(self, path: Path) -> str:
        key = str(path)
        if key not in self.digests:
            self.digests[key] = artifact_digest(path)
        return self.digests[key]

    def _inputs(self, node: StepNode) -> dict[str, Any]:
        given: dict[str, Any] = {}
        stored: dict[str, str] = {}  # upstream artifacts kept in the bucket
        for name, binding in node.inputs.items():
            if isinstance(binding, Constant):
                given[name] = binding.value
            elif isinstance(binding, ParamRef):
                given[name] = self.params[binding.name]
            elif isinstance(binding, OutputRef):
                value = self.run.steps[binding.step].outputs[binding.output]
                (stored if is_remote(value) else given)[name] = value
        # an object is no file to look for: check_inputs takes it as absent (None), and the
        # upstream step's outcome vouches for it
        return {**check_inputs(node.function.manifest, {**given, **dict.fromkeys(stored)}),
                **stored}

    def _prepare(self, node: StepNode) -> None:
        step = self.run.steps[node.name]
        fn = node.function
        try:
            values = self._inputs(node)
            artifacts = {n: self._digest(v) for n, v in values.items()
                         if isinstance(v, Path) or (is_remote(v) and str(v) in self.digests)}
        except (FnhubError, OSError) as exc:
            self._fail(step, exc.message if isinstance(exc, FnhubError) else str(exc))
            return
        step.inputs = values
        # a feature-set step writes to a store: run every time, never cached
        step.cache_key = None if fn.feature_set else cache_key(fn.digest, values, artifacts)
        output_dir = step.step_dir / "outputs"
        if self.storage is None:  # with S3 storage nothing is written here
            output_dir.mkdir(parents=True, exist_ok=True)
        if self.use_cache and step.cache_key and (
                hit := self.cache.restore(step.cache_key, output_dir, self.storage)):
            outputs = {n: _artifact(v) if n in hit.digests else v for n, v in hit.outputs.items()}
            self.digests.update({str(outputs[n]): d for n, d in hit.digests.items()})
            self._set(step, status="cached", outputs=outputs, cached_from=hit.created_at,
                      started_at=_now(), finished_at=_now(), duration=0.0)
            return
        task = StepTask(
            step=node.name, request=build_request(fn.folder, fn.manifest, values, output_dir),
            step_dir=str(step.step_dir), manifest=fn.manifest,
            env=self.feature_env if fn.feature_set else self.env)
        self.queue.append(task)
        self._set(step, status="queued")

    @staticmethod
    def _outcome(name: str, future: Future[StepOutcome]) -> StepOutcome:
        try:
            return future.result()
        except Exception as exc:  # the engine lost the task (a worker died, ...)
            return failed_outcome(name, f"{type(exc).__name__}: {exc}")

    def _finish(self, name: str, outcome: StepOutcome) -> None:
        step = self.run.steps[name]
        timing = {"started_at": outcome.started_at, "finished_at": outcome.finished_at,
                  "duration": outcome.duration, "host": outcome.host}
        if is_remote(outcome.log):
            step.log_uri = outcome.log
        if not outcome.ok:
            step.log_tail = outcome.log_tail
            self._fail(step, outcome.error or "failed", **timing)
            return
        outputs = {n: _artifact(v) if n in outcome.digests else v
                   for n, v in outcome.outputs.items()}
        self.digests.update({str(outputs[n]): d for n, d in outcome.digests.items()})
        if step.cache_key:
            with suppress(OSError):  # a full disk must not fail a step that worked
                self.cache.save(step.cache_key, step=name, function=step.function,
                                outputs=outcome.outputs, digests=outcome.digests,
                                output_dir=step.step_dir / "outputs", store=self.storage)
        self._set(step, status="succeeded", outputs=outputs, **timing)

    def _fail(self, step: StepRun, error: str, **timing: Any) -> None:
        self._set(step, status="failed", error=error, **timing)
        for name in self.graph.downstream(step.name):
            downstream = self.run.steps[name]
            if downstream.status == "pending":
                self._set(downstream, status="skipped",
                          error=f"not run: step {step.name!r} failed")


def run_graph(graph: PipelineGraph, params: dict[str, Any], *, engine: Engine, env: Env,
              home: Path, use_cache: bool = True, runs_dir: Path | None = None,
              on_event: OnEvent | None = None) -> PipelineRun:
    """Check, then run every step of `graph`; the returned run may have failed. A step in
    this interpreter runs in a child process (a warm worker with the local engine), never in
    this one."""
    values = resolve_params(graph, params)
    check_feature_steps(graph, engine)
    preflight(graph, env)
    scheduler = Scheduler(
        graph, values, engine=engine, env=env.for_steps(run_request),
        cache=StepCache(home / "cache" / "steps"), use_cache=use_cache,
        runs_dir=runs_dir or home / "runs", storage=engine.artifact_storage(),
        on_event=on_event)
    return scheduler.execute()
