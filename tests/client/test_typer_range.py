"""The CLI works on the oldest typer pyproject.toml allows, not only on the newest (which CI
installs): the command walk runs again with that typer shadowing the installed one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.version import Version

from tests.helpers import ROOT

pytestmark = pytest.mark.slow


def _oldest_typer() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirement = next(Requirement(r) for r in project["dependencies"]
                       if Requirement(r).name == "typer")
    lowest = [s.version for s in requirement.specifier if s.operator == ">="]
    assert len(lowest) == 1 and any(s.operator == "<" for s in requirement.specifier), (
        f"typer needs a lower and an upper bound: {requirement}")
    return lowest[0]


def test_the_command_walk_passes_on_the_oldest_allowed_typer(tmp_path: Path) -> None:
    version = _oldest_typer()
    target = tmp_path / "typer"
    uv = Path(sys.executable).parent / "uv"  # a dependency of fnhub
    subprocess.run([str(uv), "pip", "install", "-q", "--no-deps", "--python", sys.executable,
                    "--target", str(target), f"typer=={version}"], check=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(ROOT)])}
    shown = subprocess.run([sys.executable, "-c", "import typer; print(typer.__version__)"],
                           env=env, capture_output=True, text=True, check=True)
    assert Version(shown.stdout.strip()) == Version(version)
    walk = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow",
         "-o", "addopts=--import-mode=importlib", "tests/client/test_cli_walk.py"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert walk.returncode == 0, walk.stdout[-5000:] + walk.stderr[-2000:]
    assert " passed" in walk.stdout and "skipped" not in walk.stdout
