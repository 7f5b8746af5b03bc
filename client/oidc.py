"""Trusted publishing from CI: trade the CI job's OIDC ID token for a short-lived hub token.

A hub trusts a CI workflow when a namespace owner registered it as a trusted publisher
(`hub trusted-publisher add`). In such a job `hub publish` needs no stored FNHUB_TOKEN:

- GitHub Actions (`permissions: id-token: write`) offers `ACTIONS_ID_TOKEN_REQUEST_URL` and
  `ACTIONS_ID_TOKEN_REQUEST_TOKEN`; the ID token is requested for the hub's audience
  (`GET /api/v1/oidc/audience`).
- GitLab CI offers the ID tokens the job declares; declare one named `FNHUB_ID_TOKEN` whose
  `aud` is the hub's audience.

The ID token goes to `POST /api/v1/oidc/mint-token`, which answers with a hub token scoped
`publish:<namespace>` that expires within minutes. The ID token is never stored.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import httpx

from fnhub.api_client import HubClient
from fnhub.config import HubEntry
from fnhub.core.errors import Unauthorized
from fnhub.core.manifest import load_manifest

GITHUB_REQUEST_URL = "ACTIONS_ID_TOKEN_REQUEST_URL"
GITHUB_REQUEST_TOKEN = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
GITLAB_ID_TOKEN = "FNHUB_ID_TOKEN"


def ci_oidc_available(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process runs in a CI job that can hand out an OIDC ID token."""
    env = os.environ if environ is None else environ
    return bool(env.get(GITLAB_ID_TOKEN)) or bool(
        env.get(GITHUB_REQUEST_URL) and env.get(GITHUB_REQUEST_TOKEN))


def ci_id_token(audience: str, environ: Mapping[str, str] | None = None, *,
                timeout: float = 30.0) -> str | None:
    """The CI job's OIDC ID token for `audience`, or None outside such a job.

    GitHub's token is requested for `audience`; GitLab's is whatever the job declared as
    FNHUB_ID_TOKEN (its audience was fixed in .gitlab-ci.yml; the hub checks it).
    """
    env = os.environ if environ is None else environ
    if env.get(GITLAB_ID_TOKEN):
        return env[GITLAB_ID_TOKEN].strip()
    url, request_token = env.get(GITHUB_REQUEST_URL), env.get(GITHUB_REQUEST_TOKEN)
    if not (url and request_token):
        return None
    try:
        response = httpx.get(url, params={"audience": audience}, timeout=timeout,
                             headers={"Authorization": f"bearer {request_token}"})
    except httpx.TransportError as exc:
        raise Unauthorized(f"could not request an OIDC token from GitHub Actions: {exc}") from None
    value = None
    if response.is_success:
        try:
            value = response.json().get("value")
        except (ValueError, AttributeError):
            value = None
    if not isinstance(value, str) or not value:
        raise Unauthorized(
            f"GitHub Actions did not issue an OIDC token (HTTP {response.status_code})",
            hint="give the job `permissions: id-token: write`",
        )
    return value


def mint_publish_token(hub: HubEntry, namespace: str | None,
                       environ: Mapping[str, str] | None = None) -> str | None:
    """A short-lived publish token minted from the CI job's OIDC token; None outside CI."""
    if not ci_oidc_available(environ):
        return None
    with HubClient(hub.url) as client:
        id_token = ci_id_token(client.oidc_audience(), environ)
        if id_token is None:
            return None
        return client.mint_token(id_token, namespace).token


def publish_hub(hub: HubEntry, folder: Path,
                environ: Mapping[str, str] | None = None) -> HubEntry:
    """The hub entry `hub publish` uses: as configured when it has a token; else, in a CI job
    with an OIDC token, the same hub with a token minted for the function's namespace."""
    if hub.token:
        return hub
    namespace = load_manifest(folder).metadata.namespace
    token = mint_publish_token(hub, namespace, environ)
    return hub if token is None else HubEntry(url=hub.url, token=token)
