"""`/api/v1/keys`: the publisher keys registered to each namespace."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from fnhub.core.api_models import KeyInfo, KeyRegister
from fnhub.hub.api.deps import API_PREFIX, CallerDep, HubDep, ReadAccess
from fnhub.hub.services import keys

router = APIRouter(prefix=API_PREFIX + "/keys", tags=["keys"])
NamespaceQuery = Annotated[str, Query(max_length=64, description="the namespace")]


@router.get("", dependencies=[ReadAccess])
def list_keys(hub: HubDep, namespace: NamespaceQuery | None = None) -> list[KeyInfo]:
    """The keys of one namespace, or of all namespaces without `namespace`."""
    return keys.list_keys(hub, namespace)


@router.post("", status_code=201)
def register_key(body: KeyRegister, hub: HubDep, caller: CallerDep) -> KeyInfo:
    """Register a key to a namespace you own (a free namespace becomes yours)."""
    return keys.register(hub, caller, body)


@router.delete("/{keyid}", status_code=204)
def delete_key(keyid: str, namespace: NamespaceQuery, hub: HubDep, caller: CallerDep) -> None:
    keys.delete(hub, caller, namespace, keyid)
