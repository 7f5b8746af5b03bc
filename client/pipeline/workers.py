"""Warm worker processes for the local engine's `env="current"` steps.

Starting `python -m fnhub.runtime` for every step costs tens of milliseconds of interpreter
start and imports, far more than a small step's own work. So the local engine keeps a few
worker processes alive for the life of the calling process and hands each step to an idle one:
the worker is this interpreter, started once (`python workers.py FD`), and runs `runtime.call`
for one step at a time, exactly as `python -m fnhub.runtime` would. Every step still runs in a
process separate from the engine.

Per step, the worker:

- takes the engine's current environment, plus `FNHUB_OUTPUT_DIR`, as its `os.environ`, and
  the step's output folder as its working directory (both as a fresh child would get them);
- points file descriptors 1 and 2 at the step's log (`os.dup2`), so `print`, logging, C
  extensions and child processes all write there; a crash's traceback (`faulthandler`) too;
- loads the function's module fresh, and afterwards drops from `sys.modules` every module loaded
  from the function's folder and restores `sys.path` and `sys.stdout`/`stderr`, so a changed
  folder is never run from a stale module and two functions never share their modules' state.

What stays between the steps a worker runs (the isolation traded for speed): modules imported
from outside the function folder (numpy, pandas, ... are imported once per worker: the point
of keeping it warm) and their global state, signal handlers, and other process-wide settings a
function changed. A worker is retired (a fresh one replaces it) after a step that was interrupted
or exited (KeyboardInterrupt, SystemExit) or that left threads running, so a thread a function
started can never write into a later step's log. A worker that dies in a step (a segfault,
`os._exit`) fails that step with its exit status; other steps and workers carry on.

Requests and answers cross a socket as the same JSON `fnhub.runtime` reads and writes, so a
step's answer is exactly what the subprocess path (`fnhub.envs.run_request`) would give.

This file is also the worker's program, run as a script so that starting a worker does not
import the `fnhub.pipeline` package: the part below `if __name__ == "__main__"` and everything
it calls must import only the standard library and `fnhub.runtime`.
"""

from __future__ import annotations

import atexit
import ctypes
import faulthandler
import functools
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import traceback
from multiprocessing.connection import Connection, Pipe
from typing import Any

from fnhub import runtime

FUNCTION_MODULE_PREFIX = "_fnhub_fn_"  # the module names `runtime.load_callable` gives files
_STOP_TIMEOUT = 5.0


def describe_exit(returncode: int) -> str:
    """`killed by SIGSEGV`, `exited with code 3`: how a worker process ended."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


# -- the engine's side -------------------------------------------------------------


class Worker:
    """One worker process and the engine's end of its socket."""

    def __init__(self) -> None:
        self.pythonpath = os.environ.get("PYTHONPATH")
        ours, theirs = Pipe()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, str(theirs.fileno())], pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.conn: Connection = ours

    def usable(self) -> bool:
        """Alive, and started with the PYTHONPATH a fresh child would get now."""
        return self.proc.poll() is None and self.pythonpath == os.environ.get("PYTHONPATH")

    def stop(self) -> int:
        """Close the socket (an idle worker then exits), kill it if it does not; its exit code."""
        self.conn.close()
        try:
            return self.proc.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


class WorkerPool:
    """Idle warm workers, shared by every run of this process; a step takes one or starts one.

    The pool itself is unbounded: the number of steps running at once (each holding one worker)
    is bounded by the engine's `workers`, so that is how many workers a run keeps warm.
    """

    def __init__(self) -> None:
        self._idle: list[Worker] = []
        self._lock = threading.Lock()
        self._closed = False

    def _acquire(self) -> Worker:
        found: Worker | None = None
        stale: list[Worker] = []
        with self._lock:
            while self._idle and found is None:
                worker = self._idle.pop()
                if worker.usable():
                    found = worker
                else:
                    stale.append(worker)
        for worker in stale:  # dead, or started with another PYTHONPATH
            worker.stop()
        return found or Worker()

    def _release(self, worker: Worker) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(worker)
                return
        worker.stop()

    def run(self, request: dict[str, Any], log: str, *,
            running: set[Worker] | None = None) -> dict[str, Any]:
        """Run one `fnhub.runtime` request in a warm worker, its output into `log`.

        The answer is the runtime's: {"ok": true, "outputs"} or {"ok": false, "error", ...}.
        `running` holds the worker while it runs the request, so that whoever gave the set can
        kill it (`stop_running`) when abandoning the request.
        """
        env = {**os.environ, "FNHUB_OUTPUT_DIR": request["output_dir"]}
        job = json.dumps({"request": request, "log": log, "env": env}, default=str).encode()
        held = set() if running is None else running
        worker = self._acquire()
        held.add(worker)
        try:
            try:
                worker.conn.send_bytes(job)
            except OSError:  # it died while idle: nothing ran yet, so a fresh worker may try
                held.discard(worker)
                worker.stop()
                worker = Worker()
                held.add(worker)
                worker.conn.send_bytes(job)
            reply = json.loads(worker.conn.recv_bytes())
        except (EOFError, OSError):
            pid, status = worker.proc.pid, describe_exit(worker.stop())
            return {"ok": False,
                    "error": f"the worker process running the function (pid {pid}) died: "
                             f"{status}"}
        finally:
            held.discard(worker)
        if reply["retire"]:
            worker.stop()
        else:
            self._release(worker)
        answer: dict[str, Any] = reply["answer"]
        return answer

    @staticmethod
    def stop_running(running: set[Worker]) -> None:
        """Kill the workers running the requests given `running`: their callers get an answer
        saying so at once."""
        for worker in list(running):
            worker.proc.kill()

    def close(self) -> None:
        """Stop the idle workers; workers still running a step stop when it ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.conn.close()  # all at once: each exits on end of file
        for worker in idle:
            worker.stop()


_shared: WorkerPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> WorkerPool:
    """The pool of this process, started on first use and stopped when the process exits."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = WorkerPool()
        return _shared


@atexit.register
def _close_shared() -> None:
    if _shared is not None:
        _shared.close()


def _forget_after_fork() -> None:
    """A forked child must not share its parent's workers (it starts its own if it needs any),
    nor keep their sockets open: an idle worker exits when its engine closes its end."""
    global _shared, _shared_lock
    if _shared is not None:
        for worker in _shared._idle:
            worker.conn.close()
    _shared, _shared_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


# -- the worker's side -------------------------------------------------------------


def _set_environ(env: dict[str, str]) -> None:
    for key in [k for k in os.environ if k not in env]:
        del os.environ[key]
    for key, value in env.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


def _forget_function_modules(before: set[str], folder: str) -> None:
    """Drop the modules this call loaded from the function's folder (and its entrypoint)."""
    inside = os.path.join(os.path.realpath(folder), "")
    for name in set(sys.modules) - before:
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None)
        if name.startswith(FUNCTION_MODULE_PREFIX) or (
                file and os.path.realpath(file).startswith(inside)):
            del sys.modules[name]


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None)


def _flush_c_stdio() -> None:
    """What C code printed through stdio buffers belongs to this step's log, not the next."""
    _libc().fflush(None)


def call(job: dict[str, Any], on_interrupt: Any) -> tuple[dict[str, Any], bool]:
    """Run one step: (the runtime's answer, whether this worker must retire after it).

    `on_interrupt` is the SIGINT handler the step runs with: Python's, unless the engine ignored
    SIGINT when it started the worker (as a fresh child would then ignore it too).
    """
    request = job["request"]
    _set_environ(job["env"])
    before, path = set(sys.modules), list(sys.path)
    streams = sys.stdin, sys.stdout, sys.stderr
    sys.stdout.flush()
    sys.stderr.flush()
    log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    saved = os.dup(1), os.dup(2)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    retire = False
    try:
        importlib.invalidate_caches()  # see files written since the last step
        signal.signal(signal.SIGINT, on_interrupt)
        try:
            os.chdir(request["output_dir"])
            answer: dict[str, Any] = {"ok": True, "outputs": runtime.call(request)}
        except BaseException as exc:  # the engine reports it; the worker must always answer
            traceback.print_exc()
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                      "traceback": traceback.format_exc()}
            retire = not isinstance(exc, Exception)
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    finally:
        sys.stdin, sys.stdout, sys.stderr = streams
        sys.stdout.flush()
        sys.stderr.flush()
        _flush_c_stdio()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        sys.path[:] = path
        _forget_function_modules(before, request["folder"])
    return answer, retire or threading.active_count() > 1


def serve(fd: int) -> None:
    """Answer jobs from the engine until it closes the socket."""
    os.set_inheritable(fd, False)  # a function's own child processes must not hold it open
    conn = Connection(fd)
    # Ctrl-C interrupts a step, not the worker
    on_interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.enable()  # onto fd 2: a crash's traceback lands in the step's log
    while True:
        try:
            job = json.loads(conn.recv_bytes())
        except EOFError:
            return
        try:
            answer, retire = call(job, on_interrupt)
        except Exception as exc:  # its own part failed (the log cannot be opened, ...)
            answer, retire = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}, True
        try:
            conn.send_bytes(json.dumps({"answer": answer, "retire": retire},
                                       default=str).encode())
        except OSError:  # the engine is gone
            return
        if retire:  # now, without waiting for threads the function left running
            os._exit(0)


if __name__ == "__main__":
    # run as a script: its folder (fnhub/pipeline) must not shadow the functions' imports
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    serve(int(sys.argv[1]))
