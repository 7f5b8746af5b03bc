"""Deterministic packing and safe inspection/extraction of packages (design §4)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from fnhub.core.errors import Conflict, InvalidInput, ManifestError, NotFound, UnsafePackage
from fnhub.core.packaging import (
    DIGEST_PREFIX,
    HashingWriter,
    PackResult,
    check_archive,
    digest_file,
    digest_hex,
    pack,
    package_files,
    read_member,
    unpack,
)

MANIFEST = b"apiVersion: fnhub/v1\nkind: Function\nmetadata: {name: demo, version: 1.0.0}\n"


def write(path: Path, data: bytes = b"x", mode: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mode is not None:
        path.chmod(mode)
    return path


def make_function(root: Path) -> Path:
    write(root / "function.yaml", MANIFEST)
    write(root / "main.py", b"def run():\n    return 1\n")
    write(root / "lib" / "util.py", b"X = 1\n")
    write(root / "bin" / "tool.sh", b"#!/bin/sh\necho hi\n", mode=0o755)
    return root


def pack_bytes(folder: Path) -> tuple[bytes, PackResult]:
    buf = io.BytesIO()
    result = pack(folder, buf)
    return buf.getvalue(), result


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir())


# --------------------------------------------------------------------------- packing


def test_pack_twice_gives_identical_bytes_and_matching_digest(tmp_path: Path) -> None:
    fn = make_function(tmp_path / "fn")
    first, result = pack_bytes(fn)
    second, _ = pack_bytes(fn)
    assert first == second
    assert result == PackResult(DIGEST_PREFIX + hashlib.sha256(first).hexdigest(), len(first))

    out = tmp_path / "out" / "pkg.tar.gz"
    assert pack(fn, out) == result
    assert out.read_bytes() == first
    assert digest_file(out) == result.digest
    assert leftovers(out.parent) == ["pkg.tar.gz"]


def test_digest_ignores_mtimes_creation_order_and_permissions_but_not_exec_bit(
    tmp_path: Path,
) -> None:
    a = tmp_path / "a"
    write(a / "function.yaml", MANIFEST)
    write(a / "z.py", b"z")
    write(a / "m" / "y.py", b"y", mode=0o600)
    b = tmp_path / "b"
    write(b / "m" / "y.py", b"y", mode=0o664)
    write(b / "z.py", b"z")
    write(b / "function.yaml", MANIFEST)
    for i, path in enumerate(p for p in b.rglob("*") if p.is_file()):
        os.utime(path, (1_000_000 + i, 1_500_000_000 + i * 7777))
    assert pack_bytes(a)[1].digest == pack_bytes(b)[1].digest

    (b / "z.py").chmod(0o744)
    assert pack_bytes(a)[1].digest != pack_bytes(b)[1].digest
    (b / "z.py").chmod(0o644)
    write(b / "z.py", b"changed")
    assert pack_bytes(a)[1].digest != pack_bytes(b)[1].digest


def test_archive_headers_are_normalised(tmp_path: Path) -> None:
    fn = make_function(tmp_path / "fn")
    data, _ = pack_bytes(fn)
    assert data[:4] == b"\x1f\x8b\x08\x00"  # gzip, deflate, no flags (no file name)
    assert data[4:8] == b"\0\0\0\0"  # gzip mtime 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names) == ["bin/tool.sh", "function.yaml", "lib/util.py", "main.py"]
    for m in members:
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "")
    assert {m.name: m.mode for m in members}["bin/tool.sh"] == 0o755
    assert {m.name: m.mode for m in members}["main.py"] == 0o644


def test_fnhubignore_and_builtin_exclusions(tmp_path: Path) -> None:
    fn = make_function(tmp_path / "fn")
    write(fn / ".fnhubignore", b"data/\n*.log\n!keep.log\n/secret.txt\n")
    write(fn / "data" / "big.csv")
    write(fn / "debug.log")
    write(fn / "keep.log")
    write(fn / "secret.txt")
    write(fn / "lib" / "secret.txt")
    for excluded in (
        ".git/HEAD",
        "lib/.hg/x",
        ".svn/x",
        "__pycache__/m.cpython-311.pyc",
        "lib/x.pyc",
        ".pytest_cache/v",
        ".mypy_cache/v",
        ".ruff_cache/v",
        ".venv/bin/python",
        ".DS_Store",
        "lib/.DS_Store",
        "demo.egg-info/PKG-INFO",
    ):
        write(fn / excluded)
    assert package_files(fn) == [
        ".fnhubignore",
        "bin/tool.sh",
        "function.yaml",
        "keep.log",
        "lib/secret.txt",
        "lib/util.py",
        "main.py",
    ]
    data, _ = pack_bytes(fn)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        assert tar.getnames() == package_files(fn)


def test_manifest_is_required_and_cannot_be_ignored(tmp_path: Path) -> None:
    fn = tmp_path / "fn"
    write(fn / "main.py")
    with pytest.raises(ManifestError, match=r"no function\.yaml"):
        pack(fn, io.BytesIO())
    write(fn / "function.yaml", MANIFEST)
    write(fn / ".fnhubignore", b"*.yaml\n")
    with pytest.raises(ManifestError, match=r"excluded by \.fnhubignore"):
        package_files(fn)
    with pytest.raises(InvalidInput, match="not a folder"):
        package_files(tmp_path / "missing")


def test_symlinks_inside_are_kept_outside_refused(tmp_path: Path) -> None:
    fn = make_function(tmp_path / "fn")
    (fn / "link.py").symlink_to("lib/util.py")
    (fn / "libdir").symlink_to("lib")
    (fn / "lib" / "up.py").symlink_to("../main.py")
    assert {"link.py", "libdir", "lib/up.py"} <= set(package_files(fn))
    archive = tmp_path / "pkg.tar.gz"
    pack(fn, archive)
    dest = unpack(archive, tmp_path / "dest")
    assert os.readlink(dest / "link.py") == "lib/util.py"
    assert os.readlink(dest / "libdir") == "lib"
    assert (dest / "lib" / "up.py").read_bytes() == (fn / "main.py").read_bytes()


@pytest.mark.parametrize(
    ("links", "problem"),
    [
        ({"out": "../outside.txt"}, "points outside"),
        ({"abs": "/etc/passwd"}, "absolute target"),
        ({"lib/b": "..", "a": "lib/b/.."}, "points outside"),  # escapes only via another link
        ({"loop1": "loop2", "loop2": "loop1"}, "symlink loop"),
    ],
)
def test_pack_refuses_links_leaving_the_folder(
    tmp_path: Path, links: dict[str, str], problem: str
) -> None:
    fn = make_function(tmp_path / "fn")
    write(tmp_path / "outside.txt", b"secret")
    for name, target in links.items():
        (fn / name).symlink_to(target)
    out = tmp_path / "pkg.tar.gz"
    with pytest.raises(UnsafePackage, match=problem):
        pack(fn, out)
    assert not out.exists()
    assert leftovers(tmp_path) == ["fn", "outside.txt"]


def test_pack_refuses_special_files(tmp_path: Path) -> None:
    fn = make_function(tmp_path / "fn")
    os.mkfifo(fn / "pipe")
    with pytest.raises(UnsafePackage, match="pipe: not a regular file"):
        pack(fn, io.BytesIO())


def test_pack_into_the_folder_does_not_pack_itself(tmp_path: Path) -> None:
    fn = make_function(tmp_path / "fn")
    first = pack(fn, fn / "pkg.tar.gz")
    second = pack(fn, fn / "pkg.tar.gz")
    assert first == second
    assert "pkg.tar.gz" not in check_archive(fn / "pkg.tar.gz")


def test_hashing_writer_and_digest_helpers(tmp_path: Path) -> None:
    sink = io.BytesIO()
    writer = HashingWriter(sink)
    writer.write(b"hello ")
    writer.write(memoryview(b"world"))
    assert sink.getvalue() == b"hello world"
    assert writer.result() == PackResult("sha256:" + hashlib.sha256(b"hello world").hexdigest(), 11)
    only_hash = HashingWriter()
    only_hash.write(b"hello world")
    assert only_hash.digest == writer.digest

    hex_digest = "ab" * 32
    assert digest_hex("sha256:" + hex_digest.upper()) == hex_digest
    for bad in ("", "ab" * 32, "md5:" + "ab" * 32, "sha256:xyz", "sha256:" + "a" * 63):
        with pytest.raises(InvalidInput, match="invalid digest"):
            digest_hex(bad)
    with pytest.raises(NotFound):
        digest_file(tmp_path / "nope")


# --------------------------------------------------------------------------- reading


def test_unpack_round_trip_modes_and_conflict(tmp_path: Path) -> None:
    fn = make_function(tmp_path / "fn")
    archive = tmp_path / "pkg.tar.gz"
    pack(fn, archive)
    assert check_archive(archive) == package_files(fn)
    dest = unpack(archive, tmp_path / "deep" / "dest")
    assert dest == tmp_path / "deep" / "dest"
    for rel in package_files(fn):
        assert (dest / rel).read_bytes() == (fn / rel).read_bytes()
    assert (dest / "bin" / "tool.sh").stat().st_mode & 0o777 == 0o755
    assert (dest / "main.py").stat().st_mode & 0o777 == 0o644
    with pytest.raises(Conflict, match="already exists"):
        unpack(archive, dest)
    assert leftovers(tmp_path / "deep") == ["dest"]
    with pytest.raises(NotFound, match="no package"):
        unpack(tmp_path / "missing.tar.gz", tmp_path / "x")


def test_read_member(tmp_path: Path) -> None:
    fn = make_function(tmp_path / "fn")
    (fn / "alias.yaml").symlink_to("function.yaml")
    archive = tmp_path / "pkg.tar.gz"
    pack(fn, archive)
    assert read_member(archive, "function.yaml") == MANIFEST
    assert read_member(archive, "./lib/util.py") == b"X = 1\n"
    with open(archive, "rb") as fh:
        assert read_member(fh, "function.yaml") == MANIFEST
    with pytest.raises(NotFound, match=r"no README\.md in package"):
        read_member(archive, "README.md")
    with pytest.raises(UnsafePackage, match="more than the 10 allowed"):
        read_member(archive, "function.yaml", max_size=10)
    with pytest.raises(UnsafePackage, match="not a regular file"):
        read_member(archive, "alias.yaml")
    with pytest.raises(InvalidInput):
        read_member(archive, "../function.yaml")


Member = tuple[tarfile.TarInfo, bytes | None]


def info(
    name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, link: str = ""
) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.size = size
    member.linkname = link
    member.mode = 0o644
    return member


def file_member(name: str, data: bytes = b"data") -> Member:
    return info(name, size=len(data)), data


def build_tgz(path: Path, members: list[Member], *, trailer: bytes = b"") -> Path:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member, data in members:
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    path.write_bytes(gzip.compress(raw.getvalue() + trailer, mtime=0))
    return path


SAFE = file_member("function.yaml", MANIFEST)

UNSAFE_CASES: dict[str, tuple[list[Member], str]] = {
    "absolute": ([SAFE, file_member("/etc/evil")], "absolute path"),
    "dotdot": ([SAFE, file_member("../evil")], r"'\.\.' in path"),
    "nested-dotdot": ([SAFE, file_member("lib/../../evil")], r"'\.\.' in path"),
    "symlink-out": (
        [SAFE, (info("out", tarfile.SYMTYPE, link="../../etc/passwd"), None)],
        "points outside",
    ),
    "symlink-absolute": (
        [SAFE, (info("out", tarfile.SYMTYPE, link="/etc/passwd"), None)],
        "absolute target",
    ),
    "symlink-two-step": (
        [
            SAFE,
            (info("a", tarfile.SYMTYPE, link="lib/b/.."), None),
            (info("lib/b", tarfile.SYMTYPE, link=".."), None),
        ],
        "symlink a -> lib/b/..: points outside",
    ),
    "write-through-symlink": (
        [SAFE, (info("lib", tarfile.SYMTYPE, link="."), None), file_member("lib/x.py")],
        "parent lib is a symlink",
    ),
    "hardlink-out": (
        [SAFE, (info("h", tarfile.LNKTYPE, link="../../etc/passwd"), None)],
        "hardlink h leaves the package",
    ),
    "hardlink-absolute": (
        [SAFE, (info("h", tarfile.LNKTYPE, link="/etc/passwd"), None)],
        "hardlink h leaves the package",
    ),
    "hardlink-unknown": (
        [SAFE, (info("h", tarfile.LNKTYPE, link="nothing"), None)],
        "not an earlier file member",
    ),
    "char-device": ([SAFE, (info("tty", tarfile.CHRTYPE), None)], "character device"),
    "block-device": ([SAFE, (info("sda", tarfile.BLKTYPE), None)], "block device"),
    "fifo": ([SAFE, (info("pipe", tarfile.FIFOTYPE), None)], "fifo members are not allowed"),
    "symlink-root": ([SAFE, (info("./", tarfile.SYMTYPE, link="sub"), None)], "cannot be the root"),
    "duplicate": ([SAFE, file_member("a"), file_member("a")], "duplicate member"),
    "file-then-folder": ([SAFE, file_member("a"), file_member("a/b")], "parent a is a file"),
    "control-char": ([SAFE, file_member("bad\nname")], "control character"),
    "too-many": ([SAFE] + [file_member(f"f{i}") for i in range(5)], "more than 5 members"),
    # names no client could unpack (ENAMETOOLONG, or clashing on macOS and Windows)
    "component-256-bytes": ([SAFE, file_member("a" * 256)], "256 bytes long, more than the 255"),
    "component-256-utf8-bytes": ([SAFE, file_member("lib/" + "é" * 128)], "256 bytes long"),
    "path-4097-bytes": ([SAFE, file_member("/".join(["d" * 255] * 16) + "/x")],
                        "4097 bytes long, more than the 4096"),
    "symlink-target-too-long": ([SAFE, (info("l", tarfile.SYMTYPE, link="a" * 300), None)],
                                "300 bytes long"),
    "case-clash": ([SAFE, file_member("README"), file_member("readme")],
                   "readme: differs from README only in letter case"),
    "case-clash-folder": ([SAFE, file_member("Lib/a"), file_member("lib/b")],
                          "differs from Lib only in letter case"),
    "unicode-form-clash": ([SAFE, file_member("caf\u00e9"), file_member("cafe\u0301")],
                           "only in letter case or Unicode form"),
}


def test_names_at_the_filesystem_limits_unpack(tmp_path: Path) -> None:
    """255 bytes a component and 4096 a path are allowed (the refusals start one byte on)."""
    longest = "/".join(["d" * 255] * 15 + ["d" * 200, "x" * 55])
    assert len(longest.encode()) == 4096
    archive = build_tgz(tmp_path / "edge.tar.gz", [SAFE, file_member(longest)])
    assert longest in check_archive(archive)
    wide = build_tgz(tmp_path / "wide.tar.gz", [SAFE, file_member("lib/" + "é" * 127 + "e")])
    out = unpack(wide, tmp_path / "out")
    assert (out / "lib" / ("é" * 127 + "e")).read_bytes() == b"data"


def test_pack_refuses_names_that_clash_in_case(tmp_path: Path) -> None:
    folder = make_function(tmp_path / "fn")
    write(folder / "Data.csv")
    write(folder / "data.csv")
    with pytest.raises(UnsafePackage, match="only in letter case"):
        pack_bytes(folder)


@pytest.mark.parametrize("case", sorted(UNSAFE_CASES))
def test_unsafe_archives_are_refused_and_leave_nothing(tmp_path: Path, case: str) -> None:
    members, problem = UNSAFE_CASES[case]
    archive = build_tgz(tmp_path / "bad.tar.gz", members)
    with pytest.raises(UnsafePackage, match=problem):
        check_archive(archive, max_members=5)
    with pytest.raises(UnsafePackage, match=problem):
        unpack(archive, tmp_path / "out" / "dest", max_members=5)
    assert leftovers(tmp_path / "out") == []


def test_gzip_bomb_with_honest_headers_stops_before_inflating(tmp_path: Path) -> None:
    size = 64 << 20
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info("function.yaml", size=len(MANIFEST)), io.BytesIO(MANIFEST))
        tar.addfile(info("zeros.bin", size=size), io.BytesIO(bytes(size)))
    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(gzip.compress(raw.getvalue(), compresslevel=9))
    assert archive.stat().st_size < size // 500
    declared = "zeros.bin: archive expands to more than 1048576 bytes"  # refused by its header
    with pytest.raises(UnsafePackage, match=declared):
        check_archive(archive, max_size=1 << 20)
    with pytest.raises(UnsafePackage, match=declared):
        unpack(archive, tmp_path / "out" / "dest", max_size=1 << 20)
    assert leftovers(tmp_path / "out") == []
    assert check_archive(archive, max_size=size + 1024) == ["function.yaml", "zeros.bin"]


def test_gzip_bomb_hidden_after_the_end_of_the_tar_is_counted(tmp_path: Path) -> None:
    archive = build_tgz(tmp_path / "bomb.tar.gz", [SAFE], trailer=bytes(64 << 20))
    with pytest.raises(UnsafePackage, match="padding at the end"):
        check_archive(archive, max_size=1 << 20)
    with pytest.raises(UnsafePackage, match="padding at the end"):
        unpack(archive, tmp_path / "out" / "dest")
    assert leftovers(tmp_path / "out") == []


def test_lying_size_header_is_detected(tmp_path: Path) -> None:
    header = info("function.yaml", size=10).tobuf(tarfile.USTAR_FORMAT)
    body = b"A" * 2000
    body += bytes(-len(body) % tarfile.BLOCKSIZE)
    raw = header + body + bytes(2 * tarfile.BLOCKSIZE)
    archive = tmp_path / "liar.tar.gz"
    archive.write_bytes(gzip.compress(raw))
    with pytest.raises(UnsafePackage, match="size header may be wrong"):
        check_archive(archive)
    with pytest.raises(UnsafePackage, match="size header may be wrong"):
        unpack(archive, tmp_path / "out" / "dest")
    assert leftovers(tmp_path / "out") == []


def test_huge_extended_header_is_refused(tmp_path: Path) -> None:
    member = info("function.yaml", size=len(MANIFEST))
    member.pax_headers = {"comment": "x" * (2 << 20)}
    archive = build_tgz(tmp_path / "pax.tar.gz", [(member, MANIFEST)])
    with pytest.raises(UnsafePackage, match="header is larger than"):
        check_archive(archive)


def test_corrupt_archives(tmp_path: Path) -> None:
    good = build_tgz(tmp_path / "good.tar.gz", [SAFE, file_member("a.py", os.urandom(4096))])
    data = good.read_bytes()
    raw_tar = gzip.decompress(data)
    cases = {
        "empty": b"",
        "not gzip": b"PK\x03\x04 this is a zip" * 10,
        "plain tar": raw_tar,
        "truncated": data[: len(data) // 2],
        "bad crc": data[:-8] + bytes(b ^ 0xFF for b in data[-8:-4]) + data[-4:],
        "garbage tar in gzip": gzip.compress(os.urandom(2048)),
    }
    for label, blob in cases.items():
        path = tmp_path / f"{label}.tar.gz"
        path.write_bytes(blob)
        with pytest.raises(UnsafePackage, match=r"not a valid \.tar\.gz"):
            check_archive(path)
        with pytest.raises(UnsafePackage, match=r"not a valid \.tar\.gz"):
            unpack(path, tmp_path / "out" / label)
    assert leftovers(tmp_path / "out") == []


def test_failure_after_files_were_written_leaves_nothing(tmp_path: Path) -> None:
    """The CRC is only known at the very end, after every file was already extracted."""
    fn = make_function(tmp_path / "fn")
    data, _ = pack_bytes(fn)
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(data[:-8] + b"\0\0\0\0" + data[-4:])
    with pytest.raises(UnsafePackage, match="CRC"):
        unpack(broken, tmp_path / "out" / "dest")
    assert leftovers(tmp_path / "out") == []


def test_archives_made_by_other_tools_are_accepted(tmp_path: Path) -> None:
    """`tar czf pkg.tar.gz -C fn .` style: a './' root entry, './'-prefixed names, folders."""
    members: list[Member] = [
        (info("./", tarfile.DIRTYPE), None),
        (info("./lib", tarfile.DIRTYPE), None),
        file_member("./function.yaml", MANIFEST),
        file_member("./lib/util.py", b"X = 1\n"),
        (info("./lib/copy.py", tarfile.LNKTYPE, link="./lib/util.py"), None),
    ]
    archive = build_tgz(tmp_path / "gnu.tar.gz", members, trailer=bytes(10240))
    assert check_archive(archive) == ["lib", "function.yaml", "lib/util.py", "lib/copy.py"]
    dest = unpack(archive, tmp_path / "dest")
    assert (dest / "lib" / "copy.py").read_bytes() == b"X = 1\n"
