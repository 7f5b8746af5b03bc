"""The `dask` engine: the same steps, placed on a `dask.distributed` cluster.

Each step is one Dask task running `fnhub.pipeline.execute.execute_step`, so on a worker it runs
exactly as it does locally: a child process through `fnhub.runtime`. Scheduling, caching and the
run record stay in the calling process. Without an address the engine starts (and stops) a
`LocalCluster` of `workers` worker processes with one thread each.

Workers on other machines need fnhub installed and the same view of the files a run touches:
the function folders (FNHUB_HOME), the run folder (`runs_dir`) and the venvs for `env="venv"`,
so these must be on storage they share (an NFS or similar mount). Artifacts are passed as paths
on that storage; object stores (`s3://` through fsspec) are future work.

Install with `pip install "fnhub[dask]"`.
"""

from __future__ import annotations

import logging
import threading
import uuid
from concurrent.futures import Future
from typing import Any

from fnhub.errors import InvalidInput, RunError
from fnhub.pipeline.execute import StepOutcome, StepTask, execute_step


class DaskExecutor:
    """Submits steps to a Dask cluster; `slots` is the cluster's number of worker threads."""

    def __init__(self, address: str | None, *, workers: int = 2) -> None:
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

    def submit(self, task: StepTask) -> Future[StepOutcome]:
        result: Future[StepOutcome] = Future()
        remote = self._client.submit(execute_step, task, pure=False,
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
