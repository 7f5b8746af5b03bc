"""Safe inspection and extraction of packages (design §4).

Archives from elsewhere (uploads, downloads) are never trusted: every member is checked
before anything is written, sizes are counted as bytes are inflated, and extraction
happens in a temporary sibling folder that is renamed into place only when all is well.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from fnhub.core.errors import Conflict, InvalidInput, NotFound, UnsafePackage
from fnhub.core.packaging.digests import CHUNK as _CHUNK
from fnhub.core.packaging.rules import link_escape, name_problem, spelling_clash

DEFAULT_MAX_UNPACKED_SIZE = 512 * 1024 * 1024
DEFAULT_MAX_MEMBERS = 10_000
# Only tar headers (pax records, GNU long names) are read in pieces larger than _CHUNK.
_MAX_HEADER_READ = _CHUNK + tarfile.BLOCKSIZE
# Header, extended header and padding blocks a member may add to the inflated stream.
_MEMBER_OVERHEAD = 4 * tarfile.BLOCKSIZE
_MAX_END_PADDING = 1 << 20
_BAD_ARCHIVE = (tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_FORBIDDEN_TYPES = {
    tarfile.CHRTYPE: "character device",
    tarfile.BLKTYPE: "block device",
    tarfile.FIFOTYPE: "fifo",
}


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
    if problem := name_problem(raw):
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
    spellings: dict[str, str] = field(default_factory=dict)  # case-folded name -> name

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
            if problem := name_problem(info.linkname):
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
        if (earlier := spelling_clash(self.spellings, name)) is not None:
            raise UnsafePackage(f"{name}: differs from {earlier} only in letter case or Unicode "
                                "form, so one would replace the other on macOS or Windows")
        self.kinds[name] = kind
        self.folders.update("/".join(parts[:i]) for i in range(1, len(parts)))

    def check_links(self) -> None:
        for name, target in self.links.items():
            if problem := link_escape(name, target, self.links):
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
        tar = tarfile.TarFile(fileobj=stream, encoding="utf-8")  # type: ignore[arg-type]
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


def _make_folders(root: Path, rel: str) -> None:
    """Make root/rel and its missing parents 0755 less the umask, like the files get 0644/0755
    (mkdir(parents=True) would give the parents 0777 less the umask: group-writable under 002)."""
    path = root
    for part in rel.split("/") if rel else ():
        path /= part
        path.mkdir(mode=0o755, exist_ok=True)


def _extract(raw: BinaryIO, root: Path, max_size: int, max_members: int) -> None:
    links: list[tuple[str, str]] = []
    for member in _members(raw, max_size, max_members):
        info = member.info
        path = root / member.name
        if info.isdir():
            _make_folders(root, member.name)
            continue
        _make_folders(root, member.name.rpartition("/")[0])
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
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.unpack-", dir=dest.parent))
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

