"""The templates ship with fnhub: a wheel built from the project holds every template file
(dotfiles and dot-folders included), and `fnhub.templates` bakes from an installed copy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.templates.baking import files_of, promised_files

pytestmark = pytest.mark.slow
PIP_CACHE = Path(os.environ.get("PIP_CACHE_DIR") or Path.home() / ".cache" / "pip")  # not tmp
PACKAGE = "fnhub/function_templates/"


def test_a_wheel_ships_every_template_file_and_bakes_from_it(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for part in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / part, source / part)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for part in ("client", "hub", "function-templates", "catalog"):
        shutil.copytree(ROOT / part, source / part, ignore=ignore)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w",
         str(tmp_path / "dist"), str(source)],
        env={**os.environ, "PIP_CACHE_DIR": str(PIP_CACHE)}, capture_output=True, text=True,
        timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [wheel] = (tmp_path / "dist").glob("fnhub-*.whl")

    with zipfile.ZipFile(wheel) as archive:
        shipped = {n.removeprefix(PACKAGE) for n in archive.namelist() if n.startswith(PACKAGE)}
        archive.extractall(tmp_path / "site")
    assert shipped == files_of(source / "function-templates")
    assert "python-job/{{cookiecutter.project_slug}}/.github/workflows/ci.yml" in shipped

    script = ("import json, sys\nimport fnhub.templates as t\n"
              "p = t.new_project('python-job', output_dir=sys.argv[1])\n"
              "print(json.dumps({'module': t.__file__, 'root': str(t.builtin_root()), "
              "'project': str(p.path)}))\n")
    baked = subprocess.run([sys.executable, "-c", script, str(tmp_path / "out")],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120,
                           check=False, env={**os.environ, "PYTHONPATH": str(tmp_path / "site")})
    assert baked.returncode == 0, baked.stderr
    where = json.loads(baked.stdout)
    assert Path(where["module"]).is_relative_to(tmp_path / "site")
    assert Path(where["root"]).is_relative_to(tmp_path / "site")
    assert files_of(Path(where["project"])) == promised_files("python-job", {})

