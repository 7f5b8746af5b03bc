"""Acceptance: bad input gets a 4xx with a JSON error naming the problem, or a one-line CLI
error; never a 500 or a traceback, and never a row or file left behind.

One real hub serves every case; after all of them, the hub holds exactly what the good
publishes put there.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fnhub.core.packaging import DEFAULT_MAX_UNPACKED_SIZE
from fnhub.core.signing import generate_key, load_private_key, make_statement, sign_statement
from tests.helpers import CLI, HubProcess, start_hub, stored_files, write_function
from tests.s3 import Backend

pytestmark = pytest.mark.slow
MAX_PACKAGE = 1 << 20


class World:
    def __init__(self, root: Path, backend: Backend) -> None:
        self.root = root
        self.hub: HubProcess = start_hub(
            root / "hub", extra_env={"FNHUB_SERVER_MAX_PACKAGE_SIZE": str(MAX_PACKAGE),
                                     **backend.env},
            database_url=backend.database_url)
        admin = CLI(root / "admin", self.hub.url, self.hub.admin_token)
        self.admin = admin
        tokens = {u: admin.json("tokens", "create", u, "--scope", "publish:*", "--user", u)
                  for u in ("alice", "bob")}
        self.alice = CLI(root / "alice", self.hub.url, tokens["alice"]["token"])
        self.bob = CLI(root / "bob", self.hub.url, tokens["bob"]["token"])
        for user, cli in (("alice", self.alice), ("bob", self.bob)):
            cli.ok("keys", "generate")
            cli.ok("keys", "register", "--namespace", user)
        self.fn = write_function(root / "scale", name="scale", namespace="alice",
                                 version="1.0.0")
        self.alice.ok("publish", str(self.fn))
        self.key = load_private_key(self.alice.root / "config" / "keys" / "default.key")

    def blob_files(self) -> list[str]:
        return stored_files(self.hub)

    def publish_raw(self, package: bytes, *, manifest: str | None = None,
                    envelope: str | None = None, name: str = "scale", version: str = "9.0.0",
                    token: str | None = None) -> httpx.Response:
        """A publish request built by hand, signed by alice's registered key unless told."""
        manifest = manifest if manifest is not None else (self.fn / "function.yaml").read_text(
        ).replace("version: 1.0.0", f"version: {version}")
        if envelope is None:
            digest = "sha256:" + hashlib.sha256(package).hexdigest()
            statement = make_statement(f"alice/{name}@{version}", digest, predicate={})
            envelope = json.dumps(sign_statement(statement, self.key).model_dump())
        files = {"manifest": (None, manifest), "envelope": (None, envelope),
                 "package": ("p.tar.gz", package, "application/gzip")}
        return httpx.post(f"{self.hub.url}/api/v1/functions/alice/{name}/versions", files=files,
                          headers={"Authorization": f"Bearer {token or self.alice.token}"})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory,
          hub_backend: Backend) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("bad"), hub_backend)
    yield w
    w.hub.stop()


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _valid_members(world: World) -> list[tuple[tarfile.TarInfo, bytes]]:
    manifest = (world.fn / "function.yaml").read_text().replace("1.0.0", "9.0.0")
    return [_file("function.yaml", manifest.encode()),
            _file("scale.py", (world.fn / "scale.py").read_bytes())]


def _bomb(world: World) -> bytes:
    """600 MiB of zeros (a few hundred KiB compressed) under a truthful tar header."""
    info = tarfile.TarInfo("zeros.bin")
    info.size = 600 << 20
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
        tar = tarfile.open(fileobj=gz, mode="w")  # noqa: SIM115 - closing it would end the tar
        for member, data in _valid_members(world):
            tar.addfile(member, io.BytesIO(data))
        gz.write(info.tobuf(tarfile.PAX_FORMAT))
        zeros = bytes(1 << 20)
        for _ in range(600):
            gz.write(zeros)
    return buffer.getvalue()


def _search(query: str) -> Callable[[World], httpx.Response]:
    """A search with a raw query string, so bad values reach the hub as typed."""
    return lambda w: httpx.get(f"{w.hub.url}/api/v1/functions?{query}")


def _as_alice(method: str, path: str, *, headers: dict[str, str] | None = None,
              **kwargs: Any) -> Callable[[World], httpx.Response]:
    """A request to the hub's API with alice's token."""
    return lambda w: httpx.request(
        method, f"{w.hub.url}/api/v1/{path}",
        headers={"Authorization": f"Bearer {w.alice.token}", **(headers or {})}, **kwargs)


# Each case: the request, the status it must get, and a fragment of the error message that
# names the problem (the offending field, value, path or limit); compared case-insensitively.
HTTP_CASES: dict[str, tuple[Callable[[World], httpx.Response], int, str]] = {
    "search limit 0": (_search("limit=0"), 400,
                       "'limit': input should be greater than or equal to 1"),
    "search limit huge": (_search("limit=100000"), 400,
                          "'limit': input should be less than or equal to 100"),
    "search bad sort": (_search("sort=bogus"), 400, "'sort': input should be 'relevance'"),
    "search negative offset": (_search("offset=-1"), 400,
                               "'offset': input should be greater than or equal to 0"),
    "search limit not a number": (_search("limit=ab"), 400,
                                  "'limit': input should be a valid integer"),
    "bad namespace in path": (lambda w: httpx.get(f"{w.hub.url}/api/v1/functions/BAD NS/x"),
                              400, "invalid namespace 'BAD NS'"),
    "unknown function": (lambda w: httpx.get(f"{w.hub.url}/api/v1/functions/alice/scael"),
                         404, "no function alice/scael"),
    "bad version spec": (lambda w: httpx.get(
        f"{w.hub.url}/api/v1/functions/alice/scale/resolve", params={"version": "^^1"}),
        400, "invalid version spec '^^1'"),
    "unknown version": (lambda w: httpx.get(
        f"{w.hub.url}/api/v1/functions/alice/scale/versions/7.0.0"),
        404, "no version alice/scale@7.0.0"),
    "invalid version in path": (lambda w: httpx.get(
        f"{w.hub.url}/api/v1/functions/alice/scale/versions/not-a-version/package"),
        400, "'not-a-version' is not a semver"),
    "archive with ..": (lambda w: w.publish_raw(
        _tar([*_valid_members(w), _file("../evil.py", b"x")])),
        400, "member '../evil.py': '..' in path"),
    "archive with absolute path": (lambda w: w.publish_raw(
        _tar([*_valid_members(w), _file("/etc/evil", b"x")])),
        400, "member '/etc/evil': absolute path"),
    "archive with symlink out": (lambda w: w.publish_raw(
        _tar([*_valid_members(w), _link("data", "../../etc")])),
        400, "symlink data -> ../../etc: points outside the package"),
    "archive with hardlink out": (lambda w: w.publish_raw(
        _tar([*_valid_members(w), _link("h", "/etc/passwd", tarfile.LNKTYPE)])),
        400, "hardlink h leaves the package: hardlink target '/etc/passwd'"),
    "archive with device": (lambda w: w.publish_raw(_tar([*_valid_members(w), (
        lambda i: (setattr(i, "type", tarfile.CHRTYPE) or i, None))(tarfile.TarInfo("dev"))])),
        400, "dev: character device members are not allowed"),
    "gzip bomb": (lambda w: w.publish_raw(_bomb(w)), 400,
                  f"zeros.bin: archive expands to more than {DEFAULT_MAX_UNPACKED_SIZE} bytes"),
    "not a gzip": (lambda w: w.publish_raw(b"this is not an archive"), 400,
                   "not a valid .tar.gz"),
    "oversize upload": (lambda w: w.publish_raw(os.urandom(MAX_PACKAGE + 4096)), 413,
                        "larger than the hub's limit of 1 MiB"),
    "package without function.yaml": (lambda w: w.publish_raw(_tar([_file("a.py", b"")])),
                                      422, "the package has no function.yaml"),
    "manifest differs from package": (lambda w: w.publish_raw(
        _tar(_valid_members(w)),
        manifest=(w.fn / "function.yaml").read_text().replace("1.0.0", "9.0.0").replace(
            "Scale the", "Totally different")),
        422, "differs from the package's function.yaml (metadata.description)"),
    "manifest malformed yaml": (lambda w: w.publish_raw(_tar(_valid_members(w)),
                                                        manifest="metadata: [unclosed"),
                                422, "manifest: malformed yaml at line 1"),
    "manifest unknown type": (lambda w: w.publish_raw(_tar(_valid_members(w)), manifest=(
        w.fn / "function.yaml").read_text().replace("type: float", "type: strng")),
        422, "spec.inputs[1].type: unknown type 'strng'"),
    "envelope not json": (lambda w: w.publish_raw(_tar(_valid_members(w)), envelope="{nope"),
                          400, "envelope is not valid json"),
    "envelope by unregistered key": (lambda w: w.publish_raw(
        _tar(_valid_members(w)), envelope=json.dumps(sign_statement(
            make_statement("alice/scale@9.0.0", "sha256:" + "0" * 64, predicate={}),
            generate_key()).model_dump())),
        400, "which is not trusted"),
    "envelope names another digest": (lambda w: w.publish_raw(
        _tar(_valid_members(w)), envelope=json.dumps(sign_statement(
            make_statement("alice/scale@9.0.0", "sha256:" + "1" * 64, predicate={}),
            w.key).model_dump())),
        400, "differs from the signed digest sha256:" + "1" * 64),
    "publish without package field": (_as_alice(
        "POST", "functions/alice/scale/versions", files={"manifest": (None, "x")}),
        400, "publish form lacks field(s): envelope, package"),
    "publish with wrong token": (lambda w: w.publish_raw(_tar(_valid_members(w)),
                                                         token="fnhub_wrong"),
                                 401, "invalid token"),
    "publish without token": (lambda w: httpx.post(
        f"{w.hub.url}/api/v1/functions/alice/scale/versions", files={"manifest": (None, "x")}),
        401, "needs an api token"),
    "publish into another namespace": (lambda w: w.publish_raw(_tar(_valid_members(w)),
                                                               token=w.bob.token),
                                       403, "namespace 'alice' belongs to another user"),
    "token body malformed json": (_as_alice(
        "POST", "tokens", content=b"{not json", headers={"Content-Type": "application/json"}),
        400, "request body is not valid json"),
    "token with admin scope by non-admin": (_as_alice(
        "POST", "tokens", json={"name": "x", "scopes": ["admin"]}),
        403, "lacks the scope 'admin'"),
    "namespace with bad name": (_as_alice("POST", "namespaces", json={"name": "Bad NS"}),
                                400, "invalid namespace 'Bad NS'"),
    "claim library namespace": (_as_alice("POST", "namespaces", json={"name": "library"}),
                                403, "namespace 'library' is reserved"),
    "yank without reason": (_as_alice(
        "POST", "functions/alice/scale/versions/1.0.0/yank", json={}),
        400, "body field 'reason': field required"),
    "tag named like a version": (_as_alice(
        "PUT", "functions/alice/scale/tags/1.2.3", json={"version": "1.0.0"}),
        400, "invalid tag '1.2.3'"),
    "register garbage key": (_as_alice(
        "POST", "keys", json={"namespace": "alice", "public_key": "garbage"}),
        400, "public key is not valid base64"),
}


@pytest.mark.parametrize("case", sorted(HTTP_CASES))
def test_http_bad_input(world: World, case: str) -> None:
    send, status, fragment = HTTP_CASES[case]
    before = world.blob_files()
    response = send(world)
    assert response.status_code == status, (case, response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"], body
    assert fragment.lower() in body["error"]["message"].lower(), body
    assert "Traceback" not in response.text
    assert world.blob_files() == before, "a rejected request left files behind"


def test_search_syntax_in_the_query_is_just_text(world: World) -> None:
    response = httpx.get(f"{world.hub.url}/api/v1/functions",
                         params={"q": 'scale" OR NEAR( * -'})
    assert response.status_code == 200, response.text


def _folder(world: World, name: str, transform: Callable[[str], str]) -> Path:
    folder = write_function(world.root / "cases" / name, name="scale", namespace="alice",
                            version="2.0.0")
    manifest = folder / "function.yaml"
    manifest.write_text(transform(manifest.read_text()))
    return folder


# Cases the client refuses before any request: they run once (on the SQLite hub), since no
# backend is involved; the hub still must hold nothing new afterwards.
CLIENT_CASES: dict[str, tuple[Callable[[World], list[str]], str]] = {
    "uppercase name": (lambda w: ["install", "hub://Bad"], "invalid function name 'Bad'"),
    "too many components": (lambda w: ["install", "hub://a.b/c/d/e"], "invalid URI"),
    "bad version spec": (lambda w: ["install", "hub://alice/scale:^x"], "version"),
    "bad digest algorithm": (lambda w: ["install", "hub://alice/scale@md5:abc"], "digest"),
    "malformed yaml": (lambda w: ["publish", str(_folder(w, "yaml", lambda t: t + "  : [\n"))],
                       "malformed YAML"),
    "unknown field": (lambda w: ["publish", str(_folder(
        w, "field", lambda t: t.replace("  license:", "  licence: x\n  license:")))],
        "metadata.licence: unknown field"),
    "unknown type": (lambda w: ["publish", str(_folder(
        w, "type", lambda t: t.replace("type: float", "type: strng")))],
        "spec.inputs[1].type: unknown type 'strng'"),
    "invalid version": (lambda w: ["publish", str(_folder(
        w, "version", lambda t: t.replace("version: 2.0.0", "version: '2.0'")))],
        "metadata.version"),
    "invalid name": (lambda w: ["publish", str(_folder(
        w, "name", lambda t: t.replace("name: scale", "name: Scale_Fn")))], "metadata.name"),
    "missing entrypoint": (lambda w: ["publish", str(_folder(
        w, "entry", lambda t: t.replace("  entrypoint: scale.py:scale\n", "")))],
        "spec.entrypoint: required field is missing"),
    "no function.yaml": (lambda w: ["publish", str(w.root)], "no function.yaml"),
    "bad -p value": (lambda w: ["run", str(w.fn), "-p", "factor=abc", "-i",
                                f"table={w.fn / 'scale.py'}"], "expects float, got 'abc'"),
    "missing input file": (lambda w: ["run", str(w.fn), "-i", "table=/nope.csv"],
                           "does not exist"),
    "bad -p syntax": (lambda w: ["run", str(w.fn), "-p", "factor"], "expected NAME=VALUE"),
    "unknown env": (lambda w: ["run", str(w.fn), "--env", "docker", "-i",
                               f"table={w.fn / 'scale.py'}"],
                    "invalid value for '--env': 'docker' is not one of"),
    "unknown key": (lambda w: ["keys", "register", "nokey", "--namespace", "alice"],
                    "no key named 'nokey'"),
    "bad key id": (lambda w: ["keys", "trust", "alice", "zzz"], "invalid key id"),
    "bad key name": (lambda w: ["keys", "generate", "--name", "../x"], "invalid key name"),
    "yank a range": (lambda w: ["yank", "hub://alice/scale:^1", "--reason", "x"],
                     "must name an exact version"),
    "login bad url": (lambda w: ["login", "--hub", "ftp://x", "--token", "t"],
                      "invalid hub URL"),
    "init over existing": (lambda w: ["init", str(w.fn)], "exists already"),
    "pack without manifest": (lambda w: ["pack", str(w.root / "admin")], "function.yaml"),
}

# Cases the hub answers (lookups, conflicts, ownership): on every backend.
CLI_CASES: dict[str, tuple[Callable[[World], list[str]], str]] = {
    "unknown function with hint": (lambda w: ["show", "hub://alice/scael"], "scale"),
    "no matching version": (lambda w: ["install", "hub://alice/scale:^5"], "^5"),
    "republish existing version": (lambda w: ["publish", str(w.fn)], "1.0.0"),
    "another user's namespace": (lambda w: ["--as-bob", "publish", str(w.fn)], "alice"),
}


def _refused(world: World, make_args: Callable[[World], list[str]], message: str) -> None:
    args = make_args(world)
    cli = world.alice
    if args[0] == "--as-bob":
        cli, args = world.bob, args[1:]
    before = world.blob_files()
    output = cli.fails(*args, match=message)
    assert len([line for line in output.splitlines() if line.startswith("error:")]) == 1
    assert world.blob_files() == before


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_bad_input(world: World, case: str) -> None:
    _refused(world, *CLI_CASES[case])


@pytest.mark.parametrize("hub_backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("case", sorted(CLIENT_CASES))
def test_client_refuses_bad_input(world: World, case: str) -> None:
    _refused(world, *CLIENT_CASES[case])


def test_nothing_was_left_behind(world: World) -> None:
    """After every case ran: one published version, one blob, no temp files anywhere."""
    versions = world.alice.json("show", "hub://alice/scale")["function"]["versions"]
    assert [v["version"] for v in versions] == ["1.0.0"]
    assert len(world.blob_files()) == 1, world.blob_files()


def test_there_are_at_least_forty_cases() -> None:
    assert len(HTTP_CASES) + len(CLI_CASES) + len(CLIENT_CASES) >= 40
