"""The shared catalog helpers (catalog/_shared) reach every function as checked-in copies in its
`vendor/` folder: the copies never drift from their source, each package carries exactly the
copies it imports, needs nothing beyond its own requirements, and functions that vendor
different subsets load side by side in one process."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from catalog.vendoring import (
    CATALOG,
    SHARED,
    VENDOR,
    differences,
    expected,
    function_folders,
    needed_modules,
    sync,
)
from fnhub.core.manifest import load_manifest
from fnhub.core.packaging.pack import package_files

# The distribution that provides each top-level module a shared helper may import.
DISTRIBUTIONS = {"numpy": "numpy", "pandas": "pandas", "sklearn": "scikit-learn",
                 "skops": "skops", "scipy": "scipy", "matplotlib": "matplotlib"}


def test_every_vendored_copy_equals_its_source() -> None:
    """Run `python -m catalog.vendoring` after editing catalog/_shared when this fails."""
    assert differences() == []
    assert expected(), "no function vendors anything: the shared helpers went unused"


def test_the_drift_check_sees_a_changed_a_missing_and_an_unused_copy(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    for name in ("train", "clean-data", "model-server"):
        shutil.copytree(CATALOG / name, catalog / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    assert differences(catalog) == []

    tables = catalog / "train" / VENDOR / "tables.py"
    tables.write_text(tables.read_text().replace("has no rows", "is short of rows"))
    (catalog / "clean-data" / VENDOR / "tables.py").unlink()
    (catalog / "model-server" / VENDOR).mkdir()
    shutil.copy(SHARED / "models.py", catalog / "model-server" / VENDOR / "models.py")
    assert differences(catalog) == [
        "missing: clean-data/vendor/tables.py",
        "not imported by its function: model-server/vendor/models.py",
        "differs from catalog/_shared/tables.py: train/vendor/tables.py",
    ]

    sync(catalog)
    assert differences(catalog) == []
    assert not (catalog / "model-server" / VENDOR).exists()
    assert tables.read_bytes() == (SHARED / "tables.py").read_bytes()


def test_a_folder_importing_a_module_that_is_not_shared_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "catalog" / "odd"
    shutil.copytree(CATALOG / "load-dataset", folder, ignore=shutil.ignore_patterns("__pycache__"))
    code = folder / "load_dataset.py"
    code.write_text(code.read_text() + "\nfrom vendor.nowhere import thing  # noqa\n")
    with pytest.raises(ValueError, match=r"odd imports vendor\.nowhere, but .*nowhere\.py does "
                                         r"not exist"):
        needed_modules(folder)


@pytest.mark.parametrize("folder", function_folders(), ids=lambda p: p.name)
def test_each_package_carries_its_copies_and_requires_what_they_import(folder: Path) -> None:
    packed = set(package_files(folder))
    vendored = {p.relative_to(folder).as_posix() for p in expected() if p.parent.parent == folder}
    assert vendored <= packed
    requirements = {re.split(r"[<>=!~; \[]", r, maxsplit=1)[0].lower()
                    for r in load_manifest(folder).spec.requirements}
    for rel in sorted(vendored):
        for top in _third_party_imports(folder / rel):
            assert top != "fnhub", f"{rel} imports fnhub, which a function's venv does not hold"
            assert DISTRIBUTIONS.get(top, top) in requirements, (
                f"{folder.name}/{rel} imports {top}, which {folder.name}'s requirements lack")


def _third_party_imports(source: Path) -> set[str]:
    tree = ast.parse(source.read_text(encoding="utf-8"))
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree)
              if isinstance(n, ast.ImportFrom) and n.level == 0 and n.module}
    tops = {name.split(".")[0] for name in names}
    return {t for t in tops if t not in sys.stdlib_module_names and t != "__future__"}


def test_functions_vendoring_different_modules_load_in_one_process() -> None:
    """clean-data vendors only `tables`; train, loaded after it in the same interpreter (as
    `env="current"` runs do), still finds `vendor.training` in its own folder."""
    script = (
        "import sys\nfrom pathlib import Path\nfrom fnhub.runtime import load_callable\n"
        "for name, entry in [('clean-data', 'clean_data.py:clean_data'), "
        "('train', 'train.py:train'), ('evaluate', 'evaluate.py:evaluate')]:\n"
        "    load_callable(Path(sys.argv[1]) / name, entry)\n"
        "print(sorted(m for m in sys.modules if m.startswith('vendor')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(CATALOG)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(["vendor", "vendor.models", "vendor.tables",
                                       "vendor.training"])
