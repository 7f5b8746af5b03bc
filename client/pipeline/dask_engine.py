"""The `dask` engine: the same steps, placed on a `dask.distributed` cluster.

Each step is one Dask task running `fnhub.pipeline.execute.execute_step`, so on a worker it runs
exactly as it does locally: a child process through `fnhub.runtime`. Scheduling, caching and the
run record stay in the calling process. Without an address the engine starts (and stops) a
`LocalCluster` of `workers` worker processes with one thread each.

Workers on other machines need fnhub installed, and the files a run touches one of two ways:

- shared storage (the default): the function folders (FNHUB_HOME), the run folder (`runs_dir`)
  and the venvs for `env="venv"` on storage they all mount (NFS or similar); artifacts are
  passed as paths on it.
- an S3 bucket (`storage="s3://bucket/prefix"`, see `fnhub.pipeline.s3_artifacts`): nothing
  shared but the bucket. This executor uploads each function's package (once per digest) and
  the caller's own input artifacts; each task fetches them into a temporary folder on its
  worker, runs `execute_step` there and uploads its outputs and log, which come back as
  `s3://` URIs with their digests. The caller's run folder then holds only `run.json`.

Install with `pip install "fnhub[dask]"`.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fnhub.core.errors import FnhubError, InvalidInput, RunError
from fnhub.pipeline.cache import artifact_digest, is_remote
from fnhub.pipeline.execute import StepOutcome, StepTask, execute_step, failed_outcome

if TYPE_CHECKING:
    from fnhub.pipeline.s3_artifacts import RemoteStep, S3Storage


class DaskExecutor:
    """Submits steps to a Dask cluster; `slots` is the cluster's number of worker threads.
    Given `storage`, steps pass their function and artifacts through that bucket."""

    def __init__(self, address: str | None, *, workers: int = 2,
                 storage: S3Storage | None = None) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise InvalidInput("the dask engine needs the fnhub[dask] extra",
                               hint='pip install "fnhub[dask]"') from None
        self._cluster: Any = None
        if address:
            try:
                self._client = Client(address, timeout="10s")
            except (OSError, TimeoutError) as exc:
                raise RunError(f"cannot reach the Dask scheduler at {address}: {exc}"
                                     ) from None
        else:
            self._cluster = LocalCluster(n_workers=workers, processes=True,
                                         threads_per_worker=1, dashboard_address=None,
                                         silence_logs=logging.ERROR)
            self._client = Client(self._cluster)
        self.slots = max(1, sum(self._client.nthreads().values()))
        self._pending: set[Any] = set()  # a Dask future that is garbage-collected is cancelled
        self._lock = threading.Lock()
        self._storage = storage
        self._functions: dict[str, str] = {}  # function folder -> its package digest, uploaded
        self._uploaded: dict[str, str] = {}  # the caller's input artifact -> its URI

    def _stage(self, task: StepTask) -> RemoteStep:
        """Put what the step needs from this machine into the bucket (each thing once)."""
        from fnhub.pipeline.s3_artifacts import RemoteStep

        assert self._storage is not None
        folder = task.request["folder"]
        if folder not in self._functions:
            self._functions[folder] = self._storage.put_function(Path(folder))
        inputs: dict[str, str] = {}
        for name in task.request["artifacts"]:
            value = task.request["inputs"].get(name)
            if value is None:
                continue
            if not is_remote(value):
                if value not in self._uploaded:
                    self._uploaded[value] = self._storage.put_input(
                        Path(value), artifact_digest(Path(value)))
                value = self._uploaded[value]
            inputs[name] = value
        return RemoteStep(task, self._storage, self._functions[folder], inputs,
                          run_id=Path(task.step_dir).parent.name)

    def submit(self, task: StepTask) -> Future[StepOutcome]:
        result: Future[StepOutcome] = Future()
        call: Callable[[Any], StepOutcome] = execute_step
        argument: StepTask | RemoteStep = task
        if self._storage is not None:
            from fnhub.pipeline.s3_artifacts import TRANSFER_ERRORS, describe, execute_remote

            try:
                call, argument = execute_remote, self._stage(task)
            except (FnhubError, *TRANSFER_ERRORS) as exc:
                result.set_result(failed_outcome(
                    task.step, f"sending the step to {self._storage.url}: {describe(exc)}"))
                return result
        remote = self._client.submit(call, argument, pure=False,
                                     key=f"fnhub-step-{task.step}-{uuid.uuid4().hex}")
        with self._lock:
            self._pending.add(remote)

        def done(finished: Any) -> None:
            with self._lock:
                self._pending.discard(finished)
            try:
                result.set_result(finished.result())
            except Exception as exc:  # the worker died, the task was cancelled, ...
                result.set_exception(exc)

        remote.add_done_callback(done)
        return result

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()
