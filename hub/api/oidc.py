"""Trusted publishing: `/api/v1/oidc/*` (token exchange) and a namespace's trusted publishers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from fnhub.core.api_models import (
    OidcAudience,
    OidcMintRequest,
    TokenCreated,
    TrustedPublisherCreate,
    TrustedPublisherInfo,
)
from fnhub.hub.api.deps import API_PREFIX, CallerDep, HubDep
from fnhub.hub.services import oidc

router = APIRouter(prefix=API_PREFIX, tags=["trusted publishing"])
PUBLISHERS = "/namespaces/{ns}/trusted-publishers"


@router.get("/oidc/audience")
def audience(hub: HubDep) -> OidcAudience:
    """The `aud` a CI job must request its OIDC token for."""
    return OidcAudience(audience=hub.settings.audience)


@router.post("/oidc/mint-token", status_code=201)
def mint_token(body: OidcMintRequest, hub: HubDep) -> TokenCreated:
    """Exchange a CI OIDC ID token for a short-lived `publish:<namespace>` token."""
    return oidc.mint_token(hub, body.token, body.namespace)


@router.post(PUBLISHERS, status_code=201)
def add_publisher(ns: str, body: TrustedPublisherCreate, hub: HubDep,
                  caller: CallerDep) -> TrustedPublisherInfo:
    """Trust a CI workflow to publish into the namespace (owners and admins)."""
    return oidc.add(hub, caller, ns, body)


@router.get(PUBLISHERS)
def list_publishers(ns: str, hub: HubDep, caller: CallerDep) -> list[TrustedPublisherInfo]:
    return oidc.list_for(hub, caller, ns)


@router.delete(PUBLISHERS + "/{publisher_id}", status_code=204)
def remove_publisher(ns: str, publisher_id: Annotated[int, Path(ge=1, le=oidc.MAX_ID)],
                     hub: HubDep, caller: CallerDep) -> None:
    oidc.remove(hub, caller, ns, publisher_id)
