"""The hub-signed index of a function and the hub's index key (design §5, §6)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from fnhub.core.index import IndexKeyInfo
from fnhub.hub.api.deps import API_PREFIX, HubDep, ReadAccess, etag_matches
from fnhub.hub.services import index

router = APIRouter(prefix=API_PREFIX, tags=["index"])


@router.get(
    "/functions/{ns}/{name}/index", dependencies=[ReadAccess], response_class=Response,
    responses={200: {"content": {"application/json": {}},
                     "description": "a DSSE envelope over the function's index"},
               304: {"description": "the client's copy (If-None-Match) is current"}},
)
def get_index(ns: str, name: str, request: Request, hub: HubDep) -> Response:
    """The function's index, signed by the hub's index key; identical on every replica."""
    signed = index.signed_index(hub, ns, name)
    headers = {"ETag": signed.etag,
               "Cache-Control": ("private" if hub.settings.private else "public") + ", no-cache"}
    if etag_matches(request.headers.get("if-none-match"), signed.etag):
        return Response(status_code=304, headers=headers)
    return Response(signed.body, media_type="application/json", headers=headers)


@router.get("/index-key")
def get_index_key(hub: HubDep) -> IndexKeyInfo:
    """The key that signs indexes, and the chain of rotations leading to it (oldest first)."""
    return index.key_info(hub)
