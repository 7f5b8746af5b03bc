"""Function URIs and local references: parsing, canonical form and every error message."""

from __future__ import annotations

from pathlib import Path

import pytest

from fnhub.core.errors import InvalidURI
from fnhub.core.uri import FunctionURI, is_local_ref, local_path, parse_uri

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("text", "host", "namespace", "name", "version", "digest", "canonical"),
    [
        ("describe", None, "library", "describe", None, None, "hub://library/describe"),
        ("hub://describe", None, "library", "describe", None, None, "hub://library/describe"),
        ("describe:^1.2", None, "library", "describe", "^1.2", None,
         "hub://library/describe:^1.2"),
        ("hub://alice/my_fn:1.5", None, "alice", "my_fn", "1.5", None,
         "hub://alice/my_fn:1.5"),
        (f"alice/fn@{DIGEST}", None, "alice", "fn", None, DIGEST, f"hub://alice/fn@{DIGEST}"),
        (f"hub://alice/fn:1.0.0@{DIGEST}", None, "alice", "fn", "1.0.0", DIGEST,
         f"hub://alice/fn:1.0.0@{DIGEST}"),
        ("hub://localhost/fn", "localhost", "library", "fn", None, None,
         "hub://localhost/library/fn"),
        ("hub://localhost:8080/alice/fn:latest", "localhost:8080", "alice", "fn", "latest", None,
         "hub://localhost:8080/alice/fn:latest"),
        ("hub.example.com/team-a/train.v2:>=1.2,<2", "hub.example.com", "team-a", "train.v2",
         ">=1.2,<2", None, "hub://hub.example.com/team-a/train.v2:>=1.2,<2"),
        ("hub://10.0.0.5:443/fn:~1.5.2", "10.0.0.5:443", "library", "fn", "~1.5.2", None,
         "hub://10.0.0.5:443/library/fn:~1.5.2"),
        ("hub://[::1]:8080/fn", "[::1]:8080", "library", "fn", None, None,
         "hub://[::1]:8080/library/fn"),
        ("hub://a.b/c", "a.b", "library", "c", None, None, "hub://a.b/library/c"),
        ("hub://fn:stable", None, "library", "fn", "stable", None, "hub://library/fn:stable"),
        ("hub://fn:2.0.0-rc.1", None, "library", "fn", "2.0.0-rc.1", None,
         "hub://library/fn:2.0.0-rc.1"),
        ("hub://fn:*", None, "library", "fn", "*", None, "hub://library/fn:*"),
        ("hub://0/1", None, "0", "1", None, None, "hub://0/1"),
        ("a" * 64 + "/" + "b" * 64, None, "a" * 64, "b" * 64, None, None,
         f"hub://{'a' * 64}/{'b' * 64}"),
    ],
)
def test_parse(
    text: str,
    host: str | None,
    namespace: str,
    name: str,
    version: str | None,
    digest: str | None,
    canonical: str,
) -> None:
    uri = parse_uri(text)
    assert (uri.host, uri.namespace, uri.name, uri.version, uri.digest) == (
        host, namespace, name, version, digest
    )
    assert str(uri) == canonical
    assert parse_uri(canonical) == uri
    assert uri.ref == f"{namespace}/{name}"


def test_underscore_and_dash_stay_distinct() -> None:
    assert parse_uri("my_fn").name == "my_fn"
    assert parse_uri("my-fn").name == "my-fn"
    assert parse_uri("my_fn") != parse_uri("my-fn")


def test_spec_and_with_version() -> None:
    uri = parse_uri(f"hub://alice/fn:^1.2@{DIGEST}")
    assert uri.spec.constraints[0].op == ">="
    assert parse_uri("fn").spec.tag == "latest"
    pinned = uri.with_version("1.4.0")
    assert pinned.version == "1.4.0"
    assert pinned.digest == DIGEST
    assert str(pinned) == f"hub://alice/fn:1.4.0@{DIGEST}"
    assert uri.version == "^1.2"  # frozen: the original is unchanged
    with pytest.raises(InvalidURI, match="invalid version spec '=>1'"):
        uri.with_version("=>1")


def test_construction_validates() -> None:
    assert str(FunctionURI("fn", "alice", "hub.io", "1")) == "hub://hub.io/alice/fn:1"
    with pytest.raises(InvalidURI) as info:
        FunctionURI("Describe")
    assert str(info.value).startswith("invalid URI 'hub://library/Describe': invalid function name")
    with pytest.raises(InvalidURI, match="version '>=1, <2' contains whitespace"):
        FunctionURI("fn", version=">=1, <2")
    with pytest.raises(InvalidURI, match="empty version"):
        FunctionURI("fn", version="")
    with pytest.raises(InvalidURI, match="unsupported digest algorithm 'md5'"):
        FunctionURI("fn", digest="md5:abc")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "it is empty"),
        ("hub://", "missing function name"),
        ("hub://alice/", "empty part between '/'"),
        ("hub:///fn", "empty part between '/'"),
        ("hub://alice//fn", "empty part between '/'"),
        ("hub://:1.0", "missing function name"),
        ("hub://alice/:1.0", "missing function name"),
        (f"hub://@{DIGEST}", "missing function name"),
        ("hub://Describe",
         "invalid function name 'Describe': must be lowercase letters and digits"),
        ("hub://Alice/fn", "invalid namespace 'Alice': must be lowercase letters and digits"),
        ("hub://alice/my__fn", "invalid function name 'my__fn'"),
        ("hub://alice/-fn", "invalid function name '-fn'"),
        ("hub://alice/fn-", "invalid function name 'fn-'"),
        ("hub://al.ice.x/fn/extra/more", "too many parts in 'al.ice.x/fn/extra/more': expected"),
        ("hub://a/b/c", "too many parts in 'a/b/c': expected [HOST/][NAMESPACE/]NAME; 'a' is "
                        "not a host"),
        ("hub://hub.io/a/b/c", "too many parts in 'hub.io/a/b/c'"),
        ("hub://" + "a" * 65, "invalid function name 'aaaa"),
        ("hub://" + "a" * 65 + "/fn", "is longer than 64 characters"),
        ("hub://my fn", "it contains whitespace"),
        (" describe", "it contains whitespace"),
        ("describe\n", "it contains whitespace"),
        ("hub://fn:^1 ", "it contains whitespace"),
        ("hub://../fn", "'.' and '..' are not allowed"),
        ("hub://alice/..", "'.' and '..' are not allowed"),
        ("hub://alice/./fn", "'.' and '..' are not allowed"),
        ("./fn", "it is a local path, not a hub URI"),
        ("/abs/fn", "it is a local path, not a hub URI"),
        ("file:///abs/fn", "it is a local path, not a hub URI"),
        ("http://hub.io/fn", "unknown scheme 'http://' (function URIs start with hub://)"),
        ("HUB://fn", "unknown scheme 'HUB://'"),
        ("hub:/fn", "malformed scheme (write hub://)"),
        ("hub://hub://fn", "'://' appears more than once"),
        ("hub://fn:", "empty version after ':'"),
        ("hub://fn:=>1.2", "invalid version spec '=>1.2': unknown operator '=>'"),
        ("hub://fn:1.x", "invalid version spec '1.x': '1.x' is neither a version"),
        ("hub://fn:v1.2", "write the version without the leading 'v'"),
        ("hub://fn:1:2", "invalid version spec '1:2'"),
        ("hub://fn@", "empty digest after '@'"),
        (f"hub://fn@{DIGEST}@{DIGEST}", "it has more than one '@'"),
        ("hub://fn@sha512:" + "0" * 128, "unsupported digest algorithm 'sha512' (only sha256)"),
        ("hub://fn@" + "0" * 64, "must be sha256:<64 hex digits>"),
        ("hub://fn@sha256:" + "A" * 64, "hex digits must be lowercase"),
        ("hub://fn@sha256:abc", "must be 'sha256:' and 64 hex digits, got 3"),
        ("hub://fn@sha256:" + "g" * 64, "must be 'sha256:' and 64 hex digits, got 64"),
        ("hub://Hub.io/fn", "invalid host 'Hub.io': must be lowercase"),
        ("hub://localhost:/fn", "invalid host 'localhost:': empty port after ':'"),
        ("hub://localhost:http/fn", "port 'http' is not a number"),
        ("hub://localhost:0/fn", "port 0 is out of range"),
        ("hub://localhost:70000/fn", "port 70000 is out of range"),
        ("hub://a:b:c/fn", "invalid host 'a:b:c': must be a hostname"),
        ("hub://-bad.io/fn", "invalid host '-bad.io'"),
        ("hub://bad..io/fn", "invalid host 'bad..io'"),
        ("hub://fn:1.0/x", "invalid host 'fn:1.0': port '1.0' is not a number"),
    ],
)
def test_errors(text: str, problem: str) -> None:
    with pytest.raises(InvalidURI) as info:
        parse_uri(text)
    message = str(info.value)
    assert message.startswith(f"invalid URI {text!r}: "), message
    assert problem in message, message


def test_error_message_is_exact_for_uppercase() -> None:
    with pytest.raises(InvalidURI) as info:
        parse_uri("hub://Describe")
    assert str(info.value) == (
        "invalid URI 'hub://Describe': invalid function name 'Describe': must be lowercase "
        "letters and digits, separated by single '.', '_' or '-'"
    )
    assert info.value.code == "invalid_uri"


def test_non_text_uri() -> None:
    with pytest.raises(InvalidURI, match="must be text, got int"):
        parse_uri(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "local"),
    [
        (".", True), ("..", True), ("./fn", True), ("../fn", True), ("/abs/fn", True),
        ("~", True), ("~/fn", True), ("file:///abs/fn", True), ("file://localhost/x", True),
        ("fn", False), ("hub://fn", False), ("alice/fn", False), ("~alice/fn", False),
        (".fn", False), ("localhost:8080/fn", False), ("", False),
    ],
)
def test_is_local_ref(text: str, local: bool) -> None:
    assert is_local_ref(text) is local


def test_local_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    base = tmp_path.resolve()
    assert local_path(".") == base
    assert local_path("./fn") == base / "fn"
    assert local_path("./fn/../other") == base / "other"
    assert local_path("..") == base.parent
    assert local_path(str(base / "abs")) == base / "abs"
    assert local_path("~/fn") == base / "home" / "fn"
    assert local_path(f"file://{base}/my%20fn") == base / "my fn"
    assert local_path(f"file://localhost{base}/fn") == base / "fn"
    assert local_path("./fn").is_absolute()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fn", "'fn' is not a local path (write ./fn for a folder in the current directory)"),
        ("hub://fn", "'hub://fn' is not a local path"),
        ("file://", "invalid file URI 'file://': it needs an absolute path"),
        ("file://./fn", "invalid file URI 'file://./fn': it needs an absolute path"),
        ("file://remote/fn", "it needs an absolute path"),
    ],
)
def test_local_path_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidURI) as info:
        local_path(text)
    assert message in str(info.value)


@pytest.mark.parametrize("namespace", ["api", "v2", "static"])
def test_reserved_namespaces_are_refused(namespace: str) -> None:
    with pytest.raises(InvalidURI, match="reserved"):
        parse_uri(f"hub://{namespace}/fn")


# --------------------------------------------------------------- guards (issue #13 item 6)


def test_port_boundaries() -> None:
    assert parse_uri("hub://localhost:1/fn").host == "localhost:1"
    assert parse_uri("hub://localhost:65535/fn").host == "localhost:65535"
    with pytest.raises(InvalidURI, match=r"port 65536 is out of range \(1-65535\)"):
        parse_uri("hub://localhost:65536/fn")


@pytest.mark.parametrize("text", ["hub://host.example/ns/name/", "ns/name/", "hub://ns/name/"])
def test_a_trailing_slash_after_any_number_of_parts_is_refused(text: str) -> None:
    with pytest.raises(InvalidURI, match="empty part between '/'"):
        parse_uri(text)
