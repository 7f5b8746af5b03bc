"""One step, run where an engine puts it: a thread of this process or a Dask worker.

`execute_step` is the only code that runs a step, so every engine runs it the same way: the
step's environment (`fnhub.envs`) calls the function in a process of its own through
`fnhub.runtime`: for `current`, a warm worker of this interpreter when the local engine runs it
(`fnhub.pipeline.workers`), otherwise a new child process (`python -m fnhub.runtime`); for
`venv`, a child process in the cached venv of its requirements. Its artifact outputs are
collected into
`<step dir>/outputs/` and hashed there, next to the data. It never raises: a failure is an
outcome with an error and the tail of the step's log. Tasks and outcomes are plain picklable
dataclasses.
"""

from __future__ import annotations

import socket
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fnhub.core.errors import FnhubError
from fnhub.core.manifest import Manifest
from fnhub.envs import Env
from fnhub.pipeline.cache import artifact_digest
from fnhub.runner import collect_outputs

LOG_TAIL_LINES = 20


@dataclass(frozen=True)
class StepTask:
    step: str
    request: dict[str, Any]  # the runtime request (`fnhub.runner.build_request`)
    step_dir: str
    manifest: Manifest
    env: Env  # as the engine runs it (`Env.for_steps`): never in the scheduler's process


@dataclass
class StepOutcome:
    step: str
    ok: bool
    log: str
    started_at: str
    finished_at: str
    duration: float
    host: str
    outputs: dict[str, Any] = field(default_factory=dict)  # artifacts as path strings
    digests: dict[str, str] = field(default_factory=dict)  # artifact output -> digest
    error: str | None = None
    log_tail: str = ""


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with log.open(errors="replace") as fh:
            return "".join(deque(fh, maxlen=lines)).rstrip()
    except OSError:
        return ""


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat()


def failed_outcome(step: str, error: str, *, started_at: str | None = None,
                   duration: float = 0.0, host: str = "", log_tail: str = "") -> StepOutcome:
    """A step that did not get to run, or whose result was lost (engine or transfer trouble)."""
    finished_at = utc_now()
    return StepOutcome(step=step, ok=False, log="", started_at=started_at or finished_at,
                       finished_at=finished_at, duration=duration, host=host, error=error,
                       log_tail=log_tail)


def execute_step(task: StepTask) -> StepOutcome:
    """Run one step in its environment."""
    step_dir = Path(task.step_dir)
    output_dir = Path(task.request["output_dir"])
    output_dir.mkdir(parents=True, exist_ok=True)
    log = step_dir / "log.txt"
    started_at, started = utc_now(), time.monotonic()
    outputs: dict[str, Any] = {}
    digests: dict[str, str] = {}
    error: str | None = None
    try:
        answer = task.env.run(task.request, task.manifest, step_dir, log)
        if answer.get("ok"):
            for name, value in collect_outputs(answer["outputs"], output_dir).items():
                if isinstance(value, Path):
                    digests[name] = artifact_digest(value)
                    value = str(value)
                outputs[name] = value
        else:
            error = str(answer.get("error"))
    except FnhubError as exc:
        error = exc.message
    except OSError as exc:
        error = f"{type(exc).__name__}: {exc}"
    return StepOutcome(
        step=task.step, ok=error is None, log=str(log), started_at=started_at,
        finished_at=utc_now(), duration=round(time.monotonic() - started, 3),
        host=socket.gethostname(), outputs=outputs if error is None else {},
        digests=digests if error is None else {}, error=error,
        log_tail=log_tail(log) if error is not None else "")
