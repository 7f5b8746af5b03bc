"""Where a function's code runs: an `Env` starts `fnhub.runtime` for one request.

- `CurrentEnv`: this interpreter, whose packages must satisfy the function's requirements.
  `hub run` calls the function in this process; a pipeline engine hands its steps to a
  `launch` of its own (a warm worker, a child process), so a step never shares the
  scheduler's process.
- `VenvEnv`: a child process in a cached venv holding exactly the function's requirements.
- `ContainerEnv` (in `fnhub.container`, imported only by the runs that use it, since it loads
  the docker SDK): the function's published image.

A request is `fnhub.runner.build_request`'s; the answer is the runtime's, `{"ok": true,
"outputs": ...}` or `{"ok": false, "error": ...}`. `fnhub.runner` turns the names of `hub run
--env` into these objects, `fnhub.pipeline.api` those of `Pipeline.run(env=...)`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import traceback
import venv
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

from filelock import FileLock
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from fnhub import runtime
from fnhub.core.errors import MissingRequirements, RunError
from fnhub.core.manifest import Manifest
from fnhub.signals import forward_stop_signals

Answer = dict[str, Any]
Launch = Callable[[dict[str, Any], Path, Path], Answer]  # (request, work dir, log) -> answer


def _label(manifest: Manifest) -> str:
    return f"{manifest.metadata.namespace}/{manifest.metadata.name}"


def missing_requirements(manifest: Manifest) -> list[str]:
    """The function's requirements this interpreter does not satisfy, each with why."""
    problems = []
    for text in manifest.spec.requirements:
        req = Requirement(text)
        if req.marker and not req.marker.evaluate():
            continue
        try:
            have = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            problems.append(f"{text} (not installed)")
            continue
        if req.specifier and not req.specifier.contains(have, prereleases=True):
            problems.append(f"{text} (found {have})")
    return problems


def check_python(manifest: Manifest) -> None:
    current = ".".join(map(str, sys.version_info[:3]))
    if not SpecifierSet(manifest.spec.python).contains(current):
        raise MissingRequirements(
            f"{_label(manifest)} needs Python {manifest.spec.python}, this is {current}")


def in_process(request: dict[str, Any], work_dir: Path, log: Path) -> Answer:
    """Call the function in this process (`hub run`, the SDK); a traceback goes to `log`."""
    previous = os.environ.get("FNHUB_OUTPUT_DIR")
    os.environ["FNHUB_OUTPUT_DIR"] = request["output_dir"]
    try:
        return {"ok": True, "outputs": runtime.call(request)}
    except Exception as exc:
        log.write_text(traceback.format_exc())
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        if previous is None:
            os.environ.pop("FNHUB_OUTPUT_DIR", None)
        else:
            os.environ["FNHUB_OUTPUT_DIR"] = previous


def run_request(request: dict[str, Any], work_dir: Path, log: Path, *,
                venv_dir: Path | None = None) -> Answer:
    """Run `request` through `fnhub.runtime` in a child process; its output goes to `log`.

    The child is this interpreter (`python -m fnhub.runtime`) or, given a venv, the venv's
    Python running the runtime as a script with -I: fnhub is not installed there, and the
    runtime's own folder (fnhub's modules) must not shadow the function's imports.
    """
    request_file, result_file = work_dir / "request.json", work_dir / "result.json"
    request_file.write_text(json.dumps(request, indent=2))
    result_file.unlink(missing_ok=True)
    env = {**os.environ, "FNHUB_OUTPUT_DIR": request["output_dir"]}
    if venv_dir is None:
        command = [sys.executable, "-m", "fnhub.runtime"]
    else:
        command = [str(venv_dir / "bin" / "python"), "-I", runtime.__file__]
        env.pop("PYTHONPATH", None)
    in_main_thread = threading.current_thread() is threading.main_thread()
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [*command, str(request_file), str(result_file)],
            stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=request["output_dir"], env=env, start_new_session=in_main_thread)
        with forward_stop_signals(proc.send_signal, enabled=in_main_thread):
            proc.wait()
    if not result_file.is_file():
        return {"ok": False, "error": f"the function's process exited with {proc.returncode}"}
    answer: Answer = json.loads(result_file.read_text())
    return answer


def _uv() -> str | None:
    """The uv binary, when installed: it builds a venv from its cache in about a second."""
    try:
        from uv import find_uv_bin
    except ImportError:
        return shutil.which("uv")
    try:
        return find_uv_bin()
    except FileNotFoundError:
        return shutil.which("uv")


def _build_venv(path: Path, requirements: list[str]) -> None:
    uv = _uv()
    if uv:
        steps = [[uv, "venv", "--quiet", "--python", sys.executable, str(path)]]
        if requirements:
            steps.append([uv, "pip", "install", "--quiet", "--python",
                          str(path / "bin" / "python"), *requirements])
    else:
        venv.EnvBuilder(with_pip=bool(requirements), clear=True).create(path)
        steps = [[str(path / "bin" / "python"), "-m", "pip", "install", "--quiet",
                  "--disable-pip-version-check", *requirements]] if requirements else []
    for step in steps:
        proc = subprocess.run(step, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
            raise RunError(f"could not install the requirements into a venv:\n{tail}")


def ensure_venv(manifest: Manifest, venvs_dir: Path) -> Path:
    """A venv holding the requirements, shared by every function that asks for the same set."""
    python = ".".join(map(str, sys.version_info[:2]))
    key = hashlib.sha256(json.dumps([python, sorted(manifest.spec.requirements)]).encode())
    target = venvs_dir / key.hexdigest()[:16]
    venvs_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        marker = target / ".fnhub-complete"
        if marker.exists():
            return target
        # built at its final path (venv scripts remember it); complete once the marker exists
        shutil.rmtree(target, ignore_errors=True)
        try:
            _build_venv(target, manifest.spec.requirements)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        marker.write_text("\n".join(manifest.spec.requirements))
    return target


class Env(ABC):
    """Where a function runs. Engines and runners call `check` before anything starts, then
    `run` once per call; both are all they know of an environment."""

    name: ClassVar[str]

    def check(self, manifest: Manifest) -> None:
        """Refuse, before anything runs, a function this environment cannot run."""
        check_python(manifest)

    @abstractmethod
    def run(self, request: dict[str, Any], manifest: Manifest, work_dir: Path,
            log: Path) -> Answer:
        """Run `request`: output to `log`, the runtime's own files into `work_dir`."""

    def for_steps(self, launch: Launch) -> Env:
        """This environment as a pipeline engine runs it: steps in this interpreter go to
        `launch`; an environment that starts a process of its own is unchanged."""
        return self

    def on_host(self, home: Path) -> Env:
        """This environment on a machine that shares no disk with this one and whose
        FNHUB_HOME is `home` (a Dask worker with S3 storage)."""
        return self


@dataclass(frozen=True)
class CurrentEnv(Env):
    """This interpreter; `launch` starts the runtime (in this process unless an engine says)."""

    launch: Launch = in_process
    name: ClassVar[str] = "current"

    def check(self, manifest: Manifest) -> None:
        super().check(manifest)
        if missing := missing_requirements(manifest):
            raise MissingRequirements(
                f"{_label(manifest)} needs packages this environment lacks: "
                + ", ".join(missing),
                hint="install them, or run it in a venv of its own (--env venv)")

    def run(self, request: dict[str, Any], manifest: Manifest, work_dir: Path,
            log: Path) -> Answer:
        return self.launch(request, work_dir, log)

    def for_steps(self, launch: Launch) -> Env:
        return replace(self, launch=launch)


@dataclass(frozen=True)
class VenvEnv(Env):
    """A child process in the cached venv (under `venvs_dir`) of the function's requirements."""

    venvs_dir: Path
    name: ClassVar[str] = "venv"

    def run(self, request: dict[str, Any], manifest: Manifest, work_dir: Path,
            log: Path) -> Answer:
        return run_request(request, work_dir, log,
                           venv_dir=ensure_venv(manifest, self.venvs_dir))

    def on_host(self, home: Path) -> Env:
        return replace(self, venvs_dir=home / "venvs")
