"""Run a function folder with given inputs, in an environment (`fnhub.envs`): this interpreter,
a cached venv, or the function's published image (`fnhub.container`).

Every path goes through `fnhub.runtime`, so a function behaves the same everywhere. Each run gets a
folder (`<home>/runs/<run-id>/` or `--out`) holding `outputs/`, `log.txt` and `run.json`.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fnhub.core.errors import InvalidInput, RunError
from fnhub.core.manifest import Manifest, Port
from fnhub.envs import CurrentEnv, Env, VenvEnv
from fnhub.frames import frame_inputs, write_frames
from fnhub.images import ContainerImage

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


def make_env(name: str, *, venvs_dir: Path, manifest: Manifest,
             image: Callable[[], ContainerImage | None]) -> Env:
    """The environment `hub run --env NAME` means; `image` finds the function's published image
    (asked only for `container`)."""
    if name == "current":
        return CurrentEnv()
    if name == "venv":
        return VenvEnv(venvs_dir)
    if name != "container":
        raise InvalidInput(f"unknown environment {name!r} (one of: {', '.join(ENVS)})")
    found = image()
    if found is None:
        raise InvalidInput(
            f"{manifest.metadata.name} records no published image to run in a container",
            hint="publish it with its image (`hub publish --image`) and run its hub URI, or "
                 "record the image `hub build --push` printed in spec.image.ref and "
                 "spec.image.digest of its function.yaml")
    # imported here: the docker SDK is only loaded by the runs that use it
    from fnhub.container import ContainerEnv

    return ContainerEnv(found)


def run_function(folder: Path, manifest: Manifest, inputs: dict[str, Any], *, env: Env,
                 runs_dir: Path, out_dir: Path | None = None, source: str = "") -> RunResult:
    """Run the function in `folder` in `env`, in a new run folder under `runs_dir` (or
    `out_dir`).

    A pandas DataFrame given for a dataset input is written to `<run folder>/inputs/NAME.parquet`
    and the function gets that path."""
    frames = frame_inputs(manifest, inputs)
    # a frame is no file to look for yet: checked as absent, its path filled in below
    values = check_inputs(manifest, {**inputs, **dict.fromkeys(frames)})
    env.check(manifest)
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
    answer = env.run(request, manifest, run_dir, log)
    duration = time.monotonic() - started
    record: dict[str, Any] = {
        "function": source or manifest.ref, "version": manifest.metadata.version,
        "env": env.name, "inputs": request["inputs"], "duration_s": round(duration, 3),
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
