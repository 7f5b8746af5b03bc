"""`hub run --env container`: run a function's published image through the Docker Engine API.

The image (pinned by digest, pulled when missing, logged in with the hub token as `hub build
--push` is) runs its entrypoint, `python -m fnhub.runtime`, in the flag form, with the flags the
pipeline exporters write (`fnhub.pipeline.containers`). The run's paths are bind mounts:

    /fnhub/run                 the run folder, read-write: `outputs/` is the function's output
                               folder, `result.json` the runtime's answer
    /fnhub/inputs/NAME/FILE    each input artifact, read-only, under its own file name

The container's output goes to the run's log. An artifact output written elsewhere in the
container is copied out of it into `outputs/NAME/` before the container is removed, as the
local environments copy one written outside the output folder. Ctrl-C (SIGINT or SIGTERM)
sends SIGINT to the function, which reports back as in a venv; a second one kills it.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import docker
import docker.errors
from docker.models.containers import Container
from docker.types import Mount

from fnhub.build import Log, engine, pull_image
from fnhub.core.errors import RunError
from fnhub.core.manifest import Manifest
from fnhub.envs import Answer, Env
from fnhub.images import FUNCTION_DIR, ContainerImage
from fnhub.runtime_flags import fixed_args
from fnhub.signals import forward_stop_signals

RUN_DIR = PurePosixPath("/fnhub/run")
INPUTS_DIR = PurePosixPath("/fnhub/inputs")
LOG_TAIL = 20  # lines of the log a failure shows


@dataclass(frozen=True)
class Bind:
    host: Path
    target: PurePosixPath
    read_only: bool


def command(request: dict[str, Any], manifest: Manifest,
            run_dir: Path) -> tuple[list[str], list[Bind]]:
    """The runtime's flags for `request` (written with host paths) and the mounts that place
    those paths in the container."""
    binds = [Bind(run_dir, RUN_DIR, read_only=False)]
    inside = RUN_DIR / Path(request["output_dir"]).relative_to(run_dir)
    args = ["--function-dir", FUNCTION_DIR, "--entrypoint", request["entrypoint"],
            "--output-dir", str(inside), "--result", str(RUN_DIR / "result.json")]
    for port in manifest.spec.inputs:
        value = request["inputs"].get(port.name)
        if port.is_artifact and value is not None:
            host = Path(value)
            target = INPUTS_DIR / port.name / host.name
            binds.append(Bind(host, target, read_only=True))
            value = str(target)
        args += fixed_args(port.name, port.type, value, artifact=port.is_artifact)
    for out in request["outputs"]:
        args += ["--output", f"{out['name']}:{out['type']}"]
    return args, binds


def host_path(path: str, binds: list[Bind]) -> Path | None:
    """Where a path in the container is on this machine; None outside the mounts."""
    inside = PurePosixPath(path)
    for bind in binds:
        if inside.is_relative_to(bind.target):
            return bind.host.joinpath(*inside.relative_to(bind.target).parts)
    return None


def _copy_out(container: Container, path: str, dest: Path) -> Path:
    """Copy `path` (a file or folder tree in the container) into the folder `dest`."""
    data_filter = getattr(tarfile, "data_filter", None)
    if data_filter is None:
        raise RunError("copying an output out of a container needs tarfile's data filter "
                       "(Python 3.10.12 or 3.11.4 and later)")
    stream, _stat = container.get_archive(path)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as spool:
        for chunk in stream:
            spool.write(chunk)
        spool.seek(0)
        with tarfile.open(fileobj=spool) as tar:
            tar.extractall(dest, filter=data_filter)
    return dest / PurePosixPath(path).name


def _answer(container: Container, result_file: Path, binds: list[Bind],
            output_dir: Path) -> dict[str, Any]:
    """The runtime's answer with the outputs' paths on this machine."""
    answer: dict[str, Any] = json.loads(result_file.read_text())
    for name, item in answer.get("outputs", {}).items():
        if "path" in item:
            where = host_path(item["path"], binds)
            if where is None:
                try:
                    where = _copy_out(container, item["path"], output_dir / name)
                except docker.errors.DockerException as exc:
                    raise RunError(f"could not copy output {name!r} out of the container: "
                                   f"{exc}") from None
            item["path"] = str(where)
    return answer


def _tail(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines()
    return "\n".join(lines[-LOG_TAIL:])


@contextmanager
def _stopped_on_signal(container: Container) -> Iterator[None]:
    """Forward our SIGINT/SIGTERM to the container as SIGINT (Python there, as PID 1, ignores
    SIGTERM); a second signal kills it."""
    sent = 0

    def send(_signum: int) -> None:
        nonlocal sent
        sent += 1
        with suppress(docker.errors.DockerException):  # it has just exited
            container.kill(signal="SIGINT" if sent == 1 else "SIGKILL")

    main = threading.current_thread() is threading.main_thread()
    with forward_stop_signals(send, enabled=main):
        yield


def _ensure_image(client: docker.DockerClient, image: ContainerImage,
                  log_line: Log) -> str:
    """The image's local name, `registry/repository@sha256:...`, pulled when missing."""
    repository, digest = docker.utils.parse_repository_tag(image.name)
    repository = docker.utils.parse_repository_tag(repository)[0]  # drop the tag: the digest pins
    name = f"{repository}@{digest}"
    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        pull_image(name, image.registry, client, log_line)
    except docker.errors.DockerException as exc:
        raise RunError(f"cannot look up image {name}: {exc}") from None
    return name


def run_in_container(request: dict[str, Any], manifest: Manifest, image: ContainerImage,
                     run_dir: Path, log: Path) -> dict[str, Any]:
    """Run `request` (see `fnhub.runner.build_request`) in the function's image; returns the
    runtime's answer, with the log's tail in the error of a failed run."""
    args, binds = command(request, manifest, run_dir)
    result_file = run_dir / "result.json"
    result_file.unlink(missing_ok=True)
    mounts = [Mount(str(b.target), str(b.host), type="bind", read_only=b.read_only)
              for b in binds]
    client = engine()
    try:
        with log.open("wb") as fh:
            def log_line(line: str) -> None:
                fh.write(line.encode() + b"\n")

            name = _ensure_image(client, image, log_line)
            try:
                container = client.containers.create(name, command=args, mounts=mounts)
            except docker.errors.DockerException as exc:
                raise RunError(f"cannot create a container of {name}: {exc}") from None
            try:
                with _stopped_on_signal(container):
                    container.start()
                    for chunk in container.logs(stream=True, follow=True):
                        fh.write(chunk)
                        fh.flush()  # the log is live, for whoever follows it
                    status = int(container.wait().get("StatusCode", -1))
                if status == 0 and result_file.is_file():
                    return _answer(container, result_file, binds, Path(request["output_dir"]))
            except docker.errors.DockerException as exc:
                raise RunError(f"running {name} failed: {exc}") from None
            finally:
                _remove(container)
    finally:
        client.close()
    answer = json.loads(result_file.read_text()) if result_file.is_file() else {}
    error = answer.get("error") or f"the container exited with {status}"
    return {"ok": False, "error": f"{error} (exit code {status}); the log ends:\n{_tail(log)}"}


def _remove(container: Container) -> None:
    try:
        with suppress(docker.errors.NotFound):
            container.remove(force=True)
    except docker.errors.DockerException as exc:
        raise RunError(f"could not remove container {container.short_id}: {exc}") from None


@dataclass(frozen=True)
class ContainerEnv(Env):
    """The function's published image, pinned by digest: it carries its own Python and
    requirements, so there is nothing to check here before it runs."""

    image: ContainerImage
    name: ClassVar[str] = "container"

    def check(self, manifest: Manifest) -> None:
        return None

    def run(self, request: dict[str, Any], manifest: Manifest, work_dir: Path,
            log: Path) -> Answer:
        return run_in_container(request, manifest, self.image, work_dir, log)
