"""Version specs: parsing, matching, resolution rules and every error message."""

from __future__ import annotations

import pytest
import semver

from fnhub.core.errors import InvalidVersion, NoMatchingVersion
from fnhub.core.versions import (
    Candidate,
    VersionSpec,
    is_valid_version,
    parse_spec,
    parse_version,
    resolve,
    sort_versions,
)

# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize("text", [None, "", "latest"])
def test_missing_spec_is_latest(text: str | None) -> None:
    spec = parse_spec(text)
    assert spec.tag == "latest"
    assert spec.exact is None
    assert spec.text == "latest"


@pytest.mark.parametrize("text", ["stable", "beta", "lts-2024", "v", "a.b_c-d", "x1"])
def test_tags(text: str) -> None:
    spec = parse_spec(text)
    assert spec.tag == text
    assert spec.exact is None
    assert spec.constraints == ()


@pytest.mark.parametrize(
    ("text", "exact", "prerelease"),
    [
        ("1.5.0", "1.5.0", False),
        ("0.0.0", "0.0.0", False),
        ("1.5.0-rc.1", "1.5.0-rc.1", True),
        ("1.5.0+build.7", "1.5.0+build.7", False),
        ("==1.5.0", "1.5.0", False),
        ("== 2.0.0-beta", "2.0.0-beta", True),
    ],
)
def test_exact_pins(text: str, exact: str, prerelease: bool) -> None:
    spec = parse_spec(text)
    assert spec.exact == exact
    assert spec.tag is None
    assert spec.prerelease is prerelease


@pytest.mark.parametrize("text", ["==1.5", "!=1.5.0", ">=1.5.0", "1.5.0,1.5.0", "^1.5.0", "1.5"])
def test_not_exact_pins(text: str) -> None:
    assert parse_spec(text).exact is None


@pytest.mark.parametrize(
    ("text", "bounds"),
    [
        ("1", [(">=", "1.0.0"), ("<", "2.0.0-0")]),
        ("1.5", [(">=", "1.5.0"), ("<", "1.6.0-0")]),
        ("0", [(">=", "0.0.0"), ("<", "1.0.0-0")]),
        ("^1.5", [(">=", "1.5.0"), ("<", "2.0.0-0")]),
        ("^1", [(">=", "1.0.0"), ("<", "2.0.0-0")]),
        ("^1.5.2", [(">=", "1.5.2"), ("<", "2.0.0-0")]),
        ("^0.3", [(">=", "0.3.0"), ("<", "0.4.0-0")]),
        ("^0.3.1", [(">=", "0.3.1"), ("<", "0.4.0-0")]),
        ("^0.0.3", [(">=", "0.0.3"), ("<", "0.0.4-0")]),
        ("^0.0", [(">=", "0.0.0"), ("<", "0.1.0-0")]),
        ("^0", [(">=", "0.0.0"), ("<", "1.0.0-0")]),
        ("^2.0.0-beta", [(">=", "2.0.0-beta"), ("<", "3.0.0-0")]),
        ("~1.5.2", [(">=", "1.5.2"), ("<", "1.6.0-0")]),
        ("~1.5", [(">=", "1.5.0"), ("<", "1.6.0-0")]),
        ("~1", [(">=", "1.0.0"), ("<", "2.0.0-0")]),
        ("~0.2.3-beta.2", [(">=", "0.2.3-beta.2"), ("<", "0.3.0-0")]),
        (">=1.2,<2", [(">=", "1.2.0"), ("<", "2.0.0")]),
        (">= 1.2 , < 2", [(">=", "1.2.0"), ("<", "2.0.0")]),
        (">1,<=3.1.4,!=2.0.0,==2",
         [(">", "1.0.0"), ("<=", "3.1.4"), ("!=", "2.0.0"), ("==", "2.0.0")]),
        ("^1.2,!=1.4.0", [(">=", "1.2.0"), ("<", "2.0.0-0"), ("!=", "1.4.0")]),
        ("*", []),
        ("*,<2", [("<", "2.0.0")]),
    ],
)
def test_range_bounds(text: str, bounds: list[tuple[str, str]]) -> None:
    spec = parse_spec(text)
    assert spec.tag is None
    assert [(c.op, str(c.version)) for c in spec.constraints] == bounds


@pytest.mark.parametrize(
    ("text", "prerelease"),
    [("^1.5", False), (">=2.0.0-rc.1", True), ("^2.0.0-beta", True), ("1.0.0,<2", False),
     (">=1,<2.0.0-rc.1", True), ("*", False)],
)
def test_prerelease_flag_follows_the_written_versions(text: str, prerelease: bool) -> None:
    assert parse_spec(text).prerelease is prerelease


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.2.3.4", "invalid version spec '1.2.3.4': '1.2.3.4' is neither a version"),
        ("1.x", "'1.x' is neither a version (like 1.2.0, 1.2 or 1) nor a tag"),
        ("Stable", "'Stable' is neither a version"),
        ("01.2", "'01.2' is neither a version"),
        ("1.2-rc.1", "'1.2-rc.1' is neither a version"),
        ("-1", "'-1' is neither a version"),
        ("^x", "invalid version spec '^x': 'x' is not a version (like 1.2.0, 1.2 or 1"),
        (">=1.2,<2x", "'2x' is not a version"),
        ("~", "'~' must be followed by a version"),
        ("^", "'^' must be followed by a version"),
        (">=", "'>=' must be followed by a version"),
        ("=>1.2", "unknown operator '=>'"),
        ("=1.2", "unknown operator '='"),
        ("^~1.2", "unknown operator '^~'"),
        ("<>1", "unknown operator '<>'"),
        (">=1 <2", "'>=1 <2' has a space inside; separate constraints with ','"),
        ("1.5,", "empty constraint"),
        (",1.5", "empty constraint"),
        (">=1,,<2", "empty constraint"),
        ("   ", "empty constraint"),
        ("1.0||2.0", "is neither a version"),
        ("v1", "without the leading 'v': '1'"),
        ("v1.2", "without the leading 'v': '1.2'"),
        ("v1.2.3-rc.1", "without the leading 'v': '1.2.3-rc.1'"),
        ("latest,>=1", "'latest' is neither a version"),
    ],
)
def test_bad_specs(text: str, message: str) -> None:
    with pytest.raises(InvalidVersion) as info:
        parse_spec(text)
    assert message in str(info.value)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize("value", [1.5, 2, ["1"]])
def test_non_text_spec(value: object) -> None:
    with pytest.raises(InvalidVersion, match="must be text"):
        parse_spec(value)  # type: ignore[arg-type]


# ---------------------------------------------------------------- matching


@pytest.mark.parametrize(
    ("text", "version", "expected"),
    [
        ("1.5", "1.5.0", True),
        ("1.5", "1.5.9", True),
        ("1.5", "1.6.0", False),
        ("1.5", "1.4.9", False),
        ("1.5", "1.5.1-rc.1", False),
        ("^1.5", "1.9.9", True),
        ("^1.5", "2.0.0", False),
        ("^1.5", "1.4.0", False),
        ("^0.3", "0.3.7", True),
        ("^0.3", "0.4.0", False),
        ("^0.0.3", "0.0.3", True),
        ("^0.0.3", "0.0.4", False),
        ("~1.5.2", "1.5.9", True),
        ("~1.5.2", "1.5.1", False),
        ("~1.5.2", "1.6.0", False),
        ("~1", "1.9.0", True),
        (">=1.2,<2", "1.2.0", True),
        (">=1.2,<2", "2.0.0", False),
        (">1.2", "1.2.0", False),
        (">1.2", "1.2.1", True),
        ("<=1.2", "1.2.0", True),
        ("!=1.3.0", "1.3.0", False),
        ("!=1.3.0", "1.3.1", True),
        ("==1.3", "1.3.0", True),
        ("1.5.0", "1.5.0", True),
        ("1.5.0", "1.5.0+build.1", True),  # build metadata has no precedence
        ("1.5.0", "1.5.1", False),
        ("*", "0.0.1", True),
        ("*", "1.0.0-rc.1", False),
        ("latest", "3.0.0", True),
        ("latest", "3.0.0-rc.1", False),
        # prereleases only when the spec names one
        (">=2.0.0-rc.1", "2.0.0-rc.2", True),
        (">=2.0.0-rc.1", "2.0.0-beta", False),  # beta < rc
        (">=2.0.0-rc.1", "2.0.0", True),
        ("^2.0.0-beta", "2.1.0-alpha", True),
        ("^2.0.0-beta", "3.0.0-rc.1", False),  # the derived bound excludes 3.0.0 prereleases
        ("~1.5.0-rc.1", "1.6.0-rc.1", False),
        ("1.5.0-rc.1", "1.5.0-rc.1", True),
        ("1.5.0-rc.1", "1.5.0", False),
    ],
)
def test_matches(text: str, version: str, expected: bool) -> None:
    spec = parse_spec(text)
    assert spec.matches(version) is expected
    assert spec.matches(semver.Version.parse(version)) is expected


def test_matches_refuses_named_tags() -> None:
    with pytest.raises(InvalidVersion, match="'stable' is a tag"):
        parse_spec("stable").matches("1.0.0")


def test_matches_refuses_bad_versions() -> None:
    with pytest.raises(InvalidVersion, match=r"'1\.0' is not a SemVer 2\.0 version"):
        parse_spec("^1").matches("1.0")


# ---------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("text", "valid"),
    [("1.2.3", True), ("0.0.0", True), ("1.2.3-rc.1+b.2", True), ("1.2", False),
     ("v1.2.3", False), ("01.2.3", False), ("1.2.3 ", False), ("", False), ("^1.2.3", False)],
)
def test_is_valid_version(text: str, valid: bool) -> None:
    assert is_valid_version(text) is valid


def test_parse_version_error_names_the_text() -> None:
    with pytest.raises(InvalidVersion, match=r"'1\.2' is not a SemVer 2\.0 version"):
        parse_version("1.2")


def test_sort_versions_uses_semver_precedence() -> None:
    given = ["1.10.0", "1.2.0", "1.2.0-rc.1", "1.2.0-alpha", "0.9.0", "1.2.0-rc.10", "1.2.0-rc.2"]
    assert sort_versions(given) == [
        "0.9.0", "1.2.0-alpha", "1.2.0-rc.1", "1.2.0-rc.2", "1.2.0-rc.10", "1.2.0", "1.10.0"
    ]


def test_sort_versions_rejects_bad_versions() -> None:
    with pytest.raises(InvalidVersion, match=r"'latest' is not a SemVer 2\.0 version"):
        sort_versions(["1.0.0", "latest"])


# ---------------------------------------------------------------- resolution

CANDIDATES = [
    Candidate("0.9.0"),
    Candidate("1.0.0"),
    Candidate("1.1.0"),
    Candidate("1.5.0"),
    Candidate("1.5.3", yanked=True),
    Candidate("1.10.0"),
    Candidate("2.0.0-beta"),
    Candidate("2.0.0-rc.1"),
    Candidate("3.0.0", yanked=True),
]
TAGS = {"stable": "1.5.3", "beta": "2.0.0-beta", "old": "0.9.0"}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, "1.10.0"),
        ("", "1.10.0"),
        ("latest", "1.10.0"),  # 3.0.0 is yanked, 2.0.0-* are prereleases
        ("*", "1.10.0"),
        ("1", "1.10.0"),
        ("1.5", "1.5.0"),  # 1.5.3 is yanked
        ("^1.1", "1.10.0"),
        ("~1.5.0", "1.5.0"),
        ("^0.9", "0.9.0"),
        (">=1.0,<1.5", "1.1.0"),
        (">=1.0,!=1.10.0", "1.5.0"),
        ("1.5.3", "1.5.3"),  # an exact pin resolves even when yanked
        ("==3.0.0", "3.0.0"),
        ("1.0.0", "1.0.0"),
        ("2.0.0-beta", "2.0.0-beta"),
        (">=2.0.0-beta", "2.0.0-rc.1"),  # the spec names a prerelease
        ("^2.0.0-alpha", "2.0.0-rc.1"),
        ("stable", "1.5.3"),  # a named tag points at one version, yanked or not
        ("beta", "2.0.0-beta"),
        ("old", "0.9.0"),
        (parse_spec("^1.1"), "1.10.0"),
    ],
)
def test_resolve(spec: str | VersionSpec | None, expected: str) -> None:
    assert resolve(spec, CANDIDATES, TAGS) == expected


def test_resolve_accepts_a_generator_and_ignores_a_latest_tag() -> None:
    candidates = (Candidate(v) for v in ["1.0.0", "1.2.0"])
    assert resolve("latest", candidates, {"latest": "1.0.0"}) == "1.2.0"


def test_resolve_build_metadata_exact_pin() -> None:
    assert resolve("1.0.0+b.2", [Candidate("1.0.0+b.2"), Candidate("0.1.0")]) == "1.0.0+b.2"


@pytest.mark.parametrize(
    ("spec", "message", "hint"),
    [
        (
            "^2",
            "no version of library/describe matches '^2' (available: 0.9.0, 1.0.0, 1.1.0, "
            "1.5.0, 1.10.0, 2.0.0-beta, 2.0.0-rc.1)",
            None,
        ),
        ("4.0.0", "no version of library/describe matches '4.0.0'", None),
        (">=3", "matches '>=3'", "3.0.0 would match but is yanked; pin an exact version"),
        ("~1.5.1", "matches '~1.5.1'", "1.5.3 would match but is yanked"),
        (">1.10,<3", "matches '>1.10,<3'", "prereleases (2.0.0-beta, 2.0.0-rc.1) are only"),
        (">=2.0.0-rc.2,<3", "matches '>=2.0.0-rc.2,<3'", None),
        (">=1.10.1", "matches '>=1.10.1'", "3.0.0 would match but is yanked"),  # yanks first
        ("<0.9,>0.1", "matches '<0.9,>0.1'", None),
    ],
)
def test_no_match_messages(spec: str, message: str, hint: str | None) -> None:
    with pytest.raises(NoMatchingVersion) as info:
        resolve(spec, CANDIDATES, TAGS, ref="library/describe")
    assert message in info.value.message
    if hint is None:
        assert info.value.hint is None
    else:
        assert info.value.hint is not None and hint in info.value.hint


def test_no_match_without_ref_or_candidates() -> None:
    with pytest.raises(NoMatchingVersion) as info:
        resolve("^1", [])
    assert info.value.message == "no version matches '^1' (no versions available)"


def test_no_match_when_everything_is_yanked() -> None:
    with pytest.raises(NoMatchingVersion) as info:
        resolve(None, [Candidate("1.0.0", yanked=True)], ref="alice/fn")
    assert info.value.message == "no version of alice/fn matches 'latest' (no versions available)"
    assert info.value.hint is not None and "1.0.0 would match but is yanked" in info.value.hint


def test_no_match_lists_only_the_newest_versions() -> None:
    many = [Candidate(f"1.{minor}.0") for minor in range(30)]
    with pytest.raises(NoMatchingVersion) as info:
        resolve("^2", many)
    message = info.value.message
    assert "available: 1.10.0, 1.11.0," in message
    assert "1.29.0; 10 older not shown" in message
    assert "1.9.0," not in message


@pytest.mark.parametrize(
    ("spec", "tags", "message", "hint"),
    [
        ("stabel", TAGS, "library/describe has no tag 'stabel' (tags: beta, old, stable)",
         "did you mean 'stable'?"),
        ("nightly", TAGS, "library/describe has no tag 'nightly' (tags: beta, old, stable)", None),
        ("stable", None, "library/describe has no tag 'stable' (it has no tags)", None),
        ("gone", {"gone": "9.9.9"},
         "tag 'gone' of library/describe points to 9.9.9, which is not available "
         "(available: 0.9.0,", None),
    ],
)
def test_tag_errors(
    spec: str, tags: dict[str, str] | None, message: str, hint: str | None
) -> None:
    with pytest.raises(NoMatchingVersion) as info:
        resolve(spec, CANDIDATES, tags, ref="library/describe")
    assert message in info.value.message
    assert info.value.hint == hint


def test_resolve_rejects_a_bad_spec_and_bad_candidates() -> None:
    with pytest.raises(InvalidVersion, match=r"invalid version spec '\^x'"):
        resolve("^x", CANDIDATES)
    with pytest.raises(InvalidVersion, match=r"'1\.0' is not a SemVer 2\.0 version"):
        resolve("^1", [Candidate("1.0")])


def test_a_version_is_parsed_once_and_bad_input_still_names_itself() -> None:
    """Guard (resolution parses every version of a function per request): the same text
    gives the same parsed object, from the cache; non-versions and non-text (unhashable
    too) are still InvalidVersion naming what was given."""
    assert parse_version("7.3.1-rc.2") is parse_version("7.3.1-rc.2")
    for bad in ("1.2", "v1.2.3", 1.1, ["1.0.0"], None):
        with pytest.raises(InvalidVersion, match=r"is not a SemVer 2\.0 version"):
            parse_version(bad)  # type: ignore[arg-type]
