"""Tests that pin each guard of the unpacker (issue #13 item 6): every one fails when the check
it names is removed or weakened, which mutation testing showed no earlier test noticed."""

from __future__ import annotations

import gzip
import importlib
import io
import os
import tarfile
import tempfile
from pathlib import Path

import pytest

from fnhub.core.errors import Conflict, UnsafePackage
from fnhub.core.packaging import check_archive, read_member, unpack
from tests.core.test_packaging import (
    MANIFEST,
    SAFE,
    Member,
    build_tgz,
    file_member,
    info,
    leftovers,
)

# the package re-exports the function `unpack` under the module's name
unpack_module = importlib.import_module("fnhub.core.packaging.unpack")
MiB = 1 << 20


def _refused(archive: Path, message: str, tmp_path: Path, **limits: int) -> None:
    """Both the scan and the extraction refuse `archive` with exactly `message`, leaving nothing."""
    for run in (lambda: check_archive(archive, **limits),
                lambda: unpack(archive, tmp_path / "out" / "dest", **limits)):
        with pytest.raises(UnsafePackage) as caught:
            run()
        assert caught.value.message == message
    assert leftovers(tmp_path / "out") == []


def test_the_inflated_byte_counter_stops_headers_that_inflate_past_the_limit(
    tmp_path: Path,
) -> None:
    """Extended headers are not members' data, so only the inflated-byte counter sees them."""
    members: list[Member] = [SAFE]
    for i in range(2):
        member, data = file_member(f"f{i}", b"x")
        member.pax_headers = {"comment": "z" * (900 * 1024)}
        members.append((member, data))
    archive = build_tgz(tmp_path / "pax-bomb.tar.gz", members)
    assert archive.stat().st_size < 32 * 1024
    # limit = 1024 + 5 members x 2048 + 1 MiB of end padding; the headers inflate to ~1.8 MiB
    _refused(archive, "archive expands to more than 1024 bytes", tmp_path,
             max_size=1024, max_members=5)


def test_the_size_limit_counts_all_members_together(tmp_path: Path) -> None:
    members = [SAFE, file_member("a", b"a" * 40), file_member("b", b"b" * 40)]
    limit = len(MANIFEST) + 80
    assert check_archive(build_tgz(tmp_path / "at.tar.gz", members), max_size=limit) == [
        "function.yaml", "a", "b"]  # exactly at the limit: accepted
    over = build_tgz(tmp_path / "over.tar.gz", [*members, file_member("c", b"c")])
    _refused(over, f"c: archive expands to more than {limit} bytes", tmp_path, max_size=limit)


def test_the_member_limit_boundary(tmp_path: Path) -> None:
    members = [SAFE] + [file_member(f"f{i}") for i in range(4)]
    assert len(check_archive(build_tgz(tmp_path / "five.tar.gz", members), max_members=5)) == 5
    six = build_tgz(tmp_path / "six.tar.gz", [*members, file_member("f4")])
    _refused(six, "archive has more than 5 members", tmp_path, max_members=5)


def test_production_limits_are_the_documented_values() -> None:
    assert 512 * MiB == unpack_module.DEFAULT_MAX_UNPACKED_SIZE
    assert unpack_module.DEFAULT_MAX_MEMBERS == 10_000
    assert MiB == unpack_module._MAX_END_PADDING
    assert unpack_module._MEMBER_OVERHEAD == 4 * tarfile.BLOCKSIZE


def _header_only(path: Path, size: int) -> Path:
    """One member whose header claims `size` bytes, with no data behind it."""
    raw = info("function.yaml", size=size).tobuf(tarfile.USTAR_FORMAT) + bytes(1024)
    path.write_bytes(gzip.compress(raw))
    return path


def test_the_default_size_limit_boundary(tmp_path: Path) -> None:
    """A header one byte over 512 MiB is refused by the size check before anything is inflated;
    one exactly at it passes that check (and then fails as the truncated archive it is)."""
    over = _header_only(tmp_path / "over.tar.gz", 512 * MiB + 1)
    _refused(over, f"function.yaml: archive expands to more than {512 * MiB} bytes", tmp_path)
    at = _header_only(tmp_path / "at.tar.gz", 512 * MiB)
    with pytest.raises(UnsafePackage) as caught:
        check_archive(at)
    assert "expands" not in caught.value.message


def test_the_default_member_limit_boundary(tmp_path: Path) -> None:
    folders: list[Member] = [(info(f"d{i}", tarfile.DIRTYPE), None) for i in range(9_999)]
    at = build_tgz(tmp_path / "at.tar.gz", [SAFE, *folders])
    assert len(check_archive(at)) == 10_000
    over = build_tgz(tmp_path / "over.tar.gz", [SAFE, *folders, (info("x", tarfile.DIRTYPE), None)])
    with pytest.raises(UnsafePackage) as caught:
        check_archive(over)
    assert caught.value.message == "archive has more than 10000 members"


def _padded(path: Path, padding: int) -> Path:
    """function.yaml followed by exactly `padding` zero bytes (the end-of-archive blocks)."""
    header = info("function.yaml", size=len(MANIFEST)).tobuf(tarfile.USTAR_FORMAT)
    body = MANIFEST + bytes(-len(MANIFEST) % tarfile.BLOCKSIZE)
    path.write_bytes(gzip.compress(header + body + bytes(padding)))
    return path


def test_the_end_padding_limit_boundary(tmp_path: Path) -> None:
    assert check_archive(_padded(tmp_path / "at.tar.gz", MiB)) == ["function.yaml"]
    _refused(_padded(tmp_path / "over.tar.gz", MiB + 1),
             f"more than {MiB} bytes of padding at the end", tmp_path)


def test_data_after_the_end_of_the_archive_is_refused(tmp_path: Path) -> None:
    archive = build_tgz(tmp_path / "trailer.tar.gz", [SAFE], trailer=bytes(20_480) + b"junk")
    _refused(archive, "unexpected data after the end of the archive", tmp_path)


@pytest.mark.parametrize(("members", "message"), [
    ([file_member("a"), (info("a", tarfile.DIRTYPE), None)],
     "a: duplicate member (a file and a folder)"),
    ([(info("l", tarfile.SYMTYPE, link="function.yaml"), None), (info("l", tarfile.DIRTYPE), None)],
     "l: duplicate member (a symlink and a folder)"),
    ([file_member("a/b"), file_member("a")], "a: duplicate member (a folder and a file)"),
    ([file_member("a/b"), (info("a", tarfile.SYMTYPE, link="."), None)],
     "a: duplicate member (a folder and a symlink)"),
], ids=["file-then-folder", "symlink-then-folder", "implied-folder-then-file",
        "implied-folder-then-symlink"])
def test_a_member_never_replaces_an_earlier_one(
    tmp_path: Path, members: list[Member], message: str
) -> None:
    _refused(build_tgz(tmp_path / "dup.tar.gz", [SAFE, *members]), message, tmp_path)


def test_a_folder_may_repeat_an_earlier_folder(tmp_path: Path) -> None:
    members: list[Member] = [SAFE, file_member("a/b"), (info("a", tarfile.DIRTYPE), None),
                             (info("a", tarfile.DIRTYPE), None)]
    assert check_archive(build_tgz(tmp_path / "ok.tar.gz", members)) == [
        "function.yaml", "a/b", "a", "a"]


@pytest.mark.parametrize(("target", "problem"), [
    ("lib\\util.py", "backslash in name"),
    ("lib/\x01util.py", "control character or undecodable byte in name"),
])
def test_link_targets_get_the_name_checks(tmp_path: Path, target: str, problem: str) -> None:
    archive = build_tgz(tmp_path / "link.tar.gz",
                        [SAFE, (info("l", tarfile.SYMTYPE, link=target), None)])
    _refused(archive, f"symlink l -> {target!r}: {problem}", tmp_path)


def _extract_into(root: Path, tmp_path: Path) -> None:
    archive = build_tgz(tmp_path / "pkg.tar.gz", [SAFE])
    with archive.open("rb") as raw:
        unpack_module._extract(raw, root, unpack_module.DEFAULT_MAX_UNPACKED_SIZE, 10)


def test_extraction_never_writes_through_an_existing_symlink(tmp_path: Path) -> None:
    """O_EXCL | O_NOFOLLOW: a file is created, never opened; a planted link is not followed."""
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"precious")
    root = tmp_path / "root"
    root.mkdir()
    (root / "function.yaml").symlink_to(outside)
    with pytest.raises(OSError):
        _extract_into(root, tmp_path)
    assert outside.read_bytes() == b"precious"


def test_extraction_never_overwrites_an_existing_file(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "function.yaml").write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        _extract_into(root, tmp_path)
    assert (root / "function.yaml").read_bytes() == b"precious"


def test_unpack_refuses_an_existing_destination_even_a_dangling_link(tmp_path: Path) -> None:
    archive = build_tgz(tmp_path / "pkg.tar.gz", [SAFE])
    out = tmp_path / "out"
    out.mkdir()
    (out / "dest").symlink_to(tmp_path / "nowhere")
    with pytest.raises(Conflict) as caught:
        unpack(archive, out / "dest")
    assert caught.value.message == f"{out / 'dest'} already exists"
    assert leftovers(out) == ["dest"] and not (tmp_path / "nowhere").exists()


def test_unpack_refuses_a_destination_created_while_it_extracted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process wins the race: its folder is kept, ours is removed, the error says so."""
    archive = build_tgz(tmp_path / "pkg.tar.gz", [SAFE])
    dest = tmp_path / "out" / "dest"
    real_extract = unpack_module._extract

    def racing_extract(raw: io.BufferedReader, root: Path, *limits: int) -> None:
        real_extract(raw, root, *limits)
        dest.mkdir()
        (dest / "theirs").write_bytes(b"theirs")

    monkeypatch.setattr(unpack_module, "_extract", racing_extract)
    with pytest.raises(Conflict) as caught:
        unpack(archive, dest)
    assert caught.value.message == f"{dest} already exists"
    assert leftovers(tmp_path / "out") == ["dest"]
    assert os.listdir(dest) == ["theirs"]


def _inflated(data: bytes) -> unpack_module._Inflated:
    return unpack_module._Inflated(io.BytesIO(gzip.compress(data)), 8 * MiB, 8 * MiB)


def test_the_inflated_stream_only_moves_forward() -> None:
    """tarfile may skip ahead (a member's data it was not asked for), never back or relative."""
    stream = _inflated(bytes(range(256)) * 16)
    assert stream.read(1024) == bytes(range(256)) * 4
    for offset, whence in ((512, os.SEEK_SET), (2048, os.SEEK_CUR), (0, os.SEEK_END)):
        with pytest.raises(UnsafePackage) as caught:
            stream.seek(offset, whence)
        assert caught.value.message == "archive cannot be read front to back"
    assert stream.seek(1024) == 1024 and stream.seek(3000) == stream.tell() == 3000
    assert stream.read(4) == bytes([3000 % 256 + i for i in range(4)])
    assert stream.seek(10_000) == 4096  # past the end: stops there, without looping


@pytest.mark.parametrize("padding", [0, 100, 512])
def test_an_archive_without_the_full_end_blocks_is_accepted(tmp_path: Path, padding: int) -> None:
    """Some writers stop after the last member, or write less than the two zero blocks."""
    archive = _padded(tmp_path / "short.tar.gz", padding)
    assert check_archive(archive) == ["function.yaml"]
    assert (unpack(archive, tmp_path / "out") / "function.yaml").read_bytes() == MANIFEST


def test_names_are_normalised_before_the_duplicate_check(tmp_path: Path) -> None:
    ok = build_tgz(tmp_path / "ok.tar.gz", [SAFE, (info("./lib/", tarfile.DIRTYPE), None),
                                            file_member("lib//util.py"), file_member("lib/./x/")])
    assert check_archive(ok) == ["function.yaml", "lib", "lib/util.py", "lib/x"]
    twice = build_tgz(tmp_path / "twice.tar.gz",
                      [SAFE, file_member("lib/util.py"), file_member("lib//util.py", b"evil")])
    _refused(twice, "lib/util.py: duplicate member (a file and a file)", tmp_path)


def test_read_member_refuses_an_absolute_link_before_the_member(tmp_path: Path) -> None:
    """read_member stops at the member it wants, so each earlier member must be checked as read."""
    archive = build_tgz(tmp_path / "pkg.tar.gz",
                        [(info("l", tarfile.SYMTYPE, link="/etc/passwd"), None), SAFE])
    with pytest.raises(UnsafePackage) as caught:
        read_member(archive, "function.yaml")
    assert caught.value.message == "symlink l -> /etc/passwd: absolute target"


def test_a_hardlink_may_point_to_an_earlier_hardlink(tmp_path: Path) -> None:
    members: list[Member] = [SAFE, file_member("a", b"shared"),
                             (info("h1", tarfile.LNKTYPE, link="a"), None),
                             (info("h2", tarfile.LNKTYPE, link="h1"), None)]
    dest = unpack(build_tgz(tmp_path / "links.tar.gz", members), tmp_path / "dest")
    assert (dest / "h2").read_bytes() == b"shared"
    assert (dest / "h2").stat().st_ino == (dest / "a").stat().st_ino
    over = build_tgz(tmp_path / "over.tar.gz", [*members, file_member("h2/x")])
    _refused(over, "h2/x: parent h2 is a hardlink, not a folder", tmp_path)


def test_large_members_stream_in_bounded_chunks(tmp_path: Path) -> None:
    data = os.urandom(2 * MiB + 1000)
    archive = build_tgz(tmp_path / "big.tar.gz", [SAFE, file_member("big.bin", data)])
    with archive.open("rb") as raw:
        for member in unpack_module._members(raw, 8 * MiB, 10):
            sizes = [len(chunk) for chunk in member.chunks()]
            assert max(sizes) <= MiB and sum(sizes) == member.info.size
    assert read_member(archive, "big.bin", max_size=len(data)) == data  # exactly at max_size
    with pytest.raises(UnsafePackage) as caught:
        read_member(archive, "big.bin", max_size=len(data) - 1)
    assert caught.value.message == (
        f"big.bin in the package is {len(data)} bytes, more than the {len(data) - 1} allowed")


def test_extracted_folders_are_0755_whatever_the_umask(tmp_path: Path) -> None:
    """Folders named by the archive, implied by a member's path, and the root itself; a
    folder may be named again, or after a member inside it made it."""
    members: list[Member] = [SAFE, (info("deep/er/est", tarfile.DIRTYPE), None),
                             file_member("implied/sub/x.py"),
                             (info("implied", tarfile.DIRTYPE), None),
                             (info("deep/er/est", tarfile.DIRTYPE), None)]
    archive = build_tgz(tmp_path / "pkg.tar.gz", members)
    old = os.umask(0)
    try:
        dest = unpack(archive, tmp_path / "a" / "b" / "dest")
    finally:
        os.umask(old)
    for folder in (dest, dest / "deep", dest / "deep/er", dest / "deep/er/est",
                   dest / "implied", dest / "implied/sub"):
        assert folder.is_dir() and folder.stat().st_mode & 0o777 == 0o755, folder
    assert (dest / "implied/sub/x.py").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(("mode", "expected"), [
    (0o700, 0o755), (0o610, 0o755), (0o601, 0o755), (0o644, 0o644), (0o642, 0o644), (0o666, 0o644),
])
def test_any_exec_bit_makes_an_executable(tmp_path: Path, mode: int, expected: int) -> None:
    member, data = file_member("tool", b"#!/bin/sh\n")
    member.mode = mode
    dest = unpack(build_tgz(tmp_path / "pkg.tar.gz", [SAFE, (member, data)]), tmp_path / "out")
    assert (dest / "tool").stat().st_mode & 0o777 == expected


def test_extraction_happens_in_a_hidden_sibling_of_the_destination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same folder (so the final rename is atomic) and hidden (so nothing lists a half-made
    install as one)."""
    archive = build_tgz(tmp_path / "pkg.tar.gz", [SAFE])
    dest = tmp_path / "out" / "dest"
    seen: list[Path] = []
    real_extract = unpack_module._extract

    def spying_extract(raw: io.BufferedReader, root: Path, *limits: int) -> None:
        seen.append(root)
        real_extract(raw, root, *limits)

    monkeypatch.setattr(unpack_module, "_extract", spying_extract)
    unpack(archive, dest)
    assert len(seen) == 1 and seen[0].parent == dest.parent
    assert seen[0].name.startswith(".dest.")
    assert leftovers(dest.parent) == ["dest"]


def test_a_failed_cleanup_never_hides_the_real_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = build_tgz(tmp_path / "pkg.tar.gz", [SAFE])

    def failing_extract(raw: io.BufferedReader, root: Path, *limits: int) -> None:
        root.rmdir()  # e.g. removed by a cleaner while we worked
        raise UnsafePackage("the real problem")

    monkeypatch.setattr(unpack_module, "_extract", failing_extract)
    with pytest.raises(UnsafePackage) as caught:
        unpack(archive, tmp_path / "out" / "dest")
    assert caught.value.message == "the real problem"


def test_the_inflated_stream_reads_in_bounded_pieces_only() -> None:
    """Never 'everything' (-1, None): a pax record is the largest piece tarfile asks for."""
    largest = unpack_module._MAX_HEADER_READ
    assert largest == MiB + tarfile.BLOCKSIZE
    stream = _inflated(bytes(3 * MiB))
    assert stream.read(0) == b""
    assert len(stream.read(largest)) == largest
    for size in (-1, None, largest + 1):
        with pytest.raises(UnsafePackage) as caught:
            stream.read(size)
        assert caught.value.message == f"a member header is larger than {MiB} bytes"
    with pytest.raises(UnsafePackage):
        stream.read()
    assert stream.tell() == largest


def _pax_member(record_size: int) -> Member:
    """function.yaml with a pax extended header of exactly `record_size` bytes."""
    member, data = file_member("function.yaml", MANIFEST)
    # one record: "<len> comment=<value>\n", where <len> counts itself (7 digits here)
    member.pax_headers = {"comment": "x" * (record_size - len("1234567 comment=\n"))}
    return member, data


def _pax_size(archive: Path) -> int:
    header = gzip.decompress(archive.read_bytes())[: tarfile.BLOCKSIZE]
    assert header[156:157] == tarfile.XHDTYPE
    return int(header[124:136].rstrip(b"\0 "), 8)


def test_the_extended_header_size_boundary(tmp_path: Path) -> None:
    """tarfile reads a pax header in one piece of its size rounded up to a block."""
    at = build_tgz(tmp_path / "at.tar.gz", [_pax_member(MiB + tarfile.BLOCKSIZE)])
    assert _pax_size(at) == MiB + tarfile.BLOCKSIZE
    assert check_archive(at) == ["function.yaml"]
    over = build_tgz(tmp_path / "over.tar.gz", [_pax_member(MiB + tarfile.BLOCKSIZE + 1)])
    assert _pax_size(over) == MiB + tarfile.BLOCKSIZE + 1
    _refused(over, f"a member header is larger than {MiB} bytes", tmp_path)


def test_the_inflated_byte_limit_boundary(tmp_path: Path) -> None:
    """Everything inflated counts: limit = max_size + members x 4 blocks + 1 MiB of padding."""
    max_size, max_members = len(MANIFEST), 2
    limit = max_size + max_members * 4 * tarfile.BLOCKSIZE + MiB
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        member, data = _pax_member(600 * 1024)
        tar.addfile(member, io.BytesIO(data))
    body = raw.getvalue()
    for extra, accepted in ((0, True), (1, False)):
        archive = tmp_path / f"plus{extra}.tar.gz"
        archive.write_bytes(gzip.compress(body + bytes(limit - len(body) + extra)))
        if accepted:
            assert check_archive(archive, max_size=max_size, max_members=max_members) == [
                "function.yaml"]
        else:
            _refused(archive, f"archive expands to more than {max_size} bytes", tmp_path,
                     max_size=max_size, max_members=max_members)


@pytest.mark.parametrize(("members", "message"), [
    ([file_member("lib/a"), file_member("lib/a/b")],
     "lib/a/b: parent lib/a is a file, not a folder"),
    ([file_member("lib/sub/x"), file_member("lib/sub")],
     "lib/sub: duplicate member (a folder and a file)"),
], ids=["nested-parent-is-a-file", "nested-implied-folder-then-file"])
def test_nested_paths_get_the_same_checks(
    tmp_path: Path, members: list[Member], message: str
) -> None:
    _refused(build_tgz(tmp_path / "nested.tar.gz", [SAFE, *members]), message, tmp_path)


def test_an_upload_spooled_to_a_temporary_file_can_be_checked(tmp_path: Path) -> None:
    """A SpooledTemporaryFile (what web frameworks keep uploads in) says its mode is w+b;
    the archive is read all the same."""
    data = build_tgz(tmp_path / "pkg.tar.gz", [SAFE, file_member("a.py")]).read_bytes()
    with tempfile.SpooledTemporaryFile() as upload:
        upload.write(data)
        upload.seek(0)
        assert upload.mode == "w+b"
        assert check_archive(upload) == ["function.yaml", "a.py"]  # type: ignore[arg-type]
