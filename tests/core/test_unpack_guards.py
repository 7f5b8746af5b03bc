"""Tests that pin each guard of the unpacker (issue #13 item 6): every one fails when the check
it names is removed or weakened, which mutation testing showed no earlier test noticed."""

from __future__ import annotations

import gzip
import importlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from fnhub.core.errors import Conflict, UnsafePackage
from fnhub.core.packaging import check_archive, unpack
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
