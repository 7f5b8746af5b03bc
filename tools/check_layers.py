"""Run import-linter's layer contracts (pyproject.toml) on the source tree as it will install.

import-linter finds a package through the import system and then walks its folder. With the
`package-dir` mapping (`fnhub` = client/, `fnhub.hub` = hub/) an editable install exposes no
single folder holding both, so this lays the tree out as a wheel would (in a temporary folder)
and points import-linter there. It works the same from a fresh clone, an editable install and a
plain one. `--plant MODULE:IMPORTED` adds a wrong-way import first (tests use it to show the
contracts fail)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Where each package of the distribution lives in the repository (pyproject's package-dir).
LAYOUT = {"": ROOT / "client", "hub": ROOT / "hub",
          "function_templates": ROOT / "function-templates"}


def lay_out(target: Path) -> Path:
    """Copy the Python files into `target/fnhub` as a wheel would install them."""
    pkg = target / "fnhub"
    for sub, source in LAYOUT.items():
        shutil.copytree(source, pkg / sub, dirs_exist_ok=True,
                        ignore=lambda _d, names: [n for n in names if n == "__pycache__" or (
                            "." in n and not n.endswith(".py"))])
    return pkg


def plant(pkg: Path, spec: str) -> None:
    module, imported = spec.split(":", 1)
    path = pkg.joinpath(*module.split(".")[1:])
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    path.write_text(path.read_text(encoding="utf-8") + f"\nimport {imported}  # planted\n",
                    encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plant", action="append", default=[], metavar="MODULE:IMPORTED")
    args = parser.parse_args(argv)
    lint = Path(sys.executable).with_name("lint-imports")
    with tempfile.TemporaryDirectory(prefix="fnhub-layers-") as tmp:
        pkg = lay_out(Path(tmp))
        for spec in args.plant:
            plant(pkg, spec)
        env = {**os.environ, "PYTHONPATH": tmp}
        return subprocess.run([str(lint), str(ROOT / "pyproject.toml"),
                               "--no-cache"], cwd=tmp, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
