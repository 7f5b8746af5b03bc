"""The catalog ships in the distribution: a hub installed from the built wheel (not editable,
into a venv of its own) seeds it with `hub serve --seed-catalog` from any folder, and
FNHUB_SERVER_CATALOG_DIR still overrides it. Building that wheel prints no setuptools
warnings."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import ENV_VARS, ROOT, free_port, write_function

pytestmark = pytest.mark.slow
_SKIP = shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.pyc", ".pytest_cache",
                               ".ruff_cache", ".fnhub", "build", "*.egg-info", "node_modules")


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def _serve(venv: Path, cwd: Path, data: Path, env: dict[str, str]) -> list[str]:
    """Start the installed hub with --seed-catalog, return the seeded names, stop it."""
    port = free_port()
    log = data.parent / f"{data.name}.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([str(venv / "bin" / "hub"), "serve", "--seed-catalog", "--port",
                                 str(port), "--data-dir", str(data)], cwd=cwd, env=env,
                                stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/functions?limit=100",
                                   timeout=2)
                if answer.status_code == 200:
                    return sorted(i["name"] for i in answer.json()["items"])
            except httpx.TransportError:
                time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_wheel_installed_hub_seeds_its_catalog_from_any_folder(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy: building writes build/ and *.egg-info into the tree
    shutil.copytree(ROOT, source, ignore=_SKIP)
    venv, dist = tmp_path / "venv", tmp_path / "dist"
    uv = str(Path(sys.executable).parent / "uv")
    build = subprocess.run([uv, "build", "--wheel", "-o", str(dist), str(source)],
                           capture_output=True, text=True, timeout=900, check=False)
    assert build.returncode == 0, build.stderr[-3000:]
    noise = [line for line in (build.stdout + build.stderr).splitlines()
             if "warning" in line.lower() and "byte-compiling is disabled" not in line]
    assert noise == []  # setup is quiet: no deprecations, no "absent from packages" essays
    wheel = next(dist.glob("fnhub-*.whl"))
    subprocess.run([uv, "venv", "-q", str(venv), "--python", sys.executable], check=True)
    subprocess.run([uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
                    f"fnhub[server] @ {wheel.as_uri()}"], check=True, timeout=900)
    site = subprocess.run([str(venv / "bin" / "python"), "-c",
                           "import fnhub.hub, pathlib; print(pathlib.Path(fnhub.hub.__file__)"
                           ".parent)"], capture_output=True, text=True, check=True)
    installed = Path(site.stdout.strip())
    assert installed.is_relative_to(venv)  # the wheel's copy, not the repository
    assert _files(installed / "catalog") == _files(ROOT / "catalog")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    expected = sorted(p.name for p in (ROOT / "catalog").iterdir()
                      if (p / "function.yaml").is_file() or (p / "featureset.yaml").is_file())
    assert _serve(venv, elsewhere, tmp_path / "data", env) == expected

    own = tmp_path / "own-catalog"
    write_function(own / "scale", name="scale", namespace="library", version="1.0.0")
    assert _serve(venv, elsewhere, tmp_path / "data2",
                  {**env, "FNHUB_SERVER_CATALOG_DIR": str(own)}) == ["scale"]
