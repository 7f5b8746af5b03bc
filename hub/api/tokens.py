"""`/api/v1/tokens` and `/api/v1/whoami`: API tokens and the caller's identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from fnhub.core.api_models import TokenCreate, TokenCreated, TokenInfo, WhoAmI
from fnhub.hub.api.deps import API_PREFIX, CallerDep, HubDep
from fnhub.hub.services import auth

router = APIRouter(prefix=API_PREFIX, tags=["tokens"])


@router.post("/tokens", status_code=201)
def create_token(body: TokenCreate, hub: HubDep, caller: CallerDep) -> TokenCreated:
    """Mint a token (its secret is shown only in this answer)."""
    return auth.create_token(hub, caller, body)


@router.get("/tokens")
def list_tokens(hub: HubDep, caller: CallerDep) -> list[TokenInfo]:
    return auth.list_tokens(hub, caller)


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: Annotated[int, Path(ge=1, le=auth.MAX_ID)], hub: HubDep,
                 caller: CallerDep) -> None:
    auth.revoke_token(hub, caller, token_id)


@router.get("/whoami")
def whoami(hub: HubDep, caller: CallerDep) -> WhoAmI:
    return auth.whoami(hub, caller)
