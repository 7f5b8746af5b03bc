"""Member-name and link rules that packing and unpacking both enforce."""

from __future__ import annotations

_MAX_LINK_HOPS = 40


def name_problem(name: str) -> str | None:
    """Why a member name cannot be carried portably, or None."""
    if "\\" in name:
        return "backslash in name"
    if any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in name):
        return "control character or undecodable byte in name"
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

