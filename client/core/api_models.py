"""Pydantic models of the hub's JSON API (design §6), shared by the hub and the client."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SortOrder = Literal["relevance", "downloads", "updated", "name"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(_Wire):
    code: str
    message: str
    hint: str | None = None


class ErrorBody(_Wire):
    error: ErrorDetail


class PackageInfo(_Wire):
    digest: str  # "sha256:HEX"
    size: int


class ImageInfo(_Wire):
    ref: str | None = None
    digest: str | None = None


class SignatureInfo(_Wire):
    keyid: str


class VersionSummary(_Wire):
    version: str
    digest: str
    yanked: bool = False
    yank_reason: str | None = None
    published_at: datetime


class FunctionSummary(_Wire):
    namespace: str
    name: str
    latest_version: str | None
    description: str
    kind: str
    categories: list[str]
    labels: dict[str, str]
    downloads: int
    updated_at: datetime


class FunctionDetail(FunctionSummary):
    versions: list[VersionSummary]
    tags: dict[str, str]


class VersionDetail(_Wire):
    namespace: str
    name: str
    version: str
    manifest: dict[str, Any]
    package: PackageInfo
    image: ImageInfo | None = None
    signatures: list[SignatureInfo]
    yanked: bool
    yank_reason: str | None = None
    published_at: datetime
    downloads: int


class SearchResults(_Wire):
    items: list[FunctionSummary]
    # how many match in all, counted up to a bound (the hub's TOTAL_CAP, 1,000): when more
    # match, `total` is the bound and `total_capped` is true ("1,000 or more")
    total: int
    total_capped: bool = False
    limit: int
    offset: int
    # set when nothing matched the query as given: the query with its unknown words corrected
    # (one typo away from an indexed word), whose results these are
    suggestion: str | None = None


class Resolution(_Wire):
    namespace: str
    name: str
    version: str
    digest: str
    yanked: bool


class YankRequest(_Wire):
    reason: str = Field(min_length=1, max_length=1000)


class TagRequest(_Wire):
    version: str


class NamespaceCreate(_Wire):
    name: str


class NamespaceInfo(_Wire):
    name: str
    owners: list[str]
    created_at: datetime


class KeyRegister(_Wire):
    namespace: str
    public_key: str  # base64 of the raw 32-byte Ed25519 public key
    name: str | None = None


class KeyInfo(_Wire):
    keyid: str
    namespace: str
    public_key: str
    name: str | None = None
    created_at: datetime


class TokenCreate(_Wire):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(min_length=1)
    user: str | None = None  # admins may mint tokens for another user
    expires_in: int | None = Field(default=None, gt=0)  # seconds


class TokenInfo(_Wire):
    id: int
    name: str
    user: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None = None


class TokenCreated(TokenInfo):
    token: str  # shown once, stored hashed


class WhoAmI(_Wire):
    user: str
    scopes: list[str]
    namespaces: list[str]


class Attestations(_Wire):
    envelopes: list[dict[str, Any]]  # DSSE envelopes, as signed at publish time


class OidcAudience(_Wire):
    audience: str  # the `aud` a CI OIDC token must carry for this hub


class OidcMintRequest(_Wire):
    token: str = Field(min_length=1, max_length=16384)  # the CI's OIDC ID token (a JWT)
    namespace: str | None = None  # which namespace, when the token matches several


class TrustedPublisherCreate(_Wire):
    """A CI workflow allowed to publish into a namespace; empty constraints match anything."""

    issuer: str = Field(min_length=1, max_length=255)  # URL, or `github` / `gitlab`
    repository: str = Field(min_length=1, max_length=255)  # owner/repo, group/project
    workflow: str = Field(default="", max_length=255)  # e.g. release.yml, .gitlab-ci.yml
    ref: str = Field(default="", max_length=255)  # e.g. refs/heads/main, refs/tags/v*
    environment: str = Field(default="", max_length=255)


class TrustedPublisherInfo(TrustedPublisherCreate):
    id: int
    namespace: str
    created_by: str
    created_at: datetime
