"""Member-name and link rules that packing and unpacking both enforce.

A name the hub accepts must unpack on every client: so beyond safety (no `..`, no links
out), names stay within common filesystem limits (255 bytes a component, 4096 a path, as
on Linux and macOS) and no two members differ only in letter case or Unicode
normalisation (one would overwrite or block the other on macOS and Windows).
"""

from __future__ import annotations

import unicodedata

_MAX_LINK_HOPS = 40
MAX_COMPONENT_BYTES = 255  # NAME_MAX
MAX_PATH_BYTES = 4096  # PATH_MAX


def name_problem(name: str) -> str | None:
    """Why a member name (or link target) cannot be carried portably, or None."""
    if "\\" in name:
        return "backslash in name"
    if any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in name):
        return "control character or undecodable byte in name"
    size = len(name.encode("utf-8"))
    if size > MAX_PATH_BYTES:
        return f"path is {size} bytes long, more than the {MAX_PATH_BYTES} filesystems allow"
    longest = max(len(part.encode("utf-8")) for part in name.split("/"))
    if longest > MAX_COMPONENT_BYTES:
        return (f"a path component is {longest} bytes long, more than the "
                f"{MAX_COMPONENT_BYTES} filesystems allow")
    return None


def _fold(path: str) -> str:
    """The name as a case-insensitive, normalising filesystem (macOS, Windows) sees it."""
    return unicodedata.normalize("NFC", path).casefold()


def spelling_clash(seen: dict[str, str], name: str) -> str | None:
    """Record `name` and its parent folders in `seen` (folded -> spelling); return the
    earlier member it would collide with on a case-insensitive filesystem, or None."""
    parts = name.split("/")
    for end in range(1, len(parts) + 1):
        path = "/".join(parts[:end])
        earlier = seen.setdefault(_fold(path), path)
        if earlier != path:
            return earlier
    return None


def link_escape(name: str, target: str, links: dict[str, str]) -> str | None:
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

