"""Tests that pin each guard of the packer and the digest helpers (issue #13 item 6): every one
fails when the check it names is removed or weakened, which mutation testing showed no earlier
test noticed. Races (a file swapped between the walk and the read) are simulated by swapping it
at the exact moment the packer looks, since a real race cannot be timed in a test."""

from __future__ import annotations

import gzip
import importlib
import io
import os
import signal
import tarfile
from pathlib import Path

import pytest

from fnhub.core.errors import InvalidInput, NotFound, UnsafePackage
from fnhub.core.packaging import (
    HashingWriter,
    check_archive,
    digest_file,
    digest_hex,
    pack,
    package_files,
    unpack,
)
from tests.core.test_packaging import MANIFEST, leftovers, make_function, pack_bytes, write

pack_module = importlib.import_module("fnhub.core.packaging.pack")
digests_module = importlib.import_module("fnhub.core.packaging.digests")


def _swap_after_the_link_check(
    monkeypatch: pytest.MonkeyPatch, victim: Path, swap: object
) -> None:
    """Run `swap()` right after the packer asked whether `victim` is a link (and was told no)."""
    real_islink = os.path.islink

    def racing_islink(path: str | os.PathLike[str]) -> bool:
        answer = real_islink(path)
        if Path(path) == victim:
            swap()  # type: ignore[operator]
        return answer

    monkeypatch.setattr(os.path, "islink", racing_islink)
    monkeypatch.setattr(pack_module, "package_files", lambda root: sorted(
        p.relative_to(root).as_posix() for p in Path(root).rglob("*") if not p.is_dir()))


def test_a_file_swapped_for_a_symlink_while_packing_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """O_NOFOLLOW on the read: a file replaced by a link to a secret is refused, never read."""
    fn = make_function(tmp_path / "fn")
    secret = write(tmp_path / "secret.txt", b"the secret")
    victim = fn / "main.py"

    def swap() -> None:
        victim.unlink()
        victim.symlink_to(secret)

    _swap_after_the_link_check(monkeypatch, victim, swap)
    out = tmp_path / "out" / "pkg.tar.gz"
    with pytest.raises(InvalidInput) as caught:
        pack(fn, out)
    assert type(caught.value) is InvalidInput
    assert caught.value.message.startswith(f"cannot read {victim}: ")
    assert leftovers(tmp_path / "out") == []  # the half-written temp file is gone too


def test_a_file_swapped_for_a_folder_while_packing_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fn = make_function(tmp_path / "fn")
    victim = fn / "main.py"

    def swap() -> None:
        victim.unlink()
        victim.mkdir()

    _swap_after_the_link_check(monkeypatch, victim, swap)
    with pytest.raises(InvalidInput) as caught:
        pack(fn, io.BytesIO())
    assert caught.value.message == f"cannot read {victim}: Is a directory"


def _on_alarm(signum: int, frame: object) -> None:
    raise TimeoutError("the packer waited on a fifo")


def test_a_file_swapped_for_a_fifo_while_packing_is_refused_without_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """O_NONBLOCK: opening a fifo for reading would wait for a writer forever."""
    fn = make_function(tmp_path / "fn")
    victim = fn / "main.py"

    def swap() -> None:
        victim.unlink()
        os.mkfifo(victim)

    _swap_after_the_link_check(monkeypatch, victim, swap)
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(5)
    try:
        with pytest.raises(UnsafePackage) as caught:
            pack(fn, io.BytesIO())
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert caught.value.message == "main.py: not a regular file"


def test_the_package_file_is_readable_by_all_and_replaced_whole(tmp_path: Path) -> None:
    """mkstemp makes 0600 files; a package is served and shared, so it is 0644."""
    fn = make_function(tmp_path / "fn")
    out = tmp_path / "out" / "pkg.tar.gz"
    write(out, b"old package")
    old = os.umask(0o077)  # a private umask: the package is still made readable by all
    try:
        pack(fn, out)
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644
    assert out.read_bytes() == pack_bytes(fn)[0]
    assert leftovers(out.parent) == ["pkg.tar.gz"]


def test_pack_to_a_buffered_stream_has_flushed_it_on_return(tmp_path: Path) -> None:
    fn = make_function(tmp_path / "fn")
    target = tmp_path / "stream.tar.gz"
    with target.open("wb", buffering=1 << 20) as stream:
        result = pack(fn, stream)
        assert target.stat().st_size == result.size  # on disk before the stream is closed
    assert target.read_bytes() == pack_bytes(fn)[0]


def test_symlink_members_have_normalised_headers(tmp_path: Path) -> None:
    fn = make_function(tmp_path / "fn")
    (fn / "alias.py").symlink_to("main.py")
    data, _ = pack_bytes(fn)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        link = tar.getmember("alias.py")
    assert link.issym() and link.linkname == "main.py"
    assert (link.mode, link.size, link.mtime, link.uid, link.gid, link.uname, link.gname) == (
        0o777, 0, 0, 0, 0, "", "")


@pytest.mark.parametrize(("name", "problem"), [
    ("lib\\util.py", "backslash in name"),
    ("bad\x7fname", "control character or undecodable byte in name"),
])
def test_pack_refuses_names_no_client_could_unpack(tmp_path: Path, name: str, problem: str) -> None:
    fn = make_function(tmp_path / "fn")
    write(fn / name)
    out = tmp_path / "pkg.tar.gz"
    with pytest.raises(UnsafePackage) as caught:
        pack(fn, out)
    assert caught.value.message == f"{name!r}: {problem}"
    assert caught.value.hint == "rename it or list it in .fnhubignore"
    assert not out.exists()
    write(fn / ".fnhubignore", name.replace("\\", "\\\\").encode() + b"\n")  # the hint's way out

    assert name not in package_files(fn)


def test_an_ignore_file_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    fn = make_function(tmp_path / "fn")
    write(fn / ".fnhubignore", b"data/\n\xff\xfe\n")
    with pytest.raises(InvalidInput) as caught:
        package_files(fn)
    assert type(caught.value) is InvalidInput
    assert caught.value.message.startswith(f"{fn / '.fnhubignore'}: ")


def test_a_folder_that_cannot_be_listed_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests run as root, where mode 000 does not stop reading, so the refusal is simulated."""
    fn = make_function(tmp_path / "fn")
    real_scandir = os.scandir

    def scandir(path: str | os.PathLike[str]) -> object:
        if Path(path) == fn / "lib":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(InvalidInput) as caught:
        package_files(fn)
    assert type(caught.value) is InvalidInput
    assert caught.value.message == f"cannot read {fn / 'lib'}: Permission denied"


def test_links_to_folders_follow_the_folder_exclusions(tmp_path: Path) -> None:
    """A link to a folder is an entry of its own; a folder rule (`name/`) leaves it out too."""
    fn = make_function(tmp_path / "fn")
    (fn / ".venv").symlink_to("lib")  # built-in rule `.venv/`
    (fn / "cache").symlink_to("lib")  # user rule `cache/`
    (fn / "skip").symlink_to("lib")  # user rule `skip` (no slash)
    (fn / "kept").symlink_to("lib")
    write(fn / ".fnhubignore", b"cache/\nskip\n")
    assert package_files(fn) == [".fnhubignore", "bin/tool.sh", "function.yaml", "kept",
                                 "lib/util.py", "main.py"]


def test_a_link_to_a_folder_is_excluded_by_a_rule_for_files(tmp_path: Path) -> None:
    """As in git, a link is not a folder: `data` then `!data/` leaves out a link named data."""
    fn = make_function(tmp_path / "fn")
    (fn / "data").symlink_to("lib")
    write(fn / "sub" / "data" / "kept.py")
    write(fn / ".fnhubignore", b"data\n!data/\n")
    assert package_files(fn) == [".fnhubignore", "bin/tool.sh", "function.yaml", "lib/util.py",
                                 "main.py", "sub/data/kept.py"]


def test_digest_helpers_refuse_what_is_not_a_digest_or_a_file(tmp_path: Path) -> None:
    for bad in (None, 42, b"sha256:" + b"ab" * 32, "sha256:" + "ab" * 32 + "\n"):
        with pytest.raises(InvalidInput) as caught:
            digest_hex(bad)  # type: ignore[arg-type]
        assert caught.value.message == f"invalid digest {bad!r}: expected sha256:<64 hex digits>"
    with pytest.raises(InvalidInput) as folder:
        digest_file(tmp_path)
    assert type(folder.value) is InvalidInput
    assert folder.value.message == f"{tmp_path} is a folder, not a file"
    with pytest.raises(NotFound) as missing:
        digest_file(tmp_path / "nope")
    assert missing.value.message == f"no file at {tmp_path / 'nope'}"


def test_digest_file_reads_past_the_first_chunk(tmp_path: Path) -> None:
    import hashlib

    data = os.urandom(3 << 20) + b"tail"
    path = write(tmp_path / "big.bin", data)
    assert digest_file(path) == "sha256:" + hashlib.sha256(data).hexdigest()
    assert digest_file(write(tmp_path / "small", MANIFEST)) == (
        "sha256:" + hashlib.sha256(MANIFEST).hexdigest())


def test_a_file_inside_an_excluded_folder_cannot_be_re_included(tmp_path: Path) -> None:
    """As in git: `data/` prunes the folder, so `!data/keep.txt` brings nothing back."""
    fn = make_function(tmp_path / "fn")
    write(fn / "data" / "keep.txt")
    write(fn / ".fnhubignore", b"data/\n!data/keep.txt\n")
    assert "data/keep.txt" not in package_files(fn)


@pytest.mark.parametrize(("mode", "stored"), [
    (0o700, 0o755), (0o610, 0o755), (0o601, 0o755), (0o600, 0o644), (0o642, 0o644), (0o666, 0o644),
])
def test_any_exec_bit_packs_an_executable(tmp_path: Path, mode: int, stored: int) -> None:
    fn = make_function(tmp_path / "fn")
    write(fn / "tool", b"#!/bin/sh\n", mode=mode)
    data, _ = pack_bytes(fn)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        assert tar.getmember("tool").mode == stored


def test_non_ascii_names_round_trip(tmp_path: Path) -> None:
    fn = make_function(tmp_path / "fn")
    write(fn / "données" / "café.py", b"x = 1\n")
    archive = tmp_path / "pkg.tar.gz"
    pack(fn, archive)
    assert "données/café.py" in check_archive(archive)
    assert (unpack(archive, tmp_path / "out") / "données" / "café.py").read_bytes() == b"x = 1\n"


def test_hashing_writer_is_a_writable_file_object() -> None:
    writer = HashingWriter()
    assert writer.writable()
    with gzip.GzipFile(fileobj=writer, mode="wb", mtime=0) as gz:  # type: ignore[arg-type]
        gz.write(b"hello")
    assert writer.size == len(gzip.compress(b"hello", mtime=0))


def test_digest_file_reads_in_bounded_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "big.bin", bytes(3 << 20))
    sizes: list[int | None] = []
    real_open = open

    def spying_open(*args: object, **kwargs: object) -> object:
        fh = real_open(*args, **kwargs)  # type: ignore[call-overload]
        real_read = fh.read

        def read(size: int | None = -1) -> bytes:
            sizes.append(size)
            return real_read(size)

        fh.read = read
        return fh

    monkeypatch.setattr(digests_module, "open", spying_open, raising=False)
    digest_file(path)
    assert sizes and all(size == 1 << 20 for size in sizes)
