"""The attack suite of issue #13: a hostile mirror in front of a real hub tries to make the
client install or run something other than what it asked for.

Each attack goes through the real `hub` CLI and through `fnhub.import_function`, both in
subprocesses, and must end with a non-zero exit, a one-line message naming what failed, no
traceback, and nothing written: no install, no package, no file outside FNHUB_HOME (lock files
and the cache of verified indexes aside). SECURITY.md lists which check each test guards.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fnhub.core.signing import generate_key, key_id, make_statement, public_key_to_b64
from fnhub.core.signing import sign_statement as sign
from tests.helpers import CLI, HubProcess, publisher, start_hub, write_function
from tests.security.mirror import Answer, Attack, Mirror, Request

pytestmark = pytest.mark.slow
API = "/api/v1"
SDK = """\
import sys
from fnhub.core.errors import FnhubError
import fnhub
uri, *rest = sys.argv[1:]
try:
    fn = fnhub.import_function(uri, insecure_skip_verify="--insecure-skip-verify" in rest)
    if "--run" in rest:
        fn(table=rest[-1])
except FnhubError as exc:
    print(f"error: {exc.message}", file=sys.stderr)
    if exc.hint:
        print(f"hint: {exc.hint}", file=sys.stderr)
    sys.exit(1)
print(f"imported {fn.manifest.ref}@{fn.version} from {fn.source}")
"""
# The client's clock moved 10 minutes ahead of the hub's (the freeze test's injected clock).
LATER = """\
import sys
from datetime import timedelta
import fnhub.index
real = fnhub.index._utcnow
fnhub.index._utcnow = lambda: real() + timedelta(minutes=10)
"""
EVIL = "../../../../../escape"
Change = Callable[[Any], None]


@dataclass
class World:
    """A real hub with alice's and mallory's functions, and what attackers recorded."""

    hub: HubProcess
    root: Path
    alice_key: str
    old_index: Answer  # alice/victim's signed index before 1.1.0 was published


def _publish(cli: CLI, root: Path, ns: str, name: str, version: str, extra: str = "") -> None:
    cli.ok("publish", str(write_function(root / "src", name=name, namespace=ns,
                                         version=version, extra=extra)))


def _world(root: Path, extra_env: dict[str, str] | None = None) -> World:
    hub = start_hub(root / "hub", extra_env=extra_env)
    alice = publisher(root, hub, "alice")
    mallory = publisher(root, hub, "mallory")
    _publish(alice, root, "alice", "victim", "1.0.0")
    _publish(alice, root, "alice", "other", "1.0.0")
    _publish(mallory, root, "mallory", "victim", "1.0.0", extra="MALLORY_WAS_HERE = True")
    recorder = Mirror(hub.url)
    old_index = recorder.get(f"{API}/functions/alice/victim/index")
    recorder.close()
    _publish(alice, root, "alice", "victim", "1.1.0")
    alice_key = alice.json("keys", "list")["keys"][0]["keyid"]
    return World(hub, root, alice_key, old_index)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = _world(tmp_path_factory.mktemp("attacks"))
    yield w
    w.hub.stop()


@pytest.fixture
def mirror(world: World) -> Iterator[Mirror]:
    m = Mirror(world.hub.url)
    yield m
    m.close()


@pytest.fixture
def user(tmp_path: Path, mirror: Mirror) -> CLI:
    """A fresh client that knows the hub only through the mirror."""
    return CLI(tmp_path / "user", mirror.url)


# --------------------------------------------------------------------------- checks


def _tree(root: Path) -> dict[str, str]:
    """Every file under `root` with its content's hash, except lock files and the cache of
    verified indexes (written only after an index verifies) and the trust pins."""
    skip = ("/home/locks/", "/home/index/", "/config/trust.json")
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not any(part in f"/{rel}" for part in skip):
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _sdk(cli: CLI, uri: str, *args: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    cli.root.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, "-c", prelude + SDK, uri, *args], env=cli.env,
                          cwd=cli.root, capture_output=True, text=True, timeout=300, check=False)


def _failed(proc: subprocess.CompletedProcess[str], match: str, what: str) -> str:
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"{what} unexpectedly succeeded:\n{output}"
    assert "Traceback" not in output, output
    assert match.lower() in output.lower(), f"{match!r} not in the output of {what}:\n{output}"
    return output


def refused(cli: CLI, uri: str, match: str, *, prelude: str = "") -> None:
    """`hub install URI` and `import_function(URI)` both fail naming `match`, writing nothing
    inside or outside FNHUB_HOME."""
    before = _tree(cli.root.parent)
    if prelude:
        proc = subprocess.run([sys.executable, "-c", prelude + "from fnhub.cli.main import run\n"
                               "sys.argv[0] = 'hub'\nrun()", "install", uri],
                              env=cli.env, cwd=cli.root, capture_output=True, text=True,
                              timeout=300, check=False)
    else:
        proc = cli("install", uri)
    _failed(proc, match, f"hub install {uri}")
    _failed(_sdk(cli, uri, prelude=prelude), match,
            f"import_function({uri!r})")
    assert _tree(cli.root.parent) == before
    assert not list(cli.root.parent.parent.rglob("escape")) and not Path("/escape").exists()


# --------------------------------------------------------------------------- attacks


def _redirect(old: str, new: str) -> Attack:
    """Answer every request about function `old` with the hub's answer about `new`."""
    def attack(request: Request, mirror: Mirror) -> Answer | None:
        path = request.path
        if path.startswith(f"{API}/functions/{old}/") or path.startswith(f"{API}/functions/{old}?"):
            return mirror.forward(request, path.replace(f"/functions/{old}", f"/functions/{new}"))
        old_ns, new_ns = old.split("/")[0], new.split("/")[0]
        if path.startswith(f"{API}/keys?namespace={old_ns}"):
            return mirror.forward(request, f"{API}/keys?namespace={new_ns}")
        return None
    return attack


def _hide_index(request: Request, mirror: Mirror) -> Answer | None:
    if request.path.startswith(f"{API}/index-key") or request.path.split("?")[0].endswith(
            "/index"):
        return Answer(404, b'{"error": {"code": "not_found", "message": "no such page"}}',
                      {"content-type": "application/json"})
    return None


def _chain(*attacks: Attack) -> Attack:
    def attack(request: Request, mirror: Mirror) -> Answer | None:
        for one in attacks:
            answer = one(request, mirror)
            if answer is not None:
                return answer
        return None
    return attack


def test_cross_namespace_substitution(user: CLI, mirror: Mirror) -> None:
    user.ok("install", "hub://alice/other:1.0.0")
    mirror.attack = _redirect("alice/victim", "mallory/victim")
    refused(user, "hub://alice/victim", "answered with the signed index of mallory/victim")


def test_cross_namespace_substitution_before_the_index_key_is_pinned(
        user: CLI, mirror: Mirror) -> None:
    """A hub without an index (or a mirror hiding it from a new client) answers `/resolve`:
    its answer must still name what was asked for."""
    mirror.attack = _chain(_hide_index, _redirect("alice/victim", "mallory/victim"))
    refused(user, "hub://alice/victim", "asked for alice/victim, the hub answered with "
                                        "mallory/victim")


def test_same_namespace_substitution(user: CLI, mirror: Mirror) -> None:
    """Signed index honest, but the version's attestation and package are another function's."""
    user.ok("install", "hub://alice/other:1.0.0")
    def attack(request: Request, m: Mirror) -> Answer | None:
        prefix = f"{API}/functions/alice/victim/versions/"
        if request.path.startswith(prefix):
            return m.forward(request, request.path.replace("/victim/", "/other/"))
        return None
    mirror.attack = attack
    refused(user, "hub://alice/victim:1.0.0", "has no subject alice/victim@1.0.0")


def _resolve_to(version: str) -> Attack:
    """Answer every `/resolve` of alice/victim with the resolution of `version`."""
    def attack(request: Request, mirror: Mirror) -> Answer | None:
        if request.path.startswith(f"{API}/functions/alice/victim/resolve"):
            return mirror.forward(request, f"{API}/functions/alice/victim/resolve?version="
                                           f"{version}")
        return None
    return attack


@pytest.mark.parametrize(("spec", "match"), [
    ("1.1.0", "asked for alice/victim:1.1.0 exactly, the hub answered version 1.0.0"),
    ("^1.1", "answered version 1.0.0, which is outside that range"),
])
def test_wrong_version(user: CLI, mirror: Mirror, spec: str, match: str) -> None:
    mirror.attack = _chain(_hide_index, _resolve_to("1.0.0"))
    refused(user, f"hub://alice/victim:{spec}", match)


def test_rollback_of_latest_by_replaying_an_older_index(world: World, user: CLI,
                                                        mirror: Mirror) -> None:
    assert "alice/victim@1.1.0" in user.ok("install", "hub://alice/victim")
    def attack(request: Request, m: Mirror) -> Answer | None:
        if request.path.startswith(f"{API}/functions/alice/victim/index"):
            return world.old_index
        return None
    mirror.attack = attack
    user.ok("uninstall", "hub://alice/victim")
    refused(user, "hub://alice/victim", "replaying an older index (rollback)")


def test_freeze_with_an_expired_index(tmp_path_factory: pytest.TempPathFactory,
                                      tmp_path: Path) -> None:
    """The hub's indexes expire within a minute of signing; a mirror keeps serving one it
    recorded. With the client's clock 10 minutes on, that index has expired beyond the allowed
    5 minutes of skew (so would a fresh one: the clock is the test's lever, not the hub)."""
    world = _world(tmp_path_factory.mktemp("freeze"), {"FNHUB_SERVER_INDEX_EXPIRY": "30s"})
    mirror = Mirror(world.hub.url)
    try:
        user = CLI(tmp_path / "user", mirror.url)
        assert "alice/other@1.0.0" in user.ok("install", "hub://alice/other")
        frozen = mirror.get(f"{API}/functions/alice/victim/index")
        assert json.loads(frozen.body)["signatures"]
        def attack(request: Request, m: Mirror) -> Answer | None:
            if request.path.startswith(f"{API}/functions/alice/victim/index"):
                return frozen
            return None
        mirror.attack = attack
        refused(user, "hub://alice/victim", "this machine's clock says", prelude=LATER)
    finally:
        mirror.close()
        world.hub.stop()


def test_mirror_hiding_the_index_endpoints(user: CLI, mirror: Mirror) -> None:
    """Once the hub's index key is pinned, no unsigned `/resolve` answer is used."""
    user.ok("install", "hub://alice/other:1.0.0")
    mirror.attack = _chain(_hide_index, _resolve_to("1.0.0"))
    refused(user, "hub://alice/victim", "serves no signed index of alice/victim")


def _rewrite_json(path: str, change: Change) -> Attack:
    """Answer `path` with the hub's JSON answer, altered by `change(data)`."""
    def attack(request: Request, mirror: Mirror) -> Answer | None:
        if not request.path.startswith(path):
            return None
        answer = mirror.forward(request)
        data = json.loads(answer.body)
        change(data)
        return Answer(answer.status, json.dumps(data).encode(), {"content-type":
                                                                 "application/json"})
    return attack


def _set(key: str, value: object) -> Change:
    def change(data: Any) -> None:
        for item in data if isinstance(data, list) else [data]:
            item[key] = value
    return change


def _set_in_index(field: str) -> Change:
    """Rewrite one field of the signed index payload (re-encoded, signature kept)."""
    def change(envelope: Any) -> None:
        payload = json.loads(base64.b64decode(envelope["payload"]))
        if field == "versions":
            payload["versions"] = {EVIL: next(iter(payload["versions"].values()))}
        elif field == "tags":
            payload["tags"] = {"stable": EVIL}
        else:
            payload[field] = EVIL
        envelope["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    return change


RESOLVE = f"{API}/functions/alice/victim/resolve"
INDEX = f"{API}/functions/alice/victim/index"
TRAVERSALS = {
    "resolve.namespace": (True, RESOLVE, _set("namespace", EVIL), "the hub answered with"),
    "resolve.name": (True, RESOLVE, _set("name", EVIL), "the hub answered with"),
    "resolve.version": (True, RESOLVE, _set("version", EVIL), "malformed version"),
    "resolve.digest": (True, RESOLVE, _set("digest", "sha256:" + EVIL), "malformed digest"),
    "keys.namespace": (False, f"{API}/keys", _set("namespace", EVIL), "answered with a key of"),
    "keys.keyid": (False, f"{API}/keys", _set("keyid", EVIL), "its bytes have id"),
    "index.function": (False, INDEX, _set_in_index("function"), "does not verify"),
    "index.versions": (False, INDEX, _set_in_index("versions"), "does not verify"),
    "index.tags": (False, INDEX, _set_in_index("tags"), "does not verify"),
}


@pytest.mark.parametrize("field", sorted(TRAVERSALS))
def test_path_traversal_through_every_name_field(user: CLI, mirror: Mirror, field: str) -> None:
    before_pin, path, change, match = TRAVERSALS[field]
    if not before_pin:
        user.ok("install", "hub://mallory/victim:1.0.0")  # pins the hub's index key only
    attack = _rewrite_json(path, change)
    mirror.attack = _chain(_hide_index, attack) if before_pin else attack
    refused(user, "hub://alice/victim:1.0.0", match)


def _attacker_attestation(attacker: Ed25519PrivateKey) -> Attack:
    """alice/victim@1.0.0's attestation re-signed by the attacker's key: the statement names
    the right package and digest, only the signer is wrong."""
    def attack(request: Request, mirror: Mirror) -> Answer | None:
        if not request.path.startswith(f"{API}/functions/alice/victim/versions/1.0.0/"
                                       "attestations"):
            return None
        digest = json.loads(mirror.get(f"{API}/functions/alice/victim/versions/1.0.0").body)[
            "package"]["digest"]
        statement = make_statement("alice/victim@1.0.0", digest, predicate={})
        envelope = sign(statement, attacker).model_dump()
        return Answer(200, json.dumps({"envelopes": [envelope]}).encode(),
                      {"content-type": "application/json"})
    return attack


def _attacker_keys(attacker: Ed25519PrivateKey) -> Attack:
    public = attacker.public_key()
    info = {"keyid": key_id(public), "namespace": "alice", "public_key": public_key_to_b64(public),
            "name": "default", "created_at": "2026-01-01T00:00:00Z"}
    def attack(request: Request, mirror: Mirror) -> Answer | None:
        if request.path.startswith(f"{API}/keys?namespace=alice"):
            return Answer(200, json.dumps([info]).encode(), {"content-type": "application/json"})
        return None
    return attack


def test_key_swap_on_first_sight_of_the_namespace(world: World, user: CLI,
                                                  mirror: Mirror) -> None:
    """The hub's index key is pinned, alice's keys are not yet: the mirror shows its own key
    as alice's. The signed index lists alice's real keys, so the swap is refused."""
    user.ok("install", "hub://mallory/victim:1.0.0")
    attacker = generate_key()
    mirror.attack = _chain(_attacker_keys(attacker), _attacker_attestation(attacker))
    refused(user, "hub://alice/victim:1.0.0", "its signed index does not list it")


def test_key_swap_after_the_namespace_keys_are_pinned(world: World, user: CLI,
                                                      mirror: Mirror) -> None:
    user.ok("install", "hub://alice/other:1.0.0")
    attacker = generate_key()
    mirror.attack = _attacker_attestation(attacker)
    refused(user, "hub://alice/victim:1.0.0",
            f"hub keys trust alice {key_id(attacker.public_key())}")


def test_unverified_install_is_never_reused_silently(world: World, user: CLI,
                                                     mirror: Mirror, tmp_path: Path) -> None:
    attacker = generate_key()
    mirror.attack = _attacker_attestation(attacker)
    installed = user.ok("install", "--insecure-skip-verify", "hub://alice/victim:1.0.0")
    assert "UNVERIFIED" in installed
    data = tmp_path / "data.csv"
    data.write_text("value\n1\n")
    before = _tree(user.root.parent)
    # without the flag, every command verifies it first, and refuses
    untrusted = "which you do not trust for namespace 'alice'"
    user.fails("install", "hub://alice/victim:1.0.0", match=untrusted)
    user.fails("run", "hub://alice/victim:1.0.0", "-i", f"table={data}", match=untrusted)
    _failed(_sdk(user, "hub://alice/victim:1.0.0"), untrusted, "import_function")
    # offline it cannot be verified: refused
    offline = CLI(user.root, mirror.url, offline=True)
    offline.fails("run", "hub://alice/victim:1.0.0", "-i", f"table={data}",
                  match="installed without verification")
    _failed(_sdk(offline, "hub://alice/victim:1.0.0"), "installed without verification",
            "import_function offline")
    assert _tree(user.root.parent) == before
    # with the hub honest again, the next command verifies it and records it as verified
    mirror.attack = None
    assert "signed by" in user.ok("install", "hub://alice/victim:1.0.0")
    [record] = user.json("list")
    assert record["keyid"] == world.alice_key


def test_key_rotation_does_not_lock_out_older_versions(tmp_path: Path, world: World,
                                                       user: CLI) -> None:
    rota = publisher(tmp_path, world.hub, "rota")
    _publish(rota, tmp_path, "rota", "fn", "1.0.0")
    rota.ok("tag", "hub://rota/fn:1.0.0", "stable")
    assert "rota/fn@1.0.0" in user.ok("install", "hub://rota/fn:1.0.0")
    new_key = rota.json("keys", "generate", "--name", "new")["keyid"]
    rota.ok("keys", "register", "new", "--namespace", "rota")
    rota.ok("publish", str(write_function(tmp_path / "src2", name="fn", namespace="rota",
                                          version="2.0.0")), "--key", "new")
    # the new key is refused with its full id and the exact command that accepts it
    refused(user, "hub://rota/fn", f"hub keys trust rota {new_key}")
    user.ok("keys", "trust", "rota", new_key)
    assert "rota/fn@2.0.0" in user.ok("install", "hub://rota/fn")
    user.ok("uninstall", "hub://rota/fn")
    # versions signed by the first key, and a tag pointing at one, still install
    assert "rota/fn@1.0.0" in user.ok("install", "hub://rota/fn:stable")
    user.ok("uninstall", "hub://rota/fn")
    assert "imported rota/fn@1.0.0" in _sdk(user, "hub://rota/fn:1.0.0").stdout
    # untrusting the first key is what locks its versions out
    first_key = next(k["keyid"] for k in rota.json("keys", "list")["keys"]
                     if k["name"] == "default")
    user.ok("keys", "untrust", "rota", first_key)
    user.ok("uninstall", "hub://rota/fn")
    user.fails("install", "hub://rota/fn:1.0.0", match=f"hub keys trust rota {first_key}")


def test_tampered_local_install_is_caught_by_hub_verify(user: CLI, tmp_path: Path) -> None:
    user.ok("install", "hub://alice/victim:1.0.0")
    assert "installed copy intact" in user.ok("verify", "hub://alice/victim:1.0.0")
    [code] = (user.root / "home" / "functions").glob("*/alice/victim/1.0.0/files/scale.py")
    code.write_text(code.read_text() + "\nimport os  # injected\n")
    user.fails("verify", "hub://alice/victim:1.0.0", match="installed files of "
                                                           "alice/victim@1.0.0 were modified")
    data = tmp_path / "data.csv"
    data.write_text("value\n1\n")
    _failed(_sdk(user, "hub://alice/victim:1.0.0", "--run", str(data)), "were modified",
            "import_function(...)(...)")


def test_warm_import_costs_one_conditional_request(user: CLI, mirror: Mirror) -> None:
    """Acceptance 3, counted at the hub's front door: a warm import_function of an installed
    function sends one request, the index's If-None-Match, answered 304."""
    assert _sdk(user, "hub://alice/victim:^1").returncode == 0
    mirror.seen.clear()
    warm = _sdk(user, "hub://alice/victim:^1")
    assert "imported alice/victim@1.1.0" in warm.stdout, warm.stderr
    assert mirror.seen == [("GET", f"{API}/functions/alice/victim/index", 304)]
