"""`/v2/`: the OCI Distribution Spec v1.1 endpoints, thin over the registry's services
(`repositories`, `blobs`, `uploads`, `manifest_store`, `tags` of `fnhub.hub.oci`).

Request bodies (blob chunks) stream into the blob store's staging area in batches of at most
1 MiB; blob responses stream from storage in 256 KiB chunks, so memory stays bounded whatever
the blob's size (or, with presigned downloads on, a GET is sent to the storage URL instead).
Manifests (4 MiB at most) are read whole.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from fnhub.core.errors import FnhubError, PayloadTooLarge
from fnhub.hub.api.deps import HubDep, MetricsDep, metrics_of
from fnhub.hub.context import Hub
from fnhub.hub.oci import blobs, manifest_store, repositories, tags, tokens, uploads
from fnhub.hub.oci.errors import (
    API_VERSION,
    PREFIX,
    BlobUploadInvalid,
    DigestInvalid,
    NeedsToken,
    PaginationInvalid,
    RangeNotSatisfiable,
    TooLarge,
    service_name,
)
from fnhub.hub.oci.manifests import MAX_MANIFEST_SIZE, OCI_INDEX
from fnhub.hub.oci.names import check_digest, check_reference, check_repository
from fnhub.hub.oci.tokens import DELETE, Access
from fnhub.hub.storage import Staged, StagingWriter

router = APIRouter(prefix=PREFIX, tags=["oci registry"])
NAME = "/{name:path}"
FLUSH_AT = 1 << 20
MAX_SCOPES = 50
OCTETS = "application/octet-stream"
_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def get_access(request: Request, hub: HubDep) -> Access:
    return tokens.identify(hub, request.headers.get("authorization"), service_name(request))


AccessDep = Annotated[Access, Depends(get_access)]


def _digest_headers(digest: str) -> dict[str, str]:
    return {"Docker-Content-Digest": digest, **API_VERSION}


def _page_size(n: str | None) -> int | None:
    if n is None or n == "":
        return None
    if not n.isdigit():
        raise PaginationInvalid(f"n must be a non-negative integer, not {n[:20]!r}")
    return int(n)


def _next_link(path: str, n: int | None, page: list[str], more: bool) -> dict[str, str]:
    """`Link: <path?n=..&last=..>; rel="next"` when another page follows this one."""
    if not more or not page:
        return {}
    query = {"n": n, "last": page[-1]} if n is not None else {"last": page[-1]}
    return {"Link": f'<{path}?{urlencode(query)}>; rel="next"'}


async def _receive(request: Request, writer: StagingWriter) -> Staged:
    """Stream the request body into staging; the staged file is gone if anything fails."""
    pending: list[bytes] = []
    buffered = 0

    def flush(chunks: list[bytes]) -> None:
        for chunk in chunks:
            writer.write(chunk)

    try:
        async for chunk in request.stream():
            pending.append(chunk)
            buffered += len(chunk)
            if buffered >= FLUSH_AT:
                await run_in_threadpool(flush, pending)
                pending, buffered = [], 0
        await run_in_threadpool(flush, pending)
        staged = await run_in_threadpool(writer.finish)
    except PayloadTooLarge:
        writer.abort()
        raise blobs.too_large() from None
    except ClientDisconnect:
        writer.abort()
        raise BlobUploadInvalid("the client disconnected during the upload") from None
    except BaseException:
        writer.abort()  # not awaited: it must also run when the request is cancelled
        raise
    metrics_of(request).received("blob", staged.size)
    return staged


def _content_range(header: str | None) -> tuple[int, int] | None:
    if header is None:
        return None
    match = _CONTENT_RANGE.fullmatch(header.strip())
    if match is None or int(match[2]) < int(match[1]):
        raise BlobUploadInvalid(f"malformed Content-Range {header[:60]!r}: expected START-END")
    return int(match[1]), int(match[2])


async def _receive_chunk(request: Request, hub: Hub, name: str,
                         upload_id: str) -> uploads.UploadState:
    """PATCH (or a final PUT's body): check the chunk's place, stream it in, record it."""
    state = await run_in_threadpool(uploads.upload_state, hub, name, upload_id)
    declared = _content_range(request.headers.get("content-range"))
    uploads.check_offset(state, declared[0] if declared else None)
    staged = await _receive(request, await run_in_threadpool(blobs.writer, hub, state.size))
    if declared and staged.size != declared[1] - declared[0] + 1:
        hub.store.discard(staged)
        raise BlobUploadInvalid(f"the chunk has {staged.size} bytes, but Content-Range "
                                f"{declared[0]}-{declared[1]} announced "
                                f"{declared[1] - declared[0] + 1}")
    return await run_in_threadpool(uploads.append, hub, name, upload_id, staged, state.size)


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The (first, last) bytes a `Range: bytes=...` asks for; None to send everything."""
    match = _RANGE.fullmatch(header.strip()) if header else None
    if match is None or match[1] == match[2] == "":
        return None  # absent, or a form this registry ignores (RFC 9110 allows that)
    if match[1] == "":  # bytes=-N: the last N bytes
        count = int(match[2])
        first, last = (max(size - count, 0) if count else size), size - 1
    else:
        first = int(match[1])
        if match[2] and int(match[2]) < first:
            return None
        last = min(int(match[2]), size - 1) if match[2] else size - 1
    if first >= size:
        raise RangeNotSatisfiable(f"range {header} starts past the blob's {size} bytes",
                                  headers={"Content-Range": f"bytes */{size}"})
    return first, last


# -- base, token, catalog -----------------------------------------------------------------


@router.get("/")
def ping(access: AccessDep) -> Response:
    """200 for a caller with credentials; 401 with the Bearer challenge otherwise."""
    if access.caller is None and access.grants is None:
        raise NeedsToken("authenticate to use this registry (anonymous pulls get a token too)")
    return JSONResponse({}, headers=API_VERSION)


@router.get("/token")
def token(request: Request, hub: HubDep,
          scope: Annotated[list[str] | None, Query()] = None) -> JSONResponse:
    """The token endpoint: a hub API token as the Basic password, or none (anonymous)."""
    caller = tokens.hub_caller(hub, request.headers.get("authorization"))
    wanted = [part for item in scope or [] for part in item.split()][:MAX_SCOPES]
    return JSONResponse(tokens.issue(hub, caller, service_name(request), wanted))


@router.get("/_catalog")
def catalog(hub: HubDep, access: AccessDep, n: str | None = None,
            last: str | None = None) -> JSONResponse:
    access.require_catalog(hub)
    size = _page_size(n)
    names, more = repositories.catalog(hub, size, last)
    return JSONResponse({"repositories": names},
                        headers={**API_VERSION,
                                 **_next_link(PREFIX + "/_catalog", size, names, more)})


# -- blobs --------------------------------------------------------------------------------


@router.post(NAME + "/blobs/uploads/")
async def start_upload(
    name: str, request: Request, hub: HubDep, access: AccessDep,
    digest: str | None = None, mount: str | None = None,
    source: Annotated[str | None, Query(alias="from")] = None,
) -> Response:
    """A new session (202); a whole blob with `?digest=` (201); a mount from another repo."""
    check_repository(name)
    caller = access.require_push(name)
    if mount is not None:
        check_digest(mount)
        if source and _may_pull(access, hub, source):
            mounted = await run_in_threadpool(blobs.mount, hub, caller, name, mount, source)
            if mounted is not None:
                return _created(name, mounted.digest)
    if digest is not None:
        check_digest(digest)
        await run_in_threadpool(repositories.check_push, hub, caller, name)
        staged = await _receive(request, await run_in_threadpool(blobs.writer, hub))
        info = await run_in_threadpool(blobs.put_blob, hub, caller, name, digest, staged)
        return _created(name, info.digest)
    state = await run_in_threadpool(uploads.start_upload, hub, caller, name)
    return Response(status_code=202, headers={**state.headers, **API_VERSION})


def _may_pull(access: Access, hub: Hub, repository: str) -> bool:
    try:
        access.require_pull(hub, repository)
    except FnhubError:
        return False
    return True


def _created(name: str, digest: str) -> Response:
    return Response(status_code=201, headers={"Location": f"{PREFIX}/{name}/blobs/{digest}",
                                              **_digest_headers(digest)})


@router.get(NAME + "/blobs/uploads/{upload_id}")
def upload_status(name: str, upload_id: str, hub: HubDep, access: AccessDep) -> Response:
    check_repository(name)
    access.require_push(name)
    state = uploads.upload_state(hub, name, upload_id)
    return Response(status_code=204, headers={**state.headers, **API_VERSION})


@router.patch(NAME + "/blobs/uploads/{upload_id}")
async def upload_chunk(name: str, upload_id: str, request: Request, hub: HubDep,
                       access: AccessDep) -> Response:
    """Append a chunk; with Content-Range it must start where the upload stands (else 416)."""
    check_repository(name)
    access.require_push(name)
    state = await _receive_chunk(request, hub, name, upload_id)
    return Response(status_code=202, headers={**state.headers, **API_VERSION})


@router.put(NAME + "/blobs/uploads/{upload_id}")
async def finish_upload(name: str, upload_id: str, request: Request, hub: HubDep,
                        access: AccessDep, digest: str | None = None) -> Response:
    """Close the session with its digest (and an optional last chunk); 201 when it matches."""
    check_repository(name)
    caller = access.require_push(name)
    if digest is None:
        raise DigestInvalid("closing an upload needs ?digest=sha256:...")
    check_digest(digest)
    await _receive_chunk(request, hub, name, upload_id)
    info = await run_in_threadpool(uploads.finish_upload, hub, caller, name, upload_id, digest)
    return _created(name, info.digest)


@router.delete(NAME + "/blobs/uploads/{upload_id}")
def cancel_upload(name: str, upload_id: str, hub: HubDep, access: AccessDep) -> Response:
    check_repository(name)
    uploads.cancel_upload(hub, access.require_push(name), name, upload_id)
    return Response(status_code=204, headers=API_VERSION)


@router.get(NAME + "/blobs/{digest}", response_class=StreamingResponse)
@router.head(NAME + "/blobs/{digest}", response_class=StreamingResponse)
def get_blob(name: str, digest: str, request: Request, hub: HubDep, access: AccessDep,
             metrics: MetricsDep) -> Response:
    """The blob, streamed; `Range: bytes=...` gives 206 with just those bytes. With presigned
    downloads on, a GET is a 307 to the storage URL (a bad range is still refused here)."""
    check_repository(name)
    access.require_pull(hub, name)
    info = blobs.blob(hub, name, digest)
    headers = {**_digest_headers(digest), "Accept-Ranges": "bytes", "ETag": f'"{digest}"'}
    wanted = _byte_range(request.headers.get("range"), info.size)
    status, start, length = 200, 0, info.size
    if wanted is not None:
        status, start, length = 206, wanted[0], wanted[1] - wanted[0] + 1
        headers["Content-Range"] = f"bytes {wanted[0]}-{wanted[1]}/{info.size}"
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=OCTETS)
    redirect = blobs.blob_url(hub, digest)
    if redirect:  # S3 honours the client's Range on the presigned GET, so ranges go there too
        return RedirectResponse(redirect, status_code=307,
                                headers={**_digest_headers(digest), "Cache-Control": "no-store"})
    chunks = metrics.sent("blob", blobs.read_blob(hub, digest, start, length))
    body = _on_the_loop(chunks) if hub.store.local_reads else chunks
    return StreamingResponse(body, status_code=status, headers=headers, media_type=OCTETS)


async def _on_the_loop(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """A local blob's chunks read on the event loop: a 256 KiB read from the page cache
    costs less than handing it to a worker thread and back, which Starlette does for each
    chunk of a plain iterator (2,048 hand-offs for a 512 MiB layer)."""
    for chunk in chunks:
        yield chunk


@router.delete(NAME + "/blobs/{digest}")
def delete_blob(name: str, digest: str, hub: HubDep, access: AccessDep) -> Response:
    check_repository(name)
    blobs.delete_blob(hub, access.require_push(name, DELETE), name, digest)
    return Response(status_code=202, headers=API_VERSION)


# -- manifests, tags, referrers -----------------------------------------------------------


async def _manifest_body(request: Request) -> bytes:
    length = request.headers.get("content-length", "")
    too_big = TooLarge(f"manifest is larger than the limit of {MAX_MANIFEST_SIZE} bytes")
    if length.isdigit() and int(length) > MAX_MANIFEST_SIZE:
        raise too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_MANIFEST_SIZE:
            raise too_big
    return bytes(body)


@router.get(NAME + "/manifests/{reference}")
@router.head(NAME + "/manifests/{reference}")
def get_manifest(name: str, reference: str, request: Request, hub: HubDep,
                 access: AccessDep) -> Response:
    """The manifest byte-exact, with its media type and `Docker-Content-Digest`."""
    check_repository(name)
    access.require_pull(hub, name)
    info = manifest_store.manifest_info(hub, name, reference)
    headers = {**_digest_headers(info.digest), "ETag": f'"{info.digest}"'}
    if request.method == "HEAD":
        return Response(headers={**headers, "Content-Length": str(info.size)},
                        media_type=info.media_type)
    return Response(manifest_store.read_manifest(hub, info), headers=headers,
                    media_type=info.media_type)


@router.put(NAME + "/manifests/{reference}")
async def put_manifest(name: str, reference: str, request: Request, hub: HubDep,
                       access: AccessDep) -> Response:
    check_repository(name)
    check_reference(reference)
    caller = access.require_push(name)
    body = await _manifest_body(request)
    pushed = await run_in_threadpool(manifest_store.put_manifest, hub, caller, name, reference,
                                     request.headers.get("content-type"), body)
    headers = {"Location": f"{PREFIX}/{name}/manifests/{pushed.digest}",
               **_digest_headers(pushed.digest)}
    if pushed.subject:
        headers["OCI-Subject"] = pushed.subject
    return Response(status_code=201, headers=headers)


@router.delete(NAME + "/manifests/{reference}")
def delete_manifest(name: str, reference: str, hub: HubDep, access: AccessDep) -> Response:
    check_repository(name)
    manifest_store.delete_manifest(hub, access.require_push(name, DELETE), name, reference)
    return Response(status_code=202, headers=API_VERSION)


@router.get(NAME + "/tags/list")
def list_tags(name: str, hub: HubDep, access: AccessDep, n: str | None = None,
              last: str | None = None) -> JSONResponse:
    """Tags in lexical order, `n` per page, `Link` to the next page."""
    check_repository(name)
    access.require_pull(hub, name)
    size = _page_size(n)
    names, more = tags.tags(hub, name, size, last)
    link = _next_link(f"{PREFIX}/{name}/tags/list", size, names, more)
    return JSONResponse({"name": name, "tags": names}, headers={**API_VERSION, **link})


@router.get(NAME + "/referrers/{digest}")
def referrers(name: str, digest: str, hub: HubDep, access: AccessDep,
              artifact_type: Annotated[str | None, Query(alias="artifactType")] = None
              ) -> JSONResponse:
    """An image index of the manifests whose `subject` is `digest`."""
    check_repository(name)
    access.require_pull(hub, name)
    found = manifest_store.referrers(hub, name, digest, artifact_type)
    headers = dict(API_VERSION)
    if artifact_type:
        headers["OCI-Filters-Applied"] = "artifactType"
    return JSONResponse({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": found},
                        media_type=OCI_INDEX, headers=headers)
