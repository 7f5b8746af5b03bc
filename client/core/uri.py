"""Function URIs, `hub://[HOST/][NAMESPACE/]NAME[:VERSION][@sha256:HEX]` (design §2),
and the local folder references that work wherever a URI does."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from fnhub.core.errors import InvalidURI, InvalidVersion
from fnhub.core.names import DEFAULT_NAMESPACE, name_problem, namespace_problem
from fnhub.core.versions import VersionSpec, parse_spec

SCHEME = "hub://"
FILE_SCHEME = "file://"
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}\Z")
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_HOST_RE = re.compile(
    rf"^(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])(?::(?P<port>[^:]*))?$"
)


@dataclass(frozen=True)
class FunctionURI:
    """A reference to a function on a hub; every instance is valid (checked on creation)."""

    name: str
    namespace: str = DEFAULT_NAMESPACE
    host: str | None = None
    version: str | None = None  # the spec as written ("^1.2", "1.5", "stable"); None = latest
    digest: str | None = None  # "sha256:<64 lowercase hex>"

    def __post_init__(self) -> None:
        if problem := _parts_problem(**dataclasses.asdict(self)):
            raise InvalidURI(f"invalid URI {str(self)!r}: {problem}")

    @property
    def ref(self) -> str:
        """The function's identity on any hub, `namespace/name`."""
        return f"{self.namespace}/{self.name}"

    @property
    def spec(self) -> VersionSpec:
        """The parsed version spec (`latest` when no version is given)."""
        return parse_spec(self.version)

    def with_version(self, version: str) -> FunctionURI:
        """The same function at another version spec, e.g. the exact version it resolved to."""
        return dataclasses.replace(self, version=version)

    def __str__(self) -> str:
        host = f"{self.host}/" if self.host else ""
        version = f":{self.version}" if self.version is not None else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{SCHEME}{host}{self.ref}{version}{digest}"


def parse_uri(text: str) -> FunctionURI:
    """Parse `hub://...` or the same without the scheme; errors quote `text`, name the problem."""
    if not isinstance(text, str):
        raise InvalidURI(f"a function URI must be text, got {type(text).__name__}")
    try:
        parts = _split(text)
    except _Malformed as exc:
        raise InvalidURI(f"invalid URI {text!r}: {exc}") from None
    if problem := _parts_problem(**parts):
        raise InvalidURI(f"invalid URI {text!r}: {problem}")
    return FunctionURI(**parts)


def is_local_ref(text: str) -> bool:
    """Whether `text` names a local function folder rather than a hub URI."""
    return text in (".", "..", "~") or text.startswith(("./", "../", "/", "~/", FILE_SCHEME))


def local_path(text: str) -> Path:
    """The absolute folder a local reference points at (`file://` URIs percent-decoded)."""
    if not is_local_ref(text):
        raise InvalidURI(
            f"{text!r} is not a local path (write ./{text} for a folder in the current directory)"
        )
    if text.startswith(FILE_SCHEME):
        rest = text[len(FILE_SCHEME) :]
        if rest.startswith("localhost/"):
            rest = rest[len("localhost") :]
        if not rest.startswith("/"):
            raise InvalidURI(
                f"invalid file URI {text!r}: it needs an absolute path, like file:///home/me/my_fn"
            )
        text = unquote(rest)
    return Path(text).expanduser().resolve()


class _Malformed(Exception):
    """The text cannot be cut into URI parts; parse_uri turns it into InvalidURI."""


def _split(text: str) -> dict[str, str | None]:
    """Cut the text into the URI's parts (checked afterwards by `_parts_problem`)."""
    if not text:
        raise _Malformed("it is empty")
    if any(ch.isspace() for ch in text):
        raise _Malformed("it contains whitespace")
    if is_local_ref(text):
        raise _Malformed("it is a local path, not a hub URI")
    body = text
    if "://" in text:
        scheme, body = text.split("://", 1)
        if scheme != "hub":
            raise _Malformed(f"unknown scheme {scheme + '://'!r} (function URIs start with hub://)")
        if "://" in body:
            raise _Malformed("'://' appears more than once")
    elif text.startswith("hub:/"):
        raise _Malformed("malformed scheme (write hub://)")
    body, at, digest = body.partition("@")
    if "@" in digest:
        raise _Malformed("it has more than one '@'")
    if at and not digest:
        raise _Malformed("empty digest after '@'")
    if not body:
        raise _Malformed("missing function name")
    components = body.split("/")
    if any(c in (".", "..") for c in components):
        raise _Malformed(
            "'.' and '..' are not allowed (a local folder is written ./path or /abs/path)"
        )
    if "" in components[:-1] or (len(components) > 1 and components[-1] == ""):
        raise _Malformed("empty part between '/' (check for a leading, trailing or doubled '/')")
    name, colon, version = components[-1].partition(":")
    if not name:
        raise _Malformed("missing function name")
    if colon and not version:
        raise _Malformed("empty version after ':'")
    parts: dict[str, str | None] = {
        "name": name,
        "version": version if colon else None,
        "digest": digest if at else None,
    }
    prefix = components[:-1]
    if prefix and _looks_like_host(prefix[0]):
        parts["host"] = prefix.pop(0)
    if len(prefix) > 1:
        why = "" if "host" in parts else (
            f"; {prefix[0]!r} is not a host, which contains '.' or ':' or is 'localhost'"
        )
        raise _Malformed(f"too many parts in {body!r}: expected [HOST/][NAMESPACE/]NAME{why}")
    if prefix:
        parts["namespace"] = prefix[0]
    return parts


def _looks_like_host(component: str) -> bool:
    """Docker's rule: a first component with '.' or ':' or equal to 'localhost' is a host."""
    return "." in component or ":" in component or component == "localhost"


def _parts_problem(
    name: str,
    namespace: str = DEFAULT_NAMESPACE,
    host: str | None = None,
    version: str | None = None,
    digest: str | None = None,
) -> str | None:
    """What is wrong with these URI parts, or None."""
    labelled = {"host": host, "namespace": namespace, "name": name, "version": version}
    for label, value in labelled.items():
        if isinstance(value, str) and any(ch.isspace() for ch in value):
            return f"{label} {value!r} contains whitespace"
    if host is not None and (problem := _host_problem(host)):
        return f"invalid host {host!r}: {problem}"
    if problem := namespace_problem(namespace):
        return f"invalid namespace {namespace!r}: {problem}"
    if problem := name_problem(name):
        return f"invalid function name {name!r}: {problem}"
    if version is not None:
        if version == "":
            return "empty version (leave it out for latest)"
        try:
            parse_spec(version)
        except InvalidVersion as exc:
            return exc.message
    if digest is not None:
        return _digest_problem(digest)
    return None


def _host_problem(host: str) -> str | None:
    match = _HOST_RE.fullmatch(host)
    if not match:
        if host.lower() != host:
            return "must be lowercase"
        return "must be a hostname or [IPv6] address with an optional :PORT"
    port = match["port"]
    if port is None:
        return None
    if not port:
        return "empty port after ':'"
    if not port.isdigit() or not port.isascii():
        return f"port {port!r} is not a number"
    if not 0 < int(port) < 65536:
        return f"port {port} is out of range (1-65535)"
    return None


def _digest_problem(digest: str) -> str | None:
    if DIGEST_RE.fullmatch(digest):
        return None
    algorithm, colon, hexdigest = digest.partition(":")
    if not colon:
        return f"invalid digest {digest!r}: must be sha256:<64 hex digits>"
    if algorithm != "sha256":
        return f"unsupported digest algorithm {algorithm!r} (only sha256)"
    if hexdigest.lower() != hexdigest:
        return f"invalid digest {digest!r}: hex digits must be lowercase"
    return f"invalid digest {digest!r}: must be 'sha256:' and 64 hex digits, got {len(hexdigest)}"
