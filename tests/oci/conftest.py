"""OCI test fixtures: in-process hubs and publisher tokens, and a Podman service for the tests
that build and run images."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import docker
import pytest

from tests.helpers import CLI, HubProcess, require_file
from tests.hub.factories import auth
from tests.oci.helpers import Pusher

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


def require_tool(name: str) -> str:
    """The tool's path on PATH: see `require_file`."""
    found = shutil.which(name)
    return str(require_file(Path(found) if found else None, name))


def _podman_quirks(root: Path) -> tuple[list[str], dict[str, str]]:
    """What this machine needs for podman to *run* containers (building needs neither), as a
    command prefix and environment. crun raises RLIMIT_NOFILE to podman's default of 1048576,
    which a sandbox with a lower hard limit refuses: a containers.conf without default ulimits
    keeps ours. On hybrid cgroups (v1 controllers plus the cgroup2 mount
    /sys/fs/cgroup/unified), crun refuses to start: the service then runs in a mount namespace
    of its own without that mount, so crun sees plain cgroup v1."""
    prefix: list[str] = []
    env: dict[str, str] = {}
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 1048576:
        conf = root / "containers.conf"
        conf.write_text("[containers]\ndefault_ulimits = []\n")
        env["CONTAINERS_CONF"] = str(conf)
    if os.path.ismount("/sys/fs/cgroup/unified"):
        prefix = [require_tool("unshare"), "-m", "sh", "-c",
                  'umount /sys/fs/cgroup/unified && exec "$@"', "sh"]
    return prefix, env


@pytest.fixture(scope="module")
def docker_host(hub: HubProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Podman's Docker-compatible API on a unix socket of its own, able to build and run
    containers (needs a module-scoped `hub` fixture: its registry is marked insecure, the
    way an operator would mark a plain-HTTP registry on loopback). The images of that hub are
    removed at the end, pulled ones included."""
    podman = require_tool("podman")
    root = tmp_path_factory.mktemp("podman")
    registry = urlsplit(hub.url).netloc
    conf = root / "registries.conf"
    conf.write_text('unqualified-search-registries = []\n\n[[registry]]\n'
                    f'location = "{registry}"\ninsecure = true\n')
    url = f"unix://{root / 'podman.sock'}"
    prefix, quirks = _podman_quirks(root)
    with (root / "service.log").open("wb") as log:
        service = subprocess.Popen(
            [*prefix, podman, "system", "service", "--time=0", url],
            env={**os.environ, "CONTAINERS_REGISTRIES_CONF": str(conf), **quirks},
            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                docker.DockerClient(base_url=url).ping()
                break
            except docker.errors.DockerException:
                if time.monotonic() > deadline or service.poll() is not None:
                    raise RuntimeError("podman's service did not start:\n"
                                       + (root / "service.log").read_text()) from None
                time.sleep(0.2)
        yield url
        engine = docker.DockerClient(base_url=url)
        for image in engine.images.list():
            names = [*image.tags, *image.attrs.get("RepoDigests", [])]
            if any(name.startswith(registry + "/") for name in names):
                engine.images.remove(image.id, force=True)
    finally:
        service.terminate()
        service.wait(timeout=30)


@pytest.fixture(scope="module")
def carol(hub: HubProcess, docker_host: str, tmp_path_factory: pytest.TempPathFactory) -> CLI:
    """A publisher of namespace `carol` whose CLI talks to the module's hub and engine."""
    admin = CLI(tmp_path_factory.mktemp("admin"), hub.url, hub.admin_token)
    token = admin.json("tokens", "create", "carol", "--scope", "publish:carol",
                       "--user", "carol")["token"]
    carol = CLI(tmp_path_factory.mktemp("carol"), hub.url, token,
                env_extra={"DOCKER_HOST": docker_host})
    carol.ok("keys", "generate")
    carol.ok("keys", "register", "--namespace", "carol")
    return carol


def mint(client: TestClient, admin_token: str, user: str, *scopes: str) -> str:
    response = client.post("/api/v1/tokens", headers=auth(admin_token), json={
        "name": f"{user}-token", "user": user, "scopes": list(scopes)})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


@pytest.fixture
def alice(client: TestClient, admin_token: str) -> Pusher:
    return Pusher(client, mint(client, admin_token, "alice", "publish:alice"))


@pytest.fixture
def bob(client: TestClient, admin_token: str) -> Pusher:
    return Pusher(client, mint(client, admin_token, "bob", "publish:bob"))
