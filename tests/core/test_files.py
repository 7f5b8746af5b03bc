"""The one atomic writer: what a reader can see, the modes it leaves, and failures."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from fnhub.core.files import atomic_output, write_atomic


@pytest.fixture
def umask_077() -> Iterator[None]:
    old = os.umask(0o077)
    yield
    os.umask(old)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_without_a_mode_the_file_gets_what_open_would_give(tmp_path: Path,
                                                          umask_077: None) -> None:
    write_atomic(tmp_path / "record.json", b"{}")
    assert mode_of(tmp_path / "record.json") == 0o600
    os.umask(0o022)
    write_atomic(tmp_path / "record.json", b"{}")
    assert mode_of(tmp_path / "record.json") == 0o644


def test_a_mode_wins_over_the_umask(tmp_path: Path, umask_077: None) -> None:
    write_atomic(tmp_path / "pkg.tar.gz", b"x", 0o644)
    assert mode_of(tmp_path / "pkg.tar.gz") == 0o644


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f"
    write_atomic(target, b"old")
    with pytest.raises(RuntimeError), atomic_output(target) as fh:
        fh.write(b"half")
        assert [p.name for p in target.parent.iterdir() if p.name.startswith(".f.")]
        raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["f"]


def test_the_temp_file_is_a_private_sibling_until_renamed(tmp_path: Path) -> None:
    target = tmp_path / "key"
    with atomic_output(target, 0o644) as fh:
        [tmp] = [p for p in tmp_path.iterdir() if p.name.startswith(".key.")]
        assert tmp.name.endswith(".tmp") and mode_of(tmp) == 0o600 and not target.exists()
        fh.write(b"k")
    assert target.read_bytes() == b"k" and mode_of(target) == 0o644


@pytest.mark.parametrize("status", [None, "Name:\tpython\n", "Umask:\tzz\n"])
def test_where_the_umask_cannot_be_read_it_is_taken_as_022(tmp_path: Path,
                                                          status: str | None) -> None:
    """No /proc (OSError), no Umask line (StopIteration), a value not in octal (ValueError)."""
    from fnhub.core.files import _umask

    status_file = tmp_path / "status"
    if status is not None:
        status_file.write_text(status)
    assert _umask(status_file) == 0o022
    status_file.write_text("Name:\tpython\nUmask:\t0027\n")
    assert _umask(status_file) == 0o027
