"""Run a function folder with given inputs: in this interpreter, in a cached venv, or in the
function's published image (`fnhub.container`).

Every path goes through `fnhub.runtime`, so a function behaves the same everywhere. Each run gets a
folder (`<home>/runs/<run-id>/` or `--out`) holding `outputs/`, `log.txt` and `run.json`.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import traceback
import venv
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from fnhub import runtime
from fnhub.core.errors import InvalidInput, MissingRequirements, RunError
from fnhub.core.manifest import Manifest, Port
from fnhub.frames import frame_inputs, write_frames
from fnhub.images import ContainerImage
from fnhub.signals import forward_stop_signals

Env = Literal["current", "venv", "container"]
ENVS: tuple[str, ...] = ("current", "venv", "container")


@dataclass
class RunResult:
    outputs: dict[str, Any]
    run_dir: Path
    status: str = "succeeded"
    duration: float = 0.0
    record: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        outputs = {k: str(v) if isinstance(v, Path) else v for k, v in self.outputs.items()}
        return {"outputs": outputs, "run_dir": str(self.run_dir)}


def parse_param(port: Port, text: str) -> Any:
    """A `-p NAME=VALUE` string as the parameter's declared type."""
    try:
        if port.type == "str":
            return text
        if port.type == "int":
            return int(text)
        if port.type == "float":
            return float(text)
        if port.type == "bool":
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        value = json.loads(text)
        expected = list if port.type == "list" else dict
        if not isinstance(value, expected):
            raise ValueError(text)
        return value
    except ValueError:
        raise InvalidInput(f"parameter {port.name!r} expects {port.type}, got {text!r}") from None


def check_inputs(manifest: Manifest, inputs: dict[str, Any]) -> dict[str, Any]:
    """Every given input is declared, every required one given, artifacts exist; defaults filled."""
    declared = {p.name: p for p in manifest.spec.inputs}
    unknown = sorted(set(inputs) - set(declared))
    if unknown:
        raise InvalidInput(f"{manifest.metadata.name} has no input {unknown[0]!r} "
                           f"(inputs: {', '.join(declared) or 'none'})")
    resolved: dict[str, Any] = {}
    for name, port in declared.items():
        if name not in inputs:
            if port.required:
                raise InvalidInput(f"missing required input {name!r} ({port.type})")
            resolved[name] = port.default
            continue
        value = inputs[name]
        if port.is_artifact and value is not None:
            path = Path(value).expanduser()
            if not path.exists():
                raise InvalidInput(f"input {name!r}: {path} does not exist")
            value = path.resolve()
        elif isinstance(value, str) and port.type != "str":
            value = parse_param(port, value)
        resolved[name] = value
    return resolved


def missing_requirements(manifest: Manifest) -> list[str]:
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
            f"{manifest.metadata.name} needs Python {manifest.spec.python}, this is {current}")


def new_run_dir(base: Path, name: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    path = base / f"{stamp}-{name}-{secrets.token_hex(3)}"
    path.mkdir(parents=True)
    return path


def build_request(folder: Path, manifest: Manifest, inputs: dict[str, Any],
                  output_dir: Path) -> dict[str, Any]:
    """The `fnhub.runtime` request for one call (shared with the pipeline engines)."""
    artifacts = [p.name for p in manifest.spec.inputs if p.is_artifact]
    return {
        "folder": str(folder),
        "entrypoint": manifest.spec.entrypoint,
        "inputs": {k: str(v) if isinstance(v, Path) else v for k, v in inputs.items()},
        "artifacts": artifacts,
        "outputs": [{"name": p.name, "type": p.type} for p in manifest.spec.outputs],
        "output_dir": str(output_dir),
    }


def _run_in_process(request: dict[str, Any], log: Path) -> dict[str, Any]:
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


def run_request(request: dict[str, Any], work_dir: Path, log: Path, *,
                venv_dir: Path | None = None) -> dict[str, Any]:
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
    return json.loads(result_file.read_text())


def collect_outputs(encoded: dict[str, dict[str, Any]], output_dir: Path) -> dict[str, Any]:
    """Artifact outputs written elsewhere are copied into the run's outputs folder."""
    outputs: dict[str, Any] = {}
    for name, item in encoded.items():
        if "value" in item:
            outputs[name] = item["value"]
            continue
        source = Path(item["path"])
        if source.is_relative_to(output_dir):
            outputs[name] = source
            continue
        dest = output_dir / name / source.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(source, dest)
        outputs[name] = dest
    return outputs


def run_function(folder: Path, manifest: Manifest, inputs: dict[str, Any], *, env: str,
                 runs_dir: Path, venvs_dir: Path, out_dir: Path | None = None,
                 source: str = "", image: ContainerImage | None = None) -> RunResult:
    """Run the function in `folder`; `image` is its published image, for `env="container"`.

    A pandas DataFrame given for a dataset input is written to `<run folder>/inputs/NAME.parquet`
    and the function gets that path."""
    if env not in ENVS:
        raise InvalidInput(f"unknown environment {env!r} (one of: {', '.join(ENVS)})")
    frames = frame_inputs(manifest, inputs)
    # a frame is no file to look for yet: checked as absent, its path filled in below
    values = check_inputs(manifest, {**inputs, **dict.fromkeys(frames)})
    if env == "container" and image is None:
        raise InvalidInput(
            f"{manifest.metadata.name} records no published image to run in a container",
            hint="publish it with its image (`hub publish --image`) and run its hub URI, or "
                 "record the image `hub build --push` printed in spec.image.ref and "
                 "spec.image.digest of its function.yaml")
    if env != "container":
        check_python(manifest)
    if env == "current" and (missing := missing_requirements(manifest)):
        raise MissingRequirements(
            f"{manifest.metadata.name} needs packages this environment lacks: "
            + ", ".join(missing),
            hint="install them, or run it in its own venv with --env venv")
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        run_dir = out_dir.resolve()
    else:
        run_dir = new_run_dir(runs_dir, manifest.metadata.name)
    output_dir = run_dir / "outputs"
    output_dir.mkdir(exist_ok=True)
    values.update(write_frames(frames, run_dir / "inputs"))
    log = run_dir / "log.txt"
    request = build_request(folder, manifest, values, output_dir)
    started = time.monotonic()
    if env == "container" and image is not None:
        # imported here: the docker SDK is only loaded by the runs that use it
        from fnhub.container import run_in_container
        answer = run_in_container(request, manifest, image, run_dir, log)
    elif env == "venv":
        answer = run_request(request, run_dir, log, venv_dir=ensure_venv(manifest, venvs_dir))
    else:
        answer = _run_in_process(request, log)
    duration = time.monotonic() - started
    record: dict[str, Any] = {
        "function": source or manifest.ref, "version": manifest.metadata.version, "env": env,
        "inputs": request["inputs"], "duration_s": round(duration, 3),
        "finished_at": datetime.now(timezone.utc).isoformat(),
    }
    if not answer.get("ok"):
        record.update(status="failed", error=answer.get("error"))
        (run_dir / "run.json").write_text(json.dumps(record, indent=2, default=str))
        raise RunError(f"{manifest.metadata.name} failed: {answer.get('error')}",
                       hint=f"the log is in {log}")
    try:
        outputs = collect_outputs(answer["outputs"], output_dir)
    except OSError as exc:
        raise RunError(f"could not collect the outputs of {manifest.metadata.name}: "
                       f"{exc}") from None
    result = RunResult(outputs=outputs, run_dir=run_dir, duration=duration)
    record.update(status="succeeded", outputs=result.to_json()["outputs"])
    result.record = record
    (run_dir / "run.json").write_text(json.dumps(record, indent=2, default=str))
    return result
