"""HTTP client of the hub's `/api/v1`: typed results, typed errors, retries on connection errors."""

from __future__ import annotations

import hashlib
import os
import ssl
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from fnhub import __version__
from fnhub.config import HubEntry
from fnhub.core.api_models import (
    Attestations,
    FunctionDetail,
    FunctionSummary,
    KeyInfo,
    KeyRegister,
    NamespaceInfo,
    OidcAudience,
    OidcMintRequest,
    Resolution,
    SearchResults,
    TagRequest,
    TokenCreate,
    TokenCreated,
    TokenInfo,
    TrustedPublisherCreate,
    TrustedPublisherInfo,
    VersionDetail,
    WhoAmI,
    YankRequest,
)
from fnhub.core.errors import (
    DigestMismatch,
    FnhubError,
    HubAnswerMismatch,
    HubUnavailable,
    NotFound,
)
from fnhub.core.index import IndexKeyInfo
from fnhub.progress import CountingReader, transfer

M = TypeVar("M", bound=BaseModel)
CHUNK = 1 << 16


def _parse(model: type[M] | TypeAdapter[Any], response: httpx.Response, path: str) -> Any:
    """A hub answer as `model`; anything else is the hub's fault, said in one line."""
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_json(response.content)
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "the body"
        raise HubAnswerMismatch(
            f"the hub's answer to {path} is malformed ({where}: {problem['msg']})") from None


class _Transport(httpx.BaseTransport):
    """httpx's transport (with retries on connection errors), whose TLS half is built on the
    first https:// request: loading the CA bundle costs a process ~20 ms of CPU, which a
    plain-http hub (and its installs) never needs. A redirect to presigned https storage, or
    an https hub, gets httpx's default verified TLS."""

    def __init__(self, retries: int) -> None:
        self._retries = retries
        # Carries http:// only; were it ever handed https, this context trusts no certificate.
        self._plain = httpx.HTTPTransport(retries=retries,
                                          verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
        self._tls: httpx.HTTPTransport | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "http":
            return self._plain.handle_request(request)
        if self._tls is None:
            self._tls = httpx.HTTPTransport(retries=self._retries)
        return self._tls.handle_request(request)

    def close(self) -> None:
        self._plain.close()
        if self._tls is not None:
            self._tls.close()


class HubClient:
    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": f"fnhub/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.url + "/api/v1",
            headers=headers,
            timeout=timeout,
            transport=_Transport(retries=3),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------

    def _send(self, method: str, path: str, *, accept: tuple[int, ...] = (),
              **kwargs: Any) -> httpx.Response:
        """The hub's response; an error status (other than those in `accept`) raises."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise HubUnavailable(
                f"cannot reach the hub at {self.url}: {exc}",
                hint="check FNHUB_HUB / `hub login --hub URL`, or set FNHUB_OFFLINE=1",
            ) from None
        if response.status_code not in accept:
            self._raise_for_error(response)
        return response

    @staticmethod
    def _raise_for_error(response: httpx.Response) -> None:
        if response.is_success:
            return
        try:
            payload = response.json()
        except ValueError:
            payload = None
        raise FnhubError.from_payload(payload, response.status_code)

    def _get(self, path: str, model: type[M], **params: Any) -> M:
        clean = {k: v for k, v in params.items() if v is not None}
        return _parse(model, self._send("GET", path, params=clean), path)

    # -- reads ----------------------------------------------------------------

    def search(self, query: str = "", *, category: str | None = None, kind: str | None = None,
               namespace: str | None = None, sort: str = "relevance", limit: int = 20,
               offset: int = 0) -> SearchResults:
        return self._get("/functions", SearchResults, q=query or None, category=category,
                         kind=kind, namespace=namespace, sort=sort, limit=limit, offset=offset)

    def function(self, ns: str, name: str) -> FunctionDetail:
        return self._get(f"/functions/{ns}/{name}", FunctionDetail)

    def version(self, ns: str, name: str, version: str) -> VersionDetail:
        return self._get(f"/functions/{ns}/{name}/versions/{version}", VersionDetail)

    def resolve(self, ns: str, name: str, spec: str | None) -> Resolution:
        return self._get(f"/functions/{ns}/{name}/resolve", Resolution, version=spec)

    def attestations(self, ns: str, name: str, version: str) -> list[dict[str, Any]]:
        path = f"/functions/{ns}/{name}/versions/{version}/attestations"
        return _parse(Attestations, self._send("GET", path), path).envelopes

    def keys(self, namespace: str) -> list[KeyInfo]:
        response = self._send("GET", "/keys", params={"namespace": namespace})
        return list(_parse(TypeAdapter(list[KeyInfo]), response, "/keys"))

    def index_key(self) -> IndexKeyInfo | None:
        """The hub's index key and rotation chain; None from a hub that signs no index."""
        try:
            return self._get("/index-key", IndexKeyInfo)
        except NotFound:
            return None

    def function_index(self, ns: str, name: str, etag: str | None) -> tuple[str | None, bytes]:
        """The signed index of NS/NAME as `(etag, envelope bytes)`, or `(etag, b"")` when the
        hub answers 304 Not Modified to `etag`."""
        headers = {"If-None-Match": etag} if etag else {}
        response = self._send("GET", f"/functions/{ns}/{name}/index", headers=headers,
                              accept=(304,))
        if response.status_code == 304:
            return etag, b""
        return response.headers.get("etag"), response.content

    def whoami(self) -> WhoAmI:
        return self._get("/whoami", WhoAmI)

    def download_package(self, ns: str, name: str, version: str, dest: Path,
                         expected_digest: str) -> None:
        """Stream the archive into `dest` (temp + rename), refusing a digest other than expected."""
        tmp = dest.with_name(dest.name + ".incomplete")
        dest.parent.mkdir(parents=True, exist_ok=True)
        sha = hashlib.sha256()
        path = f"/functions/{ns}/{name}/versions/{version}/package"
        try:
            # A hub may redirect to presigned storage; httpx drops Authorization across hosts.
            with self._http.stream("GET", path, follow_redirects=True) as response:
                if not response.is_success:
                    response.read()
                    self._raise_for_error(response)
                total = int(response.headers.get("content-length", 0)) or None
                with transfer(f"{ns}/{name}@{version}", total) as advance, tmp.open("wb") as fh:
                    for chunk in response.iter_bytes(CHUNK):
                        sha.update(chunk)
                        fh.write(chunk)
                        advance(len(chunk))
            actual = "sha256:" + sha.hexdigest()
            if actual != expected_digest:
                raise DigestMismatch(
                    f"package of {ns}/{name}@{version} has digest {actual}, "
                    f"but the hub announced {expected_digest}")
            os.replace(tmp, dest)
        except httpx.TransportError as exc:
            raise HubUnavailable(f"download from {self.url} failed: {exc}") from None
        finally:
            tmp.unlink(missing_ok=True)

    # -- writes ---------------------------------------------------------------

    def publish(self, ns: str, name: str, manifest_text: str, package: Path,
                envelope_json: str) -> VersionDetail:
        size = package.stat().st_size
        with package.open("rb") as fh, transfer(f"upload {ns}/{name}", size) as advance:
            files = {
                "manifest": (None, manifest_text, "application/yaml"),
                "envelope": (None, envelope_json, "application/json"),
                "package": (package.name, CountingReader(fh, advance), "application/gzip"),
            }
            response = self._send("POST", f"/functions/{ns}/{name}/versions", files=files)
        return VersionDetail.model_validate(response.json())

    def yank(self, ns: str, name: str, version: str, reason: str) -> VersionDetail:
        body = YankRequest(reason=reason).model_dump()
        path = f"/functions/{ns}/{name}/versions/{version}/yank"
        return VersionDetail.model_validate(self._send("POST", path, json=body).json())

    def unyank(self, ns: str, name: str, version: str) -> VersionDetail:
        path = f"/functions/{ns}/{name}/versions/{version}/unyank"
        return VersionDetail.model_validate(self._send("POST", path, json={}).json())

    def tag(self, ns: str, name: str, tag: str, version: str) -> FunctionDetail:
        body = TagRequest(version=version).model_dump()
        path = f"/functions/{ns}/{name}/tags/{tag}"
        return FunctionDetail.model_validate(self._send("PUT", path, json=body).json())

    def register_key(self, namespace: str, public_key_b64: str, name: str | None) -> KeyInfo:
        body = KeyRegister(namespace=namespace, public_key=public_key_b64, name=name)
        return KeyInfo.model_validate(self._send("POST", "/keys", json=body.model_dump()).json())

    def create_namespace(self, name: str) -> NamespaceInfo:
        response = self._send("POST", "/namespaces", json={"name": name})
        return NamespaceInfo.model_validate(response.json())

    def create_token(self, request: TokenCreate) -> TokenCreated:
        body = request.model_dump(exclude_none=True)
        return TokenCreated.model_validate(self._send("POST", "/tokens", json=body).json())

    def tokens(self) -> list[TokenInfo]:
        """The caller's own tokens (never their secrets)."""
        return TypeAdapter(list[TokenInfo]).validate_python(self._send("GET", "/tokens").json())

    def revoke_token(self, token_id: int) -> None:
        self._send("DELETE", f"/tokens/{token_id}")

    # -- trusted publishing ---------------------------------------------------

    def oidc_audience(self) -> str:
        return self._get("/oidc/audience", OidcAudience).audience

    def mint_token(self, id_token: str, namespace: str | None = None) -> TokenCreated:
        """Exchange a CI OIDC token for a short-lived publish token."""
        body = OidcMintRequest(token=id_token, namespace=namespace).model_dump(exclude_none=True)
        response = self._send("POST", "/oidc/mint-token", json=body)
        return TokenCreated.model_validate(response.json())

    def add_trusted_publisher(self, namespace: str,
                              request: TrustedPublisherCreate) -> TrustedPublisherInfo:
        response = self._send("POST", f"/namespaces/{namespace}/trusted-publishers",
                              json=request.model_dump())
        return TrustedPublisherInfo.model_validate(response.json())

    def trusted_publishers(self, namespace: str) -> list[TrustedPublisherInfo]:
        data = self._send("GET", f"/namespaces/{namespace}/trusted-publishers").json()
        return TypeAdapter(list[TrustedPublisherInfo]).validate_python(data)

    def remove_trusted_publisher(self, namespace: str, publisher_id: int) -> None:
        self._send("DELETE", f"/namespaces/{namespace}/trusted-publishers/{publisher_id}")


class HubSearchItem(FunctionSummary):
    """A search result, labelled with the hub that has it."""

    hub: str


class HubSearchStatus(BaseModel):
    """How one hub answered: its number of matches and correction, or why it was skipped."""

    url: str
    total: int = 0
    total_capped: bool = False  # the hub counted up to its bound: `total` or more match
    suggestion: str | None = None
    error: str | None = None


class HubsSearchResults(BaseModel):
    """Every configured hub's best matches, hub by hub in the configured order."""

    items: list[HubSearchItem]
    total: int
    limit: int
    hubs: list[HubSearchStatus]

    @property
    def total_capped(self) -> bool:
        """Whether some hub matched more than it counted (`total` is then a lower bound)."""
        return any(status.total_capped for status in self.hubs)


def search_hubs(hubs: list[HubEntry], query: str = "", *, category: str | None = None,
                kind: str | None = None, sort: str = "relevance",
                limit: int = 20) -> HubsSearchResults:
    """Search each hub in order (as URIs resolve: the first hub first); each gives up to
    `limit` results. An unreachable hub is skipped and reported, unless none answers."""
    items: list[HubSearchItem] = []
    statuses: list[HubSearchStatus] = []
    failures: list[HubUnavailable] = []
    for hub in hubs:
        with HubClient(hub.url, hub.token) as client:
            try:
                found = client.search(query, category=category, kind=kind, sort=sort,
                                      limit=limit)
            except HubUnavailable as exc:
                failures.append(exc)
                statuses.append(HubSearchStatus(url=hub.url, error=exc.message))
                continue
        items += [HubSearchItem(hub=hub.url, **item.model_dump()) for item in found.items]
        statuses.append(HubSearchStatus(url=hub.url, total=found.total,
                                        total_capped=found.total_capped,
                                        suggestion=found.suggestion))
    if failures and len(failures) == len(hubs):
        raise failures[0]
    return HubsSearchResults(items=items, total=sum(s.total for s in statuses), limit=limit,
                             hubs=statuses)
