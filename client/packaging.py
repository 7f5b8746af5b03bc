"""Deterministic function packages and their safe inspection and extraction (design §4).

A package is a `.tar.gz` whose bytes depend only on the relative paths, contents and
executable bits of the packaged files, so its sha256 digest identifies the function.
Archives from elsewhere (uploads, downloads) are never trusted: every member is checked
before anything is written, sizes are counted as bytes are inflated, and extraction
happens in a temporary sibling folder that is renamed into place only when all is well.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pathspec

from fnhub.errors import Conflict, InvalidInput, ManifestError, NotFound, UnsafePackage
from fnhub.manifest import MANIFEST_FILE

DIGEST_PREFIX = "sha256:"
DEFAULT_MAX_UNPACKED_SIZE = 512 * 1024 * 1024
DEFAULT_MAX_MEMBERS = 10_000
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

_CHUNK = 1 << 20
# Only tar headers (pax records, GNU long names) are read in pieces larger than _CHUNK.
_MAX_HEADER_READ = _CHUNK + tarfile.BLOCKSIZE
# Header, extended header and padding blocks a member may add to the inflated stream.
_MEMBER_OVERHEAD = 4 * tarfile.BLOCKSIZE
_MAX_END_PADDING = 1 << 20
_MAX_LINK_HOPS = 40
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_BAD_ARCHIVE = (tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_FORBIDDEN_TYPES = {
    tarfile.CHRTYPE: "character device",
    tarfile.BLKTYPE: "block device",
    tarfile.FIFOTYPE: "fifo",
}


@dataclass(frozen=True)
class PackResult:
    digest: str  # "sha256:<hex>"
    size: int


def digest_hex(digest: str) -> str:
    """The hex part of a `sha256:<hex>` digest, lowercased; InvalidInput when it is not one."""
    hex_part = digest[len(DIGEST_PREFIX) :].lower() if isinstance(digest, str) else ""
    if (
        not isinstance(digest, str)
        or not digest.startswith(DIGEST_PREFIX)
        or not _HEX64.match(hex_part)
    ):
        raise InvalidInput(f"invalid digest {digest!r}: expected sha256:<64 hex digits>")
    return hex_part


class HashingWriter:
    """A write-only file object that hashes (sha256) and counts what passes through it.

    `target` may be None to only compute the digest of a stream without storing it.
    """

    def __init__(self, target: BinaryIO | None = None) -> None:
        self._target = target
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._hash.update(data)
        written = memoryview(data).nbytes
        self.size += written
        if self._target is not None:
            self._target.write(data)
        return written

    def flush(self) -> None:
        if self._target is not None:
            self._target.flush()

    def writable(self) -> bool:
        return True

    @property
    def digest(self) -> str:
        return DIGEST_PREFIX + self._hash.hexdigest()

    def result(self) -> PackResult:
        return PackResult(digest=self.digest, size=self.size)


def digest_file(path: str | Path) -> str:
    """`sha256:<hex>` of a file, read in 1 MiB chunks."""
    hasher = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                hasher.update(chunk)
    except FileNotFoundError:
        raise NotFound(f"no file at {path}") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a folder, not a file") from None
    return DIGEST_PREFIX + hasher.hexdigest()


# --------------------------------------------------------------------------- packing


def _name_problem(name: str) -> str | None:
    """Why a member name cannot be carried portably, or None."""
    if "\\" in name:
        return "backslash in name"
    if any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in name):
        return "control character or undecodable byte in name"
    return None


def _link_escape(name: str, target: str, links: dict[str, str]) -> str | None:
    """Why symlink `name` -> `target` leaves the package root, or None when it stays inside.

    Resolves like realpath over the package's own symlinks, so `a -> sub/b/..` with
    `sub/b -> ..` is caught even though it looks harmless lexically.
    """
    if target.startswith("/"):
        return "absolute target"
    resolved = name.split("/")[:-1]
    todo = target.split("/")
    hops = 0
    while todo:
        part = todo.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return "points outside the package"
            resolved.pop()
            continue
        resolved.append(part)
        key = "/".join(resolved)
        if key in links:
            hops += 1
            if hops > _MAX_LINK_HOPS:
                return "symlink loop"
            next_target = links[key]
            if next_target.startswith("/"):
                return f"goes through {key}, which has an absolute target"
            resolved.pop()
            todo = next_target.split("/") + todo
    return None


def _ignore_spec(root: Path) -> pathspec.GitIgnoreSpec | None:
    path = root / IGNORE_FILE
    if not path.is_file():
        return None
    try:
        return pathspec.GitIgnoreSpec.from_lines(path.read_text(encoding="utf-8").splitlines())
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"{path}: {exc}") from None


_BUILTIN_SPEC = pathspec.GitIgnoreSpec.from_lines(ALWAYS_EXCLUDED)


def _raise_walk_error(exc: OSError) -> None:
    raise InvalidInput(f"cannot read {exc.filename}: {exc.strerror}")


def package_files(folder: str | Path) -> list[str]:
    """The sorted POSIX relative paths (files and symlinks) that go into the package.

    Honours `.fnhubignore` (gitignore syntax) and always leaves out VCS folders and caches.
    Raises ManifestError without a `function.yaml`, UnsafePackage for entries that cannot be
    packaged safely (links leaving the folder, devices, unportable names).
    """
    root = Path(folder)
    if not root.is_dir():
        raise InvalidInput(f"{root} is not a folder")
    manifest = root / MANIFEST_FILE
    if manifest.is_symlink() or not manifest.is_file():
        raise ManifestError(f"no {MANIFEST_FILE} (a regular file) in {root}")
    user_spec = _ignore_spec(root)

    def excluded(rel: str) -> bool:
        return _BUILTIN_SPEC.match_file(rel) or bool(user_spec and user_spec.match_file(rel))

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

    if MANIFEST_FILE not in entries:
        raise ManifestError(f"{MANIFEST_FILE} in {root} is excluded by {IGNORE_FILE}")
    links: dict[str, str] = {}
    for rel in entries:
        if problem := _name_problem(rel):
            raise UnsafePackage(
                f"{rel!r}: {problem}", hint=f"rename it or list it in {IGNORE_FILE}"
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
        if problem := _link_escape(rel, target, links):
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
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePackage(f"{rel}: not a regular file")
        info.size = st.st_size
        info.mode = 0o755 if st.st_mode & 0o111 else 0o644
        tar.addfile(info, fh)


def _write_package(root: Path, files: list[str], out: BinaryIO) -> PackResult:
    writer = HashingWriter(out)
    gz = gzip.GzipFile(filename="", mode="wb", fileobj=writer, mtime=0, compresslevel=9)  # type: ignore[arg-type]
    with gz, tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
        for rel in files:
            _add_entry(tar, root, rel)
    writer.flush()
    return writer.result()


@contextmanager
def _atomic_output(path: Path) -> Iterator[BinaryIO]:
    """A file object whose content appears at `path` only once it is complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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
    with _atomic_output(out_path) as fh:
        return _write_package(root, files, fh)


# --------------------------------------------------------------------------- reading


@contextmanager
def _as_unsafe() -> Iterator[None]:
    """Report a broken archive as UnsafePackage instead of tarfile/gzip internals."""
    try:
        yield
    except _BAD_ARCHIVE as exc:
        raise UnsafePackage(f"not a valid .tar.gz: {exc or type(exc).__name__}") from None


class _Inflated:
    """The inflated bytes of a .tar.gz, read forward only and counted against a limit.

    Counting here (not trusting tar headers or the gzip size field) is what stops a
    gzip bomb whatever its headers claim.
    """

    def __init__(self, raw: BinaryIO, limit: int, max_size: int) -> None:
        self._gz = gzip.GzipFile(fileobj=raw, mode="rb")
        self._limit = limit
        self._max_size = max_size
        self.pos = 0
        self.last = b""

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > _MAX_HEADER_READ:
            raise UnsafePackage(f"a member header is larger than {_CHUNK} bytes")
        data = self._gz.read(size)
        self.pos += len(data)
        if self.pos > self._limit:
            raise UnsafePackage(f"archive expands to more than {self._max_size} bytes")
        self.last = data
        return data

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence != os.SEEK_SET or offset < self.pos:
            raise UnsafePackage("archive cannot be read front to back")
        while self.pos < offset and self.read(min(_CHUNK, offset - self.pos)):
            pass
        return self.pos

    def check_end(self, end: int) -> None:
        """After the last member only zero padding may follow; reading it also checks the CRC."""
        pending = self.pos - end
        if pending < 0 or pending > len(self.last):
            raise UnsafePackage("archive cannot be read front to back")
        if self.last[len(self.last) - pending :].count(0) != pending:
            raise UnsafePackage(
                "unexpected data after the last member (a member's size header may be wrong)"
            )
        padding = pending
        while chunk := self.read(_CHUNK):
            padding += len(chunk)
            if chunk.count(0) != len(chunk):
                raise UnsafePackage("unexpected data after the end of the archive")
            if padding > _MAX_END_PADDING:
                raise UnsafePackage(f"more than {_MAX_END_PADDING} bytes of padding at the end")


def _member_name(raw: str, what: str = "member") -> str:
    """A member name as a clean relative POSIX path ('' for the root folder itself)."""
    if not raw:
        raise UnsafePackage(f"{what} with an empty name")
    if raw.startswith("/"):
        raise UnsafePackage(f"{what} {raw!r}: absolute path")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePackage(f"{what} {raw!r}: '..' in path")
    if problem := _name_problem(raw):
        raise UnsafePackage(f"{what} {raw!r}: {problem}")
    return "/".join(parts)


@dataclass
class _Guard:
    """Checks each member against the limits and the members seen before it."""

    max_size: int
    max_members: int
    members: int = 0
    total: int = 0
    kinds: dict[str, str] = field(default_factory=dict)
    folders: set[str] = field(default_factory=set)
    links: dict[str, str] = field(default_factory=dict)

    def admit(self, info: tarfile.TarInfo) -> str:
        self.members += 1
        if self.members > self.max_members:
            raise UnsafePackage(f"archive has more than {self.max_members} members")
        name = _member_name(info.name)
        if info.isdir():
            kind = "folder"
        elif info.isreg():
            kind = "file"
            self.total += info.size
            if self.total > self.max_size:
                raise UnsafePackage(f"{name}: archive expands to more than {self.max_size} bytes")
        elif info.issym():
            kind = "symlink"
            if not info.linkname:
                raise UnsafePackage(f"symlink {name}: empty target")
            if info.linkname.startswith("/"):
                raise UnsafePackage(f"symlink {name} -> {info.linkname}: absolute target")
            if problem := _name_problem(info.linkname):
                raise UnsafePackage(f"symlink {name} -> {info.linkname!r}: {problem}")
        elif info.islnk():
            kind = "hardlink"
            try:
                target = _member_name(info.linkname, "hardlink target")
            except UnsafePackage as exc:
                raise UnsafePackage(f"hardlink {name} leaves the package: {exc}") from None
            if self.kinds.get(target) not in ("file", "hardlink"):
                raise UnsafePackage(
                    f"hardlink {name} -> {info.linkname}: target is not an earlier file member"
                )
        elif info.type in _FORBIDDEN_TYPES:
            raise UnsafePackage(f"{name}: {_FORBIDDEN_TYPES[info.type]} members are not allowed")
        else:
            raise UnsafePackage(f"{name}: unsupported member type {info.type!r}")
        if not name:
            if kind != "folder":
                raise UnsafePackage(f"member {info.name!r}: a {kind} cannot be the root")
            return name
        self._place(name, kind)
        if kind == "symlink":
            self.links[name] = info.linkname
        return name

    def _place(self, name: str, kind: str) -> None:
        parts = name.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            seen = self.kinds.get(parent, "folder")
            if seen != "folder":
                raise UnsafePackage(f"{name}: parent {parent} is a {seen}, not a folder")
        seen = self.kinds.get(name) or ("folder" if name in self.folders else None)
        if seen is not None and not (seen == kind == "folder"):
            raise UnsafePackage(f"{name}: duplicate member (a {seen} and a {kind})")
        self.kinds[name] = kind
        self.folders.update("/".join(parts[:i]) for i in range(1, len(parts)))

    def check_links(self) -> None:
        for name, target in self.links.items():
            if problem := _link_escape(name, target, self.links):
                raise UnsafePackage(f"symlink {name} -> {target}: {problem}")


@dataclass(frozen=True)
class _Member:
    name: str
    info: tarfile.TarInfo
    tar: tarfile.TarFile

    def chunks(self) -> Iterator[bytes]:
        with _as_unsafe():
            reader = self.tar.extractfile(self.info)
            if reader is None:
                return
            while chunk := reader.read(_CHUNK):
                yield chunk


def _members(raw: BinaryIO, max_size: int, max_members: int) -> Iterator[_Member]:
    """Yield each checked member in archive order; once exhausted, the whole archive is valid."""
    limit = max_size + max_members * _MEMBER_OVERHEAD + _MAX_END_PADDING
    guard = _Guard(max_size, max_members)
    with _as_unsafe():
        stream = _Inflated(raw, limit, max_size)
        tar = tarfile.TarFile(fileobj=stream, mode="r", encoding="utf-8")  # type: ignore[arg-type]
    while True:
        with _as_unsafe():
            info = tar.next()
        if info is None:
            break
        name = guard.admit(info)
        if name:
            yield _Member(name, info, tar)
    guard.check_links()
    with _as_unsafe():
        stream.check_end(tar.offset)


@contextmanager
def _open_archive(archive: str | Path | BinaryIO) -> Iterator[BinaryIO]:
    if not isinstance(archive, (str, os.PathLike)):
        yield archive
        return
    try:
        fh = open(archive, "rb")  # noqa: SIM115 - closed below, after the caller is done
    except FileNotFoundError:
        raise NotFound(f"no package at {archive}") from None
    except IsADirectoryError:
        raise InvalidInput(f"{archive} is a folder, not a package") from None
    with fh:
        yield fh


def check_archive(
    archive: str | Path | BinaryIO,
    *,
    max_size: int = DEFAULT_MAX_UNPACKED_SIZE,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> list[str]:
    """Scan a package without extracting it; return its member names or raise UnsafePackage."""
    with _open_archive(archive) as raw:
        return [member.name for member in _members(raw, max_size, max_members)]


def read_member(archive: str | Path | BinaryIO, name: str, *, max_size: int = 1 << 20) -> bytes:
    """The content of one regular file in a package, e.g. its `function.yaml`."""
    try:
        wanted = _member_name(name)
    except UnsafePackage as exc:
        raise InvalidInput(str(exc)) from None
    with _open_archive(archive) as raw:
        for member in _members(raw, DEFAULT_MAX_UNPACKED_SIZE, DEFAULT_MAX_MEMBERS):
            if member.name != wanted:
                continue
            if not member.info.isreg():
                raise UnsafePackage(f"{wanted} in the package is not a regular file")
            if member.info.size > max_size:
                raise UnsafePackage(
                    f"{wanted} in the package is {member.info.size} bytes, "
                    f"more than the {max_size} allowed"
                )
            return b"".join(member.chunks())
    where = f" {archive}" if isinstance(archive, (str, os.PathLike)) else ""
    raise NotFound(f"no {wanted} in package{where}")


def _extract(raw: BinaryIO, root: Path, max_size: int, max_members: int) -> None:
    links: list[tuple[str, str]] = []
    for member in _members(raw, max_size, max_members):
        info = member.info
        path = root / member.name
        if info.isdir():
            path.mkdir(mode=0o755, parents=True, exist_ok=True)
            continue
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if info.issym():
            links.append((member.name, info.linkname))  # made last, once all checks passed
        elif info.islnk():
            os.link(root / _member_name(info.linkname), path)
        else:
            mode = 0o755 if info.mode & 0o111 else 0o644
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW, mode)
            with os.fdopen(fd, "wb") as fh:
                for chunk in member.chunks():
                    fh.write(chunk)
    for name, target in links:
        os.symlink(target, root / name)


def unpack(
    archive: str | Path | BinaryIO,
    dest: str | Path,
    *,
    max_size: int = DEFAULT_MAX_UNPACKED_SIZE,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> Path:
    """Safely extract a package to `dest` (which must not exist); all or nothing."""
    dest = Path(dest)
    if dest.exists() or dest.is_symlink():
        raise Conflict(f"{dest} already exists")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".unpack", dir=dest.parent))
    try:
        with _open_archive(archive) as raw:
            _extract(raw, tmp, max_size, max_members)
        tmp.chmod(0o755)
        try:
            os.rename(tmp, dest)
        except OSError:
            if dest.exists():
                raise Conflict(f"{dest} already exists") from None
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest
