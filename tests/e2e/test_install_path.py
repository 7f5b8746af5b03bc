"""The fast install path (issue #15), counted rather than timed: `hub install` sends each
request it needs once, over one keep-alive connection, and loads none of the libraries only
other commands use. bench/install.py times it against pip."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import CLI, HubProcess, publisher, start_hub, write_function
from tests.security.mirror import Mirror

pytestmark = pytest.mark.slow

API = "/api/v1"
# Loaded by other commands (or by httpx's own command line), never by an install.
NOT_FOR_INSTALLING = ("click", "pygments", "pydantic_settings", "yaml", "pathspec", "rich.table",
                      "rich.progress", "rich.syntax", "fnhub.core.manifest", "fnhub.images",
                      "asyncio")


@dataclass
class World:
    hub: HubProcess
    mirror: Mirror


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("install-path")
    hub = start_hub(root / "hub")
    alice = publisher(root, hub, "alice")
    for name in ("one", "two"):
        alice.ok("publish", str(write_function(root / name, name=name, namespace="alice",
                                               version="1.0.0")))
    mirror = Mirror(hub.url)
    try:
        yield World(hub, mirror)
    finally:
        mirror.close()
        hub.stop()


def _requests(name: str) -> list[tuple[str, str, int]]:
    """What installing alice/NAME@1.0.0 asks for once the hub's index key is pinned."""
    fn = f"{API}/functions/alice/{name}"
    return [("GET", f"{fn}/index", 200), ("GET", f"{fn}/versions/1.0.0/attestations", 200),
            ("GET", f"{API}/keys?namespace=alice", 200),
            ("GET", f"{fn}/versions/1.0.0/package", 200)]


def test_an_install_is_one_request_per_need_over_one_connection(world: World,
                                                                tmp_path: Path) -> None:
    mirror = world.mirror
    user = CLI(tmp_path / "user", mirror.url)
    mirror.seen.clear()
    mirror.connections = 0
    user.ok("install", "hub://alice/one:1.0.0")
    assert mirror.seen == [("GET", f"{API}/index-key", 200), *_requests("one")]
    assert mirror.connections == 1

    # a fresh home with the same trust (bench/install.py's case), two functions in one command
    mirror.seen.clear()
    mirror.connections = 0
    again = CLI(tmp_path / "user", mirror.url, env_extra={"FNHUB_HOME": str(tmp_path / "home2")})
    again.ok("install", "hub://alice/one:1.0.0", "hub://alice/two:1.0.0")
    assert mirror.seen == [*_requests("one"), *_requests("two")]
    assert mirror.connections == 1


def test_an_install_loads_only_what_installing_needs(world: World, tmp_path: Path) -> None:
    user = CLI(tmp_path / "user", world.hub.url)
    code = ("import json, sys\nfrom fnhub.cli.main import main\n"
            "code = main(['install', 'hub://alice/one:1.0.0'])\n"
            "print(json.dumps([code, sorted(k for k, v in sys.modules.items() if v)]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=user.env, cwd=tmp_path, check=True, timeout=120)
    exit_code, modules = json.loads(proc.stdout.splitlines()[-1])
    assert exit_code == 0, proc.stderr
    assert "fnhub.install" in modules and "cryptography" in modules  # it did verify
    loaded = [m for m in modules
              if any(m == name or m.startswith(name + ".") for name in NOT_FOR_INSTALLING)]
    assert loaded == []
