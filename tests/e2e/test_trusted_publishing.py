"""Acceptance: `hub publish` in a CI job publishes with the job's OIDC token, no FNHUB_TOKEN.

A real hub process trusts a real OIDC issuer on loopback. The owner registers the trusted
publisher with the CLI; the "CI job" is the same CLI with no token and only the CI's
variables: GitLab's `FNHUB_ID_TOKEN`, or GitHub's `ACTIONS_ID_TOKEN_REQUEST_URL`/`_TOKEN`
pointing at the issuer's token endpoint. The hub's logs are JSON lines with request ids.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import CLI, HubProcess, start_hub, write_function
from tests.oidc_issuer import Issuer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    server = Issuer("RS256")
    yield server
    server.close()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, issuer: Issuer) -> Iterator[HubProcess]:
    process = start_hub(tmp_path_factory.mktemp("oidc-hub") / "data", extra_env={
        "FNHUB_SERVER_OIDC_ISSUERS": json.dumps({issuer.url: "github"}),
        "FNHUB_SERVER_OIDC_AUDIENCE": "fnhub-e2e"})
    yield process
    process.stop()


@pytest.fixture(scope="module")
def owner(hub: HubProcess, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> CLI:
    """alice: a signing key registered for `alice`, and alice/tools' release.yml trusted."""
    admin = CLI(tmp_path_factory.mktemp("admin"), hub.url, hub.admin_token)
    token = admin.json("tokens", "create", "alice", "--scope", "publish:alice",
                       "--user", "alice")["token"]
    alice = CLI(tmp_path_factory.mktemp("alice"), hub.url, token)
    alice.ok("keys", "generate")
    alice.ok("keys", "register", "--namespace", "alice")
    added = alice.json("trusted-publisher", "add", "alice", "--issuer", issuer.url,
                       "--repository", "alice/tools", "--workflow", "release.yml",
                       "--ref", "refs/tags/v*")
    assert added["namespace"] == "alice" and added["workflow"] == "release.yml"
    [listed] = alice.json("trusted-publisher", "list", "alice")
    assert listed["id"] == added["id"]
    return alice


def _ci_job(owner: CLI, **env: str) -> CLI:
    """The CI job: alice's signing key (from the job's secrets), no hub token, CI variables."""
    return CLI(owner.root, owner.hub_url, token=None, env_extra=env)


def test_gitlab_job_publishes_with_its_id_token(owner: CLI, issuer: Issuer,
                                                tmp_path: Path) -> None:
    fn = write_function(tmp_path / "tool", name="tool", namespace="alice", version="1.0.0")
    job = _ci_job(owner, FNHUB_ID_TOKEN=issuer.token("fnhub-e2e"))
    published = job.json("publish", str(fn))
    assert (published["namespace"], published["version"]) == ("alice", "1.0.0")
    _ci_job(owner, FNHUB_ID_TOKEN=issuer.token("fnhub-e2e", ref="refs/heads/main")).fails(
        "publish", str(write_function(fn, name="tool", namespace="alice", version="1.0.1")),
        match="no trusted publisher")


def test_github_job_requests_a_token_for_the_hubs_audience(owner: CLI, issuer: Issuer,
                                                           tmp_path: Path) -> None:
    fn = write_function(tmp_path / "tool", name="tool", namespace="alice", version="2.0.0")
    job = _ci_job(owner, ACTIONS_ID_TOKEN_REQUEST_URL=f"{issuer.url}/token?api-version=2.0",
                  ACTIONS_ID_TOKEN_REQUEST_TOKEN=issuer.request_token)
    assert "published alice/tool@2.0.0" in job.ok("publish", str(fn))
    assert issuer.audiences_requested[-1] == "fnhub-e2e"
    _ci_job(owner, ACTIONS_ID_TOKEN_REQUEST_URL=f"{issuer.url}/token",
            ACTIONS_ID_TOKEN_REQUEST_TOKEN="wrong").fails(
        "publish", str(write_function(fn, name="tool", namespace="alice", version="2.0.1")),
        match="id-token: write")


def test_without_ci_variables_publishing_needs_a_token(owner: CLI, tmp_path: Path) -> None:
    fn = write_function(tmp_path / "tool", name="tool", namespace="alice", version="3.0.0")
    _ci_job(owner).fails("publish", str(fn), match="needs an API token")


def test_hub_logs_are_json_lines_with_request_ids(hub: HubProcess) -> None:
    response = httpx.post(f"{hub.url}/api/v1/oidc/mint-token", json={"token": "x"},
                          headers={"X-Request-ID": "e2e-request-1"})
    assert response.status_code == 401
    assert response.headers["X-Request-ID"] == "e2e-request-1"
    deadline = time.monotonic() + 10
    while True:  # the access line is written just after the answer went out
        text = hub.log.read_text()
        entries = [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines()]
        found = [e for e in entries if e.get("request_id") == "e2e-request-1"]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    [line] = found
    assert (line["logger"], line["method"], line["path"], line["status"]) == (
        "fnhub.hub.access", "POST", "/api/v1/oidc/mint-token", 401)
    assert {"time", "level", "message", "duration_ms", "client"} <= set(line)
    assert any("admin token" in e["message"] for e in entries)
