"""`hub run --env container`: a function published with its image runs from that image, pulled
by digest through Podman's Docker-compatible service, with its outputs read back as in the
other environments.

No base image can be pulled here, so the module builds one: a rootfs holding this test
interpreter's installation (the standard library without its tests and site-packages, shared
libraries stripped when `strip` is there) and the system libraries `ldd` names for it, with
`python` on PATH. The function needs no requirements, so the image needs no pip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import docker
import pytest

from tests.helpers import CLI, HUB_BIN, HubProcess, start_hub
from tests.oci.conftest import require_tool

pytestmark = pytest.mark.slow

BASE_IMAGE = f"localhost/fnhub-test-python:{sys.version_info[0]}.{sys.version_info[1]}"
SKIPPED = {"site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3",
           "pydoc_data", "__pycache__"}
# extension modules whose system libraries the runtime never needs (TLS, databases, terminals)
SKIPPED_MODULES = ("_ssl", "_hashlib", "_sqlite3", "_tkinter", "_curses", "_curses_panel",
                   "readline", "nis", "_dbm", "_gdbm")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    process = start_hub(tmp_path_factory.mktemp("hub") / "data")
    yield process
    process.stop()


def _shared_libraries(binaries: list[Path]) -> set[str]:
    out = subprocess.run([require_tool("ldd"), *map(str, binaries)], capture_output=True,
                         text=True, check=False).stdout
    return set(re.findall(r"(/\S+) \(0x", out))


def _python_rootfs(path: Path, work: Path) -> None:
    """A tar of this interpreter and what it loads, at the paths it has here."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    executable = Path(os.path.realpath(Path(sys.base_prefix) / "bin" / f"python{version}"))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    modules = [m for m in (stdlib / "lib-dynload").glob("*.so")
               if m.name.split(".")[0] not in SKIPPED_MODULES]
    strip = shutil.which("strip")

    def add(tar: tarfile.TarFile, source: Path, name: str) -> None:
        if strip and (source.suffix == ".so" or ".so." in source.name):
            copy = work / source.name
            shutil.copyfile(source, copy)
            subprocess.run([strip, "--strip-unneeded", str(copy)], check=True)
            info = tar.gettarinfo(str(copy), arcname=name)
            info.mode = 0o755
            with copy.open("rb") as fh:
                tar.addfile(info, fh)
            return
        tar.add(source, arcname=name)

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        """The standard library's sources: its extension modules are added above."""
        parts = Path(info.name).parts
        if info.name.endswith(".so") or any(p in SKIPPED or p.startswith("config-")
                                             for p in parts):
            return None
        return info

    with tarfile.open(path, "w") as tar:
        add(tar, executable, str(executable).lstrip("/"))
        for library in _shared_libraries([executable, *modules]):
            add(tar, Path(os.path.realpath(library)), library.lstrip("/"))
        for module in modules:
            add(tar, module, str(module).lstrip("/"))
        tar.add(stdlib, arcname=str(stdlib).lstrip("/"), filter=keep)
        link = tarfile.TarInfo("usr/local/bin/python")
        link.type, link.linkname = tarfile.SYMTYPE, str(executable)
        tar.addfile(link)
        tmp = tarfile.TarInfo("tmp")
        tmp.type, tmp.mode = tarfile.DIRTYPE, 0o1777
        tar.addfile(tmp)


@pytest.fixture(scope="module")
def python_image(docker_host: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local base image with this Python (no pull: Podman uses a present local image)."""
    context = tmp_path_factory.mktemp("python-image")
    work = tmp_path_factory.mktemp("stripped")
    _python_rootfs(context / "rootfs.tar", work)
    (context / "Dockerfile").write_text("FROM scratch\nADD rootfs.tar /\n")
    engine = docker.DockerClient(base_url=docker_host)
    engine.images.build(path=str(context), tag=BASE_IMAGE, rm=True)
    yield BASE_IMAGE
    engine.images.remove(BASE_IMAGE, force=True)


COUNT = '''\
import os
import tempfile
import time
from pathlib import Path


def count(table: Path, word: str, repeat: int = 1, wait: float = 0.0) -> dict:
    if not word:
        raise ValueError("word must not be empty")
    print(f"counting {word!r} in {table}", flush=True)
    time.sleep(wait)
    lines = table.read_text().splitlines()
    hits = sum(line.count(word) for line in lines) * repeat
    report = Path(os.environ["FNHUB_OUTPUT_DIR"]) / "report.txt"
    report.write_text(f"{word}: {hits}\\n")
    head = Path(tempfile.mkdtemp()) / "head.csv"  # outside the output folder: copied out
    head.write_text("\\n".join(lines[:2]) + "\\n")
    return {"hits": hits, "report": report, "head": head}
'''


def _count_function(root: Path, base: str) -> Path:
    folder = root / "count"
    folder.mkdir(parents=True)
    (folder / "count.py").write_text(COUNT)
    (folder / "function.yaml").write_text(f"""\
apiVersion: fnhub/v1
kind: Function
metadata: {{name: count, namespace: carol, version: 1.0.0, description: Count a word}}
spec:
  entrypoint: count.py:count
  inputs:
    - {{name: table, type: dataset}}
    - {{name: word, type: str}}
    - {{name: repeat, type: int, default: 1}}
    - {{name: wait, type: float, default: 0.0}}
  outputs:
    - {{name: hits, type: int}}
    - {{name: report, type: file}}
    - {{name: head, type: dataset}}
  image: {{base: "{base}"}}
""")
    return folder


@pytest.fixture(scope="module")
def published(carol: CLI, python_image: str, tmp_path_factory: pytest.TempPathFactory
              ) -> dict[str, str]:
    """carol/count@1.0.0 published with its image; returns the image's ref and digest."""
    folder = _count_function(tmp_path_factory.mktemp("count"), python_image)
    image: dict[str, str] = carol.json("publish", str(folder), "--image")["image"]
    return image


def test_run_in_the_published_image_pulled_by_digest(
        hub: HubProcess, carol: CLI, docker_host: str, published: dict[str, str],
        tmp_path: Path) -> None:
    image = published
    engine = docker.DockerClient(base_url=docker_host)
    engine.images.remove(engine.images.get(image["ref"]).id, force=True)
    pinned = f"{urlsplit(hub.url).netloc}/carol/count@{image['digest']}"
    with pytest.raises(docker.errors.ImageNotFound):
        engine.images.get(pinned)

    table = tmp_path / "words.csv"
    table.write_text("line\nfn hub fn\nhub\nfn\n")
    out = tmp_path / "run"
    before = {c.id for c in engine.containers.list(all=True)}
    result = carol.json("run", "hub://carol/count:1.0.0", "--env", "container", "-i",
                        f"table={table}", "-p", "word=fn", "-p", "repeat=2", "--out", str(out))

    assert result["outputs"]["hits"] == 6
    report, head = Path(result["outputs"]["report"]), Path(result["outputs"]["head"])
    assert report == out / "outputs" / "report.txt" and report.read_text() == "fn: 6\n"
    assert head == out / "outputs" / "head" / "head.csv"
    assert head.read_text() == "line\nfn hub fn\n"
    record = json.loads((out / "run.json").read_text())
    assert record["env"] == "container" and record["status"] == "succeeded"
    assert record["outputs"] == result["outputs"]
    # the function ran in the container: the input at its mount, its output in the run's log
    assert "counting 'fn' in /fnhub/inputs/table/words.csv" in (out / "log.txt").read_text()
    assert engine.images.get(pinned).id  # pulled by digest
    assert {c.id for c in engine.containers.list(all=True)} == before  # removed


def test_a_failing_function_shows_its_error_and_log(carol: CLI, published: dict[str, str],
                                                   tmp_path: Path) -> None:
    table = tmp_path / "words.csv"
    table.write_text("fn\n")
    proc = carol("run", "hub://carol/count:1.0.0", "--env", "container", "-i",
                 f"table={table}", "-p", "word=")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # the error, the exit code, and the log's tail: the traceback from inside the image
    assert proc.stderr.startswith("error: count failed: ValueError: word must not be empty "
                                  "(exit code 1); the log ends:\n"), proc.stderr
    assert 'File "/opt/fnhub/function/count.py"' in proc.stderr
    record = json.loads(next((carol.root / "home" / "runs").glob("*/run.json")).read_text())
    assert record["status"] == "failed" and record["env"] == "container"


def test_a_local_folder_without_an_image_is_refused(carol: CLI, tmp_path: Path) -> None:
    folder = _count_function(tmp_path, "python:3.11-slim")
    table = tmp_path / "words.csv"
    table.write_text("fn\n")
    carol.fails("run", str(folder), "--env", "container", "-i", f"table={table}",
                "-p", "word=fn", match="records no published image")


def test_ctrl_c_stops_the_container_and_reports_back(carol: CLI, docker_host: str,
                                                    published: dict[str, str],
                                                    tmp_path: Path) -> None:
    table = tmp_path / "words.csv"
    table.write_text("fn\n")
    out = tmp_path / "run"
    engine = docker.DockerClient(base_url=docker_host)
    before = {c.id for c in engine.containers.list(all=True)}
    proc = subprocess.Popen(
        [HUB_BIN, "run", "hub://carol/count:1.0.0", "--env", "container", "-i",
         f"table={table}", "-p", "word=fn", "-p", "wait=120", "--out", str(out)],
        env=carol.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while "counting" not in _read(out / "log.txt"):  # the function is in its sleep
            assert proc.poll() is None and time.monotonic() < deadline, _read(out / "log.txt")
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stderr
    assert stderr.startswith("error: count failed: KeyboardInterrupt"), stderr
    assert json.loads((out / "run.json").read_text())["status"] == "failed"
    assert {c.id for c in engine.containers.list(all=True)} == before  # removed


def _read(path: Path) -> str:
    return path.read_text() if path.is_file() else ""
