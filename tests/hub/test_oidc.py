"""Trusted publishing against real OIDC issuers on loopback (their own keys and JWKS).

The matrix of the issue: a valid exchange (then a publish with the minted token), wrong
repository, expired token, reused jti, wrong audience, forged signature; plus the
constraints, GitLab's claims with ES256, management rules, and replay across replicas.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from fnhub.hub.app import create_app
from fnhub.hub.settings import ServerSettings
from tests.helpers import free_port
from tests.hub.factories import Publisher, auth, error_code, make_client, make_publisher
from tests.oidc_issuer import Issuer, new_key

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

MINT = "/api/v1/oidc/mint-token"
DEAD_ISSUER = f"http://127.0.0.1:{free_port()}"  # trusted, but nothing listens there
GITLAB_CLAIMS = {"project_path": "alice-group/tools", "ref": "main", "ref_type": "branch",
                 "ci_config_ref_uri": "gitlab.example/alice-group/tools//.gitlab-ci.yml"
                                      "@refs/heads/main"}


@pytest.fixture(scope="module")
def github() -> Iterator[Issuer]:
    issuer = Issuer("RS256")
    yield issuer
    issuer.close()


@pytest.fixture(scope="module")
def gitlab() -> Iterator[Issuer]:
    issuer = Issuer("ES256", claims=GITLAB_CLAIMS)
    yield issuer
    issuer.close()


def _settings(tmp_path: Path, github: Issuer, gitlab: Issuer,
              database_url: str = "") -> ServerSettings:
    return ServerSettings(data_dir=tmp_path / "data", max_package_size=256 * 1024,
                          database_url=database_url,
                          oidc_issuers={github.url: "github", gitlab.url + "/": "gitlab",
                                        DEAD_ISSUER: "github"})


@pytest.fixture
def settings(tmp_path: Path, github: Issuer, gitlab: Issuer) -> ServerSettings:
    return _settings(tmp_path, github, gitlab)


def _trust(client: TestClient, owner: Publisher, issuer: Issuer, **rule: str) -> dict[str, Any]:
    body = {"issuer": issuer.url, "repository": "alice/tools", **rule}
    response = client.post(f"/api/v1/namespaces/{owner.namespace}/trusted-publishers",
                           json=body, headers=auth(owner.token))
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def trusted(client: TestClient, alice: Publisher, github: Issuer) -> Publisher:
    """alice trusts alice/tools' release.yml on tags v*, in the `release` environment."""
    _trust(client, alice, github, workflow="release.yml", ref="refs/tags/v*",
           environment="release")
    return alice


def _mint(client: TestClient, token: str, **body: Any) -> Any:
    return client.post(MINT, json={"token": token, **body})


def _refused(response: Any, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert words in response.json()["error"]["message"], response.text


def test_audience_is_public(client: TestClient) -> None:
    assert client.get("/api/v1/oidc/audience").json() == {"audience": "fnhub"}


def test_valid_exchange_mints_a_short_lived_token_that_publishes(
        client: TestClient, trusted: Publisher, github: Issuer) -> None:
    response = _mint(client, github.token())
    assert response.status_code == 201, response.text
    minted = response.json()
    assert minted["scopes"] == ["publish:alice"] and minted["user"] == "alice"
    lifetime = datetime.fromisoformat(minted["expires_at"]) - datetime.now(timezone.utc)
    assert timedelta(minutes=14) < lifetime <= timedelta(minutes=15)
    upload = trusted.upload("tool", "1.1.0")
    response = client.post(upload.path, files=upload.files(), headers=auth(minted["token"]))
    assert response.status_code == 201, response.text
    other = client.post("/api/v1/namespaces", json={"name": "elsewhere"},
                        headers=auth(minted["token"]))
    assert other.status_code == 403  # scoped to its namespace only


def test_wrong_repository_is_refused(client: TestClient, trusted: Publisher,
                                     github: Issuer) -> None:
    _refused(_mint(client, github.token(repository="mallory/tools")), 403,
             "no trusted publisher matches repository 'mallory/tools'")


def test_expired_token_is_refused(client: TestClient, trusted: Publisher,
                                  github: Issuer) -> None:
    _refused(_mint(client, github.token(expires_in=-600)), 401, "expired")


def test_reused_jti_is_refused(client: TestClient, trusted: Publisher, github: Issuer) -> None:
    token = github.token()
    assert _mint(client, token).status_code == 201
    _refused(_mint(client, token), 401, "already exchanged")
    jti = github.token(jti="fixed-id")
    assert _mint(client, jti).status_code == 201
    _refused(_mint(client, github.token(jti="fixed-id")), 401, "already exchanged")


def test_wrong_audience_is_refused(client: TestClient, trusted: Publisher,
                                   github: Issuer) -> None:
    _refused(_mint(client, github.token(audience="another-hub")), 401,
             "not for this hub (its audience is 'another-hub', this hub's is 'fnhub')")


def test_forged_signature_is_refused(client: TestClient, trusted: Publisher,
                                     github: Issuer) -> None:
    _refused(_mint(client, github.token(key=new_key("RS256"))), 401, "signature does not verify")
    _refused(_mint(client, github.token(key=new_key("RS256"), kid="forged")), 401,
             "does not publish")


def test_untrusted_issuer_is_refused(client: TestClient, trusted: Publisher,
                                     github: Issuer) -> None:
    _refused(_mint(client, github.token(issuer="https://evil.example")), 401,
             "'https://evil.example' is not trusted")
    _refused(_mint(client, "not-a-jwt"), 401, "not a well-formed JWT")
    _refused(_mint(client, github.token(jti=None)), 401, "lacks the 'jti' claim")
    _refused(_mint(client, github.token(issuer=DEAD_ISSUER)), 503,
             "cannot fetch the OpenID configuration")


@pytest.mark.parametrize(("claims", "words"), [
    ({"workflow_ref": "alice/tools/.github/workflows/ci.yml@refs/tags/v1.0.0"}, "workflow"),
    ({"ref": "refs/heads/main"}, "ref refs/heads/main"),
    ({"environment": "staging"}, "environment staging"),
])
def test_each_constraint_is_checked(client: TestClient, trusted: Publisher, github: Issuer,
                                    claims: dict[str, str], words: str) -> None:
    _refused(_mint(client, github.token(**claims)), 403, words)


def test_gitlab_claims_with_es256(client: TestClient, alice: Publisher, gitlab: Issuer) -> None:
    response = client.post("/api/v1/namespaces/alice/trusted-publishers", headers=auth(
        alice.token), json={"issuer": gitlab.url, "repository": "alice-group/tools",
                            "workflow": ".gitlab-ci.yml", "ref": "refs/heads/main"})
    assert response.status_code == 201, response.text
    assert _mint(client, gitlab.token()).json()["scopes"] == ["publish:alice"]
    _refused(_mint(client, gitlab.token(ref_type="tag")), 403, "ref refs/tags/main")


def test_a_token_matching_several_namespaces_must_name_one(
        client: TestClient, alice: Publisher, admin_token: str, tmp_path: Path,
        github: Issuer) -> None:
    _trust(client, alice, github)
    tools = make_publisher(client, admin_token, "alice", tmp_path / "more", namespace="alice-tools")
    _trust(client, tools, github)
    _refused(_mint(client, github.token()), 400, "several namespaces (alice, alice-tools)")
    response = _mint(client, github.token(), namespace="alice-tools")
    assert response.json()["scopes"] == ["publish:alice-tools"], response.text


def test_management(client: TestClient, trusted: Publisher, bob: Publisher,
                    github: Issuer) -> None:
    path = "/api/v1/namespaces/alice/trusted-publishers"
    [rule] = client.get(path, headers=auth(trusted.token)).json()
    assert (rule["issuer"], rule["repository"], rule["workflow"], rule["ref"],
            rule["created_by"]) == (github.url, "alice/tools", "release.yml", "refs/tags/v*",
                                    "alice")
    again = {k: rule[k] for k in ("issuer", "repository", "workflow", "ref", "environment")}
    assert error_code(client.post(path, json=again, headers=auth(trusted.token))) == "conflict"
    assert client.get(path, headers=auth(bob.token)).status_code == 403
    assert client.post(path, json=again, headers=auth(bob.token)).status_code == 403
    for bad, words in (({"issuer": "https://nope.example"}, "not trusted"),
                       ({"repository": "noslash"}, "OWNER/NAME"),
                       ({"ref": "main"}, "full ref"),
                       ({"workflow": "a b"}, "spaces")):
        response = client.post(path, json={**again, **bad}, headers=auth(trusted.token))
        _refused(response, 400, words)
    github_alias = client.post(path, headers=auth(trusted.token), json={
        "issuer": "github", "repository": "alice/tools"})
    assert github_alias.json()["issuer"] == "https://token.actions.githubusercontent.com"
    assert client.delete(f"{path}/{rule['id']}", headers=auth(trusted.token)).status_code == 204
    assert client.delete(f"{path}/{rule['id']}", headers=auth(trusted.token)).status_code == 404
    _refused(_mint(client, github.token()), 403, "no trusted publisher matches")


def test_a_jti_is_spent_on_every_replica(tmp_path: Path, fresh_database_url: str,
                                         github: Issuer, gitlab: Issuer) -> None:
    """Two hub apps on one database: a token exchanged on one is refused on the other."""
    settings = _settings(tmp_path, github, gitlab, fresh_database_url)
    first, second = create_app(settings), create_app(settings)
    try:
        client = make_client(first)
        admin = (settings.data_dir / "admin-token").read_text().strip()
        _trust(client, make_publisher(client, admin, "alice", tmp_path / "work"), github)
        token = github.token()
        assert _mint(client, token).status_code == 201
        _refused(_mint(make_client(second), token), 401, "already exchanged")
    finally:
        first.state.hub.close()
        second.state.hub.close()
