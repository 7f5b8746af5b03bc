"""Where a pipeline's steps run: `LocalEngine` and `DaskEngine`, each carrying its own options.

The scheduler (`fnhub.pipeline.engine`) is the same for every engine; an engine only checks its
options and starts an `Executor`, which places `execute_step` calls: the local engine in a
bounded pool of threads of this process, each handing its step to a warm worker process
(`fnhub.pipeline.workers`), the dask engine on a Dask cluster (`fnhub.pipeline.dask_engine`).

`Pipeline.run` and `hub pipeline run` take the engine and the steps' environment by name
(`local`/`dask`, `current`/`venv`) and turn them into these objects here (`engine_named`,
`steps_env`); the objects themselves are accepted too.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from fnhub.core.errors import InvalidInput
from fnhub.envs import Answer, CurrentEnv, Env, VenvEnv
from fnhub.pipeline.execute import StepOutcome, StepTask, execute_step
from fnhub.pipeline.workers import Worker, WorkerPool, shared_pool

if TYPE_CHECKING:
    from fnhub.pipeline.s3_artifacts import S3Storage

ENGINES = ("local", "dask")
STEP_ENVS = ("current", "venv")


class Executor(Protocol):
    """Where steps run. `slots` is how many may run at once."""

    slots: int

    def submit(self, task: StepTask) -> Future[StepOutcome]: ...

    def close(self) -> None: ...


class Engine(ABC):
    """A pipeline engine: its options, checked when it is made; `executor` starts it."""

    name: ClassVar[str]

    @property
    def remote_storage(self) -> str | None:
        """The bucket (`s3://...`) the steps share instead of a disk; None when they share
        this machine's files."""
        return None

    def artifact_storage(self) -> S3Storage | None:
        """The bucket the steps' functions and artifacts go through, checked now (its form,
        and that it answers); None: the run folder on this machine's disk."""
        return None

    @abstractmethod
    def executor(self, storage: S3Storage | None) -> Executor:
        """Start the executor: when a step first needs one (a fully cached run starts none)."""


def _check_workers(workers: int) -> None:
    if workers < 1:
        raise InvalidInput(f"workers must be at least 1, got {workers}")


@dataclass(frozen=True)
class LocalEngine(Engine):
    """Steps in warm worker processes of this machine, at most `workers` at once."""

    workers: int = 2
    name: ClassVar[str] = "local"

    def __post_init__(self) -> None:
        _check_workers(self.workers)

    def executor(self, storage: S3Storage | None) -> Executor:
        return LocalExecutor(self.workers, shared_pool())


@dataclass(frozen=True)
class DaskEngine(Engine):
    """Steps on a Dask cluster: the scheduler at `address`, or a LocalCluster of `workers`
    processes. With `storage` (`s3://bucket/prefix`) functions and artifacts pass through
    that bucket, so the workers need no disk shared with this process."""

    address: str | None = None
    workers: int = 2
    storage: str | None = None
    name: ClassVar[str] = "dask"

    def __post_init__(self) -> None:
        _check_workers(self.workers)
        if importlib.util.find_spec("distributed") is None:
            raise InvalidInput("the dask engine needs the fnhub[dask] extra",
                               hint='pip install "fnhub[dask]"')

    @property
    def remote_storage(self) -> str | None:
        return self.storage or None

    def artifact_storage(self) -> S3Storage | None:
        if not self.storage:
            return None
        if importlib.util.find_spec("boto3") is None:
            raise InvalidInput("S3 storage needs the fnhub[dask] extra",
                               hint='pip install "fnhub[dask]"')
        from fnhub.pipeline.s3_artifacts import S3Storage

        bucket = S3Storage.from_url(self.storage)
        bucket.check()
        return bucket

    def executor(self, storage: S3Storage | None) -> Executor:
        from fnhub.pipeline.dask_engine import DaskExecutor

        return DaskExecutor(self.address, workers=self.workers, storage=storage)


class LocalExecutor:
    """Steps in warm worker processes, handed over by a bounded pool of threads of this
    process; `pool` is shared with the process's other runs, so its workers stay warm."""

    def __init__(self, workers: int, pool: WorkerPool) -> None:
        self.slots = workers
        self._pool = pool
        self._running: set[Worker] = set()  # the workers running this executor's steps
        self._threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fnhub-step")

    def _warm(self, request: dict[str, Any], work_dir: Path, log: Path) -> Answer:
        return self._pool.run(request, str(log), running=self._running)

    def submit(self, task: StepTask) -> Future[StepOutcome]:
        return self._threads.submit(execute_step,
                                    replace(task, env=task.env.for_steps(self._warm)))

    def close(self) -> None:
        """Once every step is done; or when the run is abandoned (interrupted), whose steps
        still running are killed rather than waited for."""
        self._threads.shutdown(wait=False, cancel_futures=True)
        WorkerPool.stop_running(self._running)
        self._threads.shutdown(wait=True)


def engine_named(engine: str | Engine, *, workers: int | None = None,
                 address: str | None = None, storage: str | None = None) -> Engine:
    """The engine `--engine NAME` means, with the options given beside it; an Engine as is."""
    given = {k: v for k, v in (("workers", workers), ("address", address),
                               ("storage", storage)) if v is not None}
    if isinstance(engine, Engine):
        if given:
            raise InvalidInput(f"give {', '.join(given)} to the {engine.name} engine object, "
                               "not beside it")
        return engine
    if engine == "local":
        if address:
            raise InvalidInput("an address is for the dask engine (--engine dask)")
        if storage:
            raise InvalidInput(f"storage ({storage}) is for the dask engine (--engine dask), "
                               f"not {engine!r}")
        return LocalEngine() if workers is None else LocalEngine(workers)
    if engine == "dask":
        return DaskEngine(**given)
    raise InvalidInput(f"unknown engine {engine!r} (one of: {', '.join(ENGINES)})")


def steps_env(env: str | Env, home: Path) -> Env:
    """The environment `--env NAME` means for a pipeline's steps (venvs under `home`)."""
    if isinstance(env, (CurrentEnv, VenvEnv)):
        return env
    if env == "current":
        return CurrentEnv()
    if env == "venv":
        return VenvEnv(home / "venvs")
    name = env.name if isinstance(env, Env) else env
    if name == "container":
        raise InvalidInput("a pipeline's steps run in the current environment or in venvs "
                           "(--env current|venv), not in containers",
                           hint="export the pipeline (hub pipeline export --to kfp|argo) to run "
                                "each step in its image")
    raise InvalidInput(f"unknown environment {name!r} (one of: {', '.join(STEP_ENVS)})")

