"""`/api/v1/namespaces`: who owns which namespace; claiming a free one."""

from __future__ import annotations

from fastapi import APIRouter

from fnhub.core.api_models import NamespaceCreate, NamespaceInfo
from fnhub.hub.api.deps import API_PREFIX, CallerDep, HubDep, ReadAccess
from fnhub.hub.services import namespaces

router = APIRouter(prefix=API_PREFIX + "/namespaces", tags=["namespaces"])


@router.get("", dependencies=[ReadAccess])
def list_namespaces(hub: HubDep) -> list[NamespaceInfo]:
    return namespaces.list_all(hub)


@router.post("", status_code=201)
def claim_namespace(body: NamespaceCreate, hub: HubDep, caller: CallerDep) -> NamespaceInfo:
    """Claim a free namespace for the caller (`library` is for admins); 409 when taken."""
    return namespaces.claim(hub, caller, body.name)


@router.get("/{ns}", dependencies=[ReadAccess])
def get_namespace(ns: str, hub: HubDep) -> NamespaceInfo:
    return namespaces.get(hub, ns)
