"""The name and link rules pack and unpack share (fnhub.core.packaging.rules), at their exact
boundaries: which characters are refused, and how far symlink resolution goes."""

from __future__ import annotations

import pytest

from fnhub.core.packaging.rules import link_escape, name_problem, spelling_clash

CONTROL = "control character or undecodable byte in name"


@pytest.mark.parametrize(("char", "problem"), [
    ("\x00", CONTROL), ("\x1f", CONTROL), (" ", None), ("~", None), ("\x7f", CONTROL),
    ("\x80", None), ("\ud7ff", None), ("\ud800", CONTROL), ("\udc80", CONTROL),  # surrogateescape
    ("\udfff", CONTROL), ("\ue000", None), ("\\", "backslash in name"),
])
def test_the_characters_a_name_may_hold(char: str, problem: str | None) -> None:
    assert name_problem(f"lib/a{char}b.py") == problem


def test_spelling_clash_records_every_parent_once() -> None:
    seen: dict[str, str] = {}
    assert spelling_clash(seen, "Lib/Sub/a.py") is None
    assert seen == {"lib": "Lib", "lib/sub": "Lib/Sub", "lib/sub/a.py": "Lib/Sub/a.py"}
    assert spelling_clash(seen, "Lib/Sub/b.py") is None
    assert spelling_clash(seen, "LIB/x.py") == "Lib"
    assert spelling_clash(seen, "Lib/SUB") == "Lib/Sub"
    assert spelling_clash({}, "Stra\u00dfe") is None
    assert spelling_clash({"strasse": "strasse"}, "Stra\u00dfe") == "strasse"  # casefold, not lower


def _chain(length: int) -> dict[str, str]:
    """l0 -> l1 -> ... -> l<length> -> file: resolving l0 passes through `length` links."""
    links = {f"l{i}": f"l{i + 1}" for i in range(length)}
    links[f"l{length}"] = "file"
    return links


def test_link_resolution_follows_at_most_40_links() -> None:
    assert link_escape("l0", "l1", _chain(40)) is None
    assert link_escape("l0", "l1", _chain(41)) == "symlink loop"
    assert link_escape("a", "b", {"a": "b", "b": "a"}) == "symlink loop"


@pytest.mark.parametrize(("name", "target", "links", "problem"), [
    ("l", "/etc/passwd", {}, "absolute target"),
    ("a", "b/x", {"b": "/etc"}, "goes through b, which has an absolute target"),
    ("lib/l", "..//../x", {}, "points outside the package"),
    ("lib/l", ".//.././x", {}, None),
    ("lib/l", "./../../x", {}, "points outside the package"),
    ("lib/l", "sub/../../x", {}, None),
    ("lib/l", "up/../x", {"lib/up": ".."}, "points outside the package"),
    ("lib/l", "up/x", {"lib/up": "../lib"}, None),
    ("lib/l", "up/x", {"lib/up": "../.."}, "points outside the package"),
], ids=["absolute", "through-absolute", "empty-parts", "dot-parts", "dot-parts-outside", "lexical",
        "via-link",
        "via-link-inside", "via-link-of-two-parts"])
def test_link_escape(name: str, target: str, links: dict[str, str], problem: str | None) -> None:
    assert link_escape(name, target, {name: target, **links}) == problem
