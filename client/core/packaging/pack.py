"""Deterministic packages (design §4): same folder, same bytes, same digest."""

from __future__ import annotations

import functools
import gzip
import os
import stat
import tarfile
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from fnhub.core.errors import InvalidInput, ManifestError, UnsafePackage
from fnhub.core.files import atomic_output
from fnhub.core.packaging.digests import HashingWriter, PackResult
from fnhub.core.packaging.rules import link_escape, name_problem, spelling_clash

IGNORE_FILE = ".fnhubignore"
ALWAYS_EXCLUDED = (
    ".git/",
    ".hg/",
    ".svn/",
    "__pycache__/",
    "*.pyc",
    ".pytest_cache/",
    ".mypy_cache/",
    ".ruff_cache/",
    ".venv/",
    ".DS_Store",
    "*.egg-info/",
)

# Read without following a link or waiting on a fifo that replaced a file after the walk.
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)

# pathspec and the manifest models (YAML) load when a folder is packed: installing, which only
# unpacks and checks digests, imports this package without paying for them.
if TYPE_CHECKING:
    import pathspec


def _ignore_spec(root: Path) -> pathspec.GitIgnoreSpec | None:
    import pathspec

    path = root / IGNORE_FILE
    if not path.is_file():
        return None
    try:
        return pathspec.GitIgnoreSpec.from_lines(path.read_text(encoding="utf-8").splitlines())
    except ValueError as exc:  # UnicodeDecodeError, or a pattern pathspec cannot parse
        raise InvalidInput(f"{path}: {exc}") from None


@functools.cache
def _builtin_spec() -> pathspec.GitIgnoreSpec:
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(ALWAYS_EXCLUDED)


def _raise_walk_error(exc: OSError) -> None:
    raise InvalidInput(f"cannot read {exc.filename}: {exc.strerror}")


def package_files(folder: str | Path) -> list[str]:
    """The sorted POSIX relative paths (files and symlinks) that go into the package.

    Honours `.fnhubignore` (gitignore syntax) and always leaves out VCS folders and caches.
    Raises ManifestError without exactly one `function.yaml` or `featureset.yaml`,
    UnsafePackage for entries that cannot be packaged safely (links leaving the folder,
    devices, unportable names).
    """
    root = Path(folder)
    if not root.is_dir():
        raise InvalidInput(f"{root} is not a folder")
    from fnhub.core.items import manifest_file

    manifest = manifest_file(root)
    user_spec, builtin_spec = _ignore_spec(root), _builtin_spec()

    def excluded(rel: str) -> bool:
        return builtin_spec.match_file(rel) or bool(user_spec and user_spec.match_file(rel))

    entries: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=_raise_walk_error):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        kept = []
        for name in dirnames:
            rel = prefix + name
            if os.path.islink(os.path.join(dirpath, name)):
                # A link to a folder is stored as a link; it is never walked into.
                if not excluded(rel) and not excluded(rel + "/"):
                    entries.append(rel)
            elif not excluded(rel + "/"):
                kept.append(name)
        dirnames[:] = kept
        entries.extend(prefix + name for name in filenames if not excluded(prefix + name))

    if manifest not in entries:
        raise ManifestError(f"{manifest} in {root} is excluded by {IGNORE_FILE}")
    links: dict[str, str] = {}
    spellings: dict[str, str] = {}
    for rel in entries:
        if problem := name_problem(rel):
            raise UnsafePackage(
                f"{rel!r}: {problem}", hint=f"rename it or list it in {IGNORE_FILE}"
            )
        if (earlier := spelling_clash(spellings, rel)) is not None:
            raise UnsafePackage(
                f"{rel}: differs from {earlier} only in letter case or Unicode form",
                hint=f"rename one (they clash on macOS and Windows) or list it in {IGNORE_FILE}",
            )
        mode = os.lstat(root / rel).st_mode
        if stat.S_ISLNK(mode):
            links[rel] = os.readlink(root / rel)
        elif not stat.S_ISREG(mode):
            raise UnsafePackage(
                f"{rel}: not a regular file, folder or symlink",
                hint=f"remove it or list it in {IGNORE_FILE}",
            )
    for rel, target in links.items():
        if problem := link_escape(rel, target, links):
            raise UnsafePackage(
                f"symlink {rel} -> {target}: {problem}",
                hint="only relative links to files inside the function folder can be packaged",
            )
    return sorted(entries)


def _add_entry(tar: tarfile.TarFile, root: Path, rel: str) -> None:
    info = tarfile.TarInfo(rel)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    path = root / rel
    if os.path.islink(path):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(path)
        info.mode = 0o777
        tar.addfile(info)
        return
    try:
        fh = open(path, "rb", opener=lambda name, _: os.open(name, _READ_FLAGS))  # noqa: SIM115
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePackage(f"{rel}: not a regular file")
        info.size = st.st_size
        info.mode = 0o755 if st.st_mode & 0o111 else 0o644
        tar.addfile(info, fh)


def _write_package(root: Path, files: list[str], out: BinaryIO) -> PackResult:
    writer = HashingWriter(out)
    gz = gzip.GzipFile(filename="", mode="wb", fileobj=writer, mtime=0, compresslevel=9)  # type: ignore[arg-type]
    # PAX stores every non-ASCII name as UTF-8 in its own header, whatever tarfile's `encoding`
    with gz, tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in files:
            _add_entry(tar, root, rel)
    writer.flush()
    return writer.result()


def pack(folder: str | Path, out: str | Path | BinaryIO) -> PackResult:
    """Build the deterministic package of `folder` into `out` (a path or a binary stream)."""
    root = Path(folder)
    files = package_files(root)
    if not isinstance(out, (str, os.PathLike)):
        return _write_package(root, files, out)
    out_path = Path(out)
    with suppress(ValueError):  # writing the package inside the folder must not pack it
        inside = out_path.resolve().relative_to(root.resolve()).as_posix()
        files = [rel for rel in files if rel != inside]
    with atomic_output(out_path, 0o644) as fh:
        return _write_package(root, files, fh)

