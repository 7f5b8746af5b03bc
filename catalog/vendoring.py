"""Copy the shared catalog helpers (catalog/_shared) into the `vendor/` package of every
function folder that imports them; see catalog/_shared/__init__.py for why.

    python -m catalog.vendoring          # write the copies, drop the ones no longer imported
    python -m catalog.vendoring --check  # list what differs, exit 1 if anything does

Which modules a folder needs is read from its code (`from vendor.tables import ...`), plus the
shared modules those import in turn (`from .tables import ...`), so nothing is listed twice.
"""

from __future__ import annotations

import argparse
import ast
import shutil
import sys
from pathlib import Path

CATALOG = Path(__file__).resolve().parent
SHARED = CATALOG / "_shared"
VENDOR = "vendor"


def function_folders(catalog: Path = CATALOG) -> list[Path]:
    """The function folders (holding a function.yaml), as the catalog publisher finds them."""
    return sorted(p for p in catalog.iterdir() if (p / "function.yaml").is_file())


def _own_sources(folder: Path) -> list[Path]:
    """The folder's Python files, not its vendored copies nor caches."""
    return sorted(
        path
        for path in folder.rglob("*.py")
        if not {VENDOR, "__pycache__"} & set(path.relative_to(folder).parts[:-1])
    )


def _imported(source: Path, *, relative: bool) -> set[str]:
    """Shared module names `source` imports: `vendor.X` (function code) or `.X` (shared code)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), str(source))):
        if isinstance(node, ast.Import) and not relative:
            names |= {a.name.split(".")[1] for a in node.names if a.name.startswith(VENDOR + ".")}
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if relative:
                if node.level == 1 and module:
                    names.add(module.split(".")[0])
            elif node.level == 0 and module == VENDOR:
                names |= {a.name for a in node.names}
            elif node.level == 0 and module.startswith(VENDOR + "."):
                names.add(module.split(".")[1])
    return names


def needed_modules(folder: Path, shared: Path = SHARED) -> list[str]:
    """The shared modules `folder` imports, directly or through one another, sorted."""
    wanted = set().union(*(_imported(p, relative=False) for p in _own_sources(folder)))
    found: set[str] = set()
    while wanted - found:
        name = min(wanted - found)
        source = shared / f"{name}.py"
        if not source.is_file():
            raise ValueError(f"{folder.name} imports {VENDOR}.{name}, but {source} does not exist")
        found.add(name)
        wanted |= _imported(source, relative=True)
    return sorted(found)


def expected(catalog: Path = CATALOG, shared: Path = SHARED) -> dict[Path, bytes]:
    """Every vendored file there should be, with the bytes it should hold."""
    files: dict[Path, bytes] = {}
    for folder in function_folders(catalog):
        for module in needed_modules(folder, shared):
            name = f"{module}.py"
            files[folder / VENDOR / name] = (shared / name).read_bytes()
    return files


def present(catalog: Path = CATALOG) -> dict[Path, bytes]:
    """Every vendored file there is."""
    return {
        path: path.read_bytes()
        for folder in function_folders(catalog)
        for path in sorted((folder / VENDOR).glob("*"))
        if path.is_file()
    }


def differences(catalog: Path = CATALOG, shared: Path = SHARED) -> list[str]:
    """One line per vendored file that is missing, different from its source, or not needed."""
    want, have = expected(catalog, shared), present(catalog)
    lines = []
    for path in sorted(want.keys() | have.keys()):
        rel = path.relative_to(catalog).as_posix()
        if path not in have:
            lines.append(f"missing: {rel}")
        elif path not in want:
            lines.append(f"not imported by its function: {rel}")
        elif have[path] != want[path]:
            lines.append(f"differs from catalog/_shared/{path.name}: {rel}")
    return lines


def sync(catalog: Path = CATALOG, shared: Path = SHARED) -> list[str]:
    """Make every folder's `vendor/` hold exactly its copies; return what changed."""
    changes = differences(catalog, shared)
    want = expected(catalog, shared)
    for path in present(catalog).keys() - want.keys():
        path.unlink()
    for folder in function_folders(catalog):
        vendor = folder / VENDOR
        if vendor.is_dir() and not any(p for p in vendor.iterdir() if p.name != "__pycache__"):
            shutil.rmtree(vendor)
    for path, data in want.items():
        if not path.is_file() or path.read_bytes() != data:
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
    return changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m catalog.vendoring", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only list what differs")
    args = parser.parse_args(argv)
    lines = differences() if args.check else sync()
    for line in lines:
        print(line)
    return 1 if args.check and lines else 0


if __name__ == "__main__":
    sys.exit(main())
