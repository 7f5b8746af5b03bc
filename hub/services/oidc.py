"""Trusted publishing: CI workflows publish with their OIDC ID token instead of a stored secret.

An owner registers a *trusted publisher* on a namespace: an issuer (GitHub Actions and
GitLab.com are known; others come from `oidc_issuers` in the settings), a repository, and
optional workflow, ref and environment constraints. `mint_token` then takes an ID token,
and only when every check passes returns a hub token scoped `publish:<namespace>` that
lives `oidc_token_lifetime` seconds:

1. the token is a JWT whose `iss` is a trusted issuer;
2. its signature verifies (RS256 or ES256) against the issuer's JWKS, found through its
   OpenID configuration and cached for `oidc_jwks_ttl` seconds (refetched early, at most
   once a minute, for an unknown `kid`: keys rotate);
3. `aud` is this hub's audience, `exp`/`iat`/`nbf` hold (30 s leeway), `iss` matches;
4. its claims (repository, workflow, ref, environment) match a trusted publisher;
5. its `jti` was never exchanged before: the (issuer, jti) row is inserted in the same
   transaction as the hub token, so a replay fails on the primary key, on every replica.
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import jwt
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from fnhub.core.api_models import TokenCreated, TrustedPublisherCreate, TrustedPublisherInfo
from fnhub.core.errors import (
    Conflict,
    Forbidden,
    HubUnavailable,
    InvalidInput,
    NotFound,
    Unauthorized,
)
from fnhub.core.oidc_issuers import GITHUB_ISSUER, GITLAB_ISSUER, ISSUER_ALIASES
from fnhub.hub.context import Hub
from fnhub.hub.models import (
    Namespace,
    NamespaceOwner,
    OidcTokenUse,
    Token,
    TrustedPublisher,
    User,
    utcnow,
)
from fnhub.hub.services import auth, namespaces
from fnhub.hub.services.auth import Caller

Flavor = Literal["github", "gitlab"]
KNOWN_ISSUERS: dict[str, Flavor] = {GITHUB_ISSUER: "github", GITLAB_ISSUER: "gitlab"}
ALGORITHMS = ("RS256", "ES256")
LEEWAY = 30  # seconds of clock skew allowed on exp, iat and nbf
MIN_REFETCH = 60.0  # seconds between JWKS fetches of one issuer for unknown key ids
MAX_DOCUMENT = 1 << 20  # an OpenID configuration or JWKS larger than this is refused
FETCH_TIMEOUT = 10.0
MAX_ID = 2**63 - 1
_VALUE = re.compile(r"^\S+$")


# --------------------------------------------------------------------------- issuers and claims


def trusted_issuers(hub: Hub) -> dict[str, Flavor]:
    """Issuer URL -> the claim layout its tokens follow."""
    return {**KNOWN_ISSUERS, **hub.settings.oidc_issuers}


@dataclass(frozen=True)
class CiIdentity:
    """What a token says about the CI job, in one form for every issuer."""

    repository: str
    workflow: str  # path of the workflow file in the repository ("" when unknown)
    ref: str  # refs/heads/BRANCH or refs/tags/TAG
    environment: str


def _text(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name, "")
    return value if isinstance(value, str) else ""


def _workflow_path(ref_uri: str, separator: str) -> str:
    """`.github/workflows/release.yml` out of `owner/repo/.github/workflows/release.yml@refs/..`."""
    path = ref_uri.split("@", 1)[0]
    return path.split(separator, 1)[1] if separator in path else ""


def identity(flavor: Flavor, claims: dict[str, Any]) -> CiIdentity:
    """The CI job a verified token describes; Unauthorized when it names no repository."""
    if flavor == "github":
        repository = _text(claims, "repository")
        prefix = repository + "/"
        workflow_ref = _text(claims, "workflow_ref")
        workflow = (workflow_ref.split("@", 1)[0][len(prefix):]
                    if workflow_ref.startswith(prefix) else "")
        ref = _text(claims, "ref")
    else:
        repository = _text(claims, "project_path")
        workflow = _workflow_path(_text(claims, "ci_config_ref_uri"), "//")
        kind, ref = _text(claims, "ref_type"), _text(claims, "ref")
        ref = {"branch": f"refs/heads/{ref}", "tag": f"refs/tags/{ref}"}.get(kind, ref)
    if not repository:
        claim = "repository" if flavor == "github" else "project_path"
        raise Unauthorized(f"the OIDC token has no {claim!r} claim")
    return CiIdentity(repository, workflow, ref, _text(claims, "environment"))


def matches(rule: TrustedPublisher, job: CiIdentity) -> bool:
    """Whether the job satisfies every constraint of the rule ("" matches anything).

    Repositories compare case-insensitively (GitHub's and GitLab's names do); a workflow
    constraint names the file (`release.yml`) or its path; a ref constraint may be a glob
    (`refs/tags/v*`).
    """
    if rule.repository.lower() != job.repository.lower():
        return False
    if rule.workflow and rule.workflow not in (job.workflow, job.workflow.rsplit("/", 1)[-1]):
        return False
    if rule.ref and not fnmatch.fnmatchcase(job.ref, rule.ref):
        return False
    return not rule.environment or rule.environment == job.environment


# --------------------------------------------------------------------------- keys


def _fetch_json(url: str, what: str) -> dict[str, Any]:
    """A small JSON document from an issuer (size-capped; redirects refused).

    httpx is imported here, on a hub's first token exchange: a hub without trusted
    publishers never makes an outgoing request, so it never loads the client (~1 MiB)."""
    import httpx

    try:
        with httpx.stream("GET", url, timeout=FETCH_TIMEOUT, follow_redirects=False) as response:
            if response.status_code != 200:
                raise HubUnavailable(f"fetching the {what} at {url} gave HTTP "
                                     f"{response.status_code}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body.extend(chunk)
                if len(body) > MAX_DOCUMENT:
                    raise HubUnavailable(f"the {what} at {url} is larger than 1 MiB")
    except httpx.HTTPError as exc:
        raise HubUnavailable(f"cannot fetch the {what} at {url}: {exc}") from None
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise HubUnavailable(f"the {what} at {url} is not a JSON object")
    return data


class JwksCache:
    """The issuers' signing keys, fetched through their OpenID configuration, kept `ttl` s."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sets: dict[str, tuple[float, dict[str, jwt.PyJWK]]] = {}

    def _fetch(self, issuer: str) -> dict[str, jwt.PyJWK]:
        config = _fetch_json(f"{issuer}/.well-known/openid-configuration",
                             "OpenID configuration")
        if str(config.get("issuer", "")).rstrip("/") != issuer:
            raise HubUnavailable(f"the OpenID configuration of {issuer} names another issuer")
        jwks_uri = config.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise HubUnavailable(f"the OpenID configuration of {issuer} has no jwks_uri")
        document = _fetch_json(jwks_uri, "JWKS")
        try:
            keys = jwt.PyJWKSet.from_dict(document).keys
        except jwt.PyJWTError as exc:
            raise HubUnavailable(f"the JWKS of {issuer} is unusable: {exc}") from None
        return {key.key_id or "": key for key in keys}

    def key(self, issuer: str, kid: str, ttl: float) -> jwt.PyJWK:
        """The issuer's key `kid`; Unauthorized when the issuer publishes no such key."""
        with self._lock:
            now = time.monotonic()
            fetched, keys = self._sets.get(issuer, (float("-inf"), {}))
            stale = now - fetched > ttl
            if stale or (kid not in keys and now - fetched > MIN_REFETCH):
                keys = self._fetch(issuer)
                self._sets[issuer] = (now, keys)
        if kid in keys:
            return keys[kid]
        if not kid and len(keys) == 1:
            return next(iter(keys.values()))
        raise Unauthorized(f"the OIDC token was signed with key {kid!r}, which {issuer} "
                           "does not publish")


JWKS = JwksCache()


# --------------------------------------------------------------------------- verification


def _when(timestamp: Any) -> str:
    try:
        return datetime.fromtimestamp(float(timestamp), timezone.utc).isoformat()
    except (TypeError, ValueError, OverflowError):
        return str(timestamp)


def verify(hub: Hub, token: str) -> tuple[str, dict[str, Any]]:
    """The issuer and claims of a valid ID token for this hub; Unauthorized naming what failed."""
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise Unauthorized("the OIDC token is not a well-formed JWT") from None
    issuer = str(unverified.get("iss", "")).rstrip("/")
    issuers = trusted_issuers(hub)
    if issuer not in issuers:
        raise Unauthorized(f"OIDC issuer {issuer or '(none)'!r} is not trusted by this hub",
                           hint="trusted issuers: " + ", ".join(sorted(issuers)))
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise Unauthorized(f"OIDC token algorithm {algorithm!r} is not accepted: use "
                           + " or ".join(ALGORITHMS))
    key = JWKS.key(issuer, str(header.get("kid") or ""), hub.settings.oidc_jwks_ttl)
    if key.algorithm_name != algorithm:
        raise Unauthorized(f"the OIDC token says {algorithm}, but its key is for "
                           f"{key.algorithm_name}")
    audience = hub.settings.audience
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key=key, algorithms=[algorithm], audience=audience,
            issuer=unverified.get("iss"), leeway=LEEWAY,
            options={"require": ["exp", "iat", "iss", "aud", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized(f"the OIDC token expired at {_when(unverified.get('exp'))}",
                           hint="request a fresh token from the CI job") from None
    except jwt.InvalidAudienceError:
        raise Unauthorized(f"the OIDC token is not for this hub (its audience is "
                           f"{unverified.get('aud')!r}, this hub's is {audience!r})",
                           hint="GET /api/v1/oidc/audience tells the audience to ask for"
                           ) from None
    except jwt.InvalidSignatureError:
        raise Unauthorized(f"the OIDC token's signature does not verify with {issuer}'s "
                           "key") from None
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthorized(f"the OIDC token lacks the {exc.claim!r} claim") from None
    except jwt.ImmatureSignatureError:
        raise Unauthorized("the OIDC token is not valid yet (iat or nbf in the future)"
                           ) from None
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid OIDC token: {exc}") from None
    if not isinstance(claims["jti"], str) or not 0 < len(claims["jti"]) <= 255:
        raise Unauthorized("the OIDC token's 'jti' claim is not a usable token id")
    return issuer, claims


def _pick(session: Session, issuer: str, job: CiIdentity,
          namespace: str | None) -> tuple[TrustedPublisher, str]:
    """The matching trusted publisher (and its namespace); one namespace only."""
    rows = session.exec(
        select(TrustedPublisher, Namespace.name).join(Namespace)
        .where(TrustedPublisher.issuer == issuer).order_by(col(TrustedPublisher.id))
    ).all()
    found = [(rule, ns) for rule, ns in rows
             if matches(rule, job) and (namespace is None or ns == namespace)]
    where = f" for namespace {namespace!r}" if namespace else ""
    if not found:
        raise Forbidden(
            f"no trusted publisher{where} matches repository {job.repository!r} "
            f"(workflow {job.workflow or '-'}, ref {job.ref or '-'}, "
            f"environment {job.environment or '-'})",
            hint="a namespace owner adds one with `hub trusted-publisher add`",
        )
    names = sorted({ns for _, ns in found})
    if len(names) > 1:
        raise InvalidInput(f"the OIDC token matches trusted publishers of several namespaces "
                           f"({', '.join(names)}): say which with 'namespace'")
    return found[0]


def mint_token(hub: Hub, token: str, namespace: str | None = None) -> TokenCreated:
    """Exchange a CI job's OIDC ID token for a short-lived `publish:<namespace>` hub token."""
    issuer, claims = verify(hub, token)
    job = identity(trusted_issuers(hub)[issuer], claims)
    now = utcnow()
    expires = now + timedelta(seconds=hub.settings.oidc_token_lifetime)
    secret = auth.new_token_secret()
    with hub.db.write() as session:
        rule, ns = _pick(session, issuer, job, namespace)
        owner = session.get(NamespaceOwner, (rule.namespace_id, rule.created_by))
        user = session.get(User, rule.created_by)
        if owner is None or user is None:
            raise Forbidden(f"the trusted publisher of {ns!r} was added by a user who no "
                            "longer owns the namespace",
                            hint="an owner adds the trusted publisher again")
        session.execute(delete(OidcTokenUse).where(
            col(OidcTokenUse.expires_at) < now - timedelta(seconds=LEEWAY)))
        try:
            with session.begin_nested():
                session.add(OidcTokenUse(
                    issuer=issuer, jti=claims["jti"],
                    expires_at=datetime.fromtimestamp(claims["exp"], timezone.utc)
                    + timedelta(seconds=LEEWAY)))
                session.flush()
        except IntegrityError:
            raise Unauthorized("this OIDC token was already exchanged (its jti is used up)",
                               hint="request a fresh token from the CI job") from None
        row = Token(user_id=user.id, name=f"oidc {job.repository}@{job.ref or '-'}"[:100],
                    token_hash=auth.hash_token(secret), scopes=[auth.publish_scope(ns)],
                    expires_at=expires)
        session.add(row)
        session.flush()
        assert row.id is not None
        return TokenCreated(id=row.id, name=row.name, user=user.name, scopes=row.scopes,
                            created_at=row.created_at, expires_at=row.expires_at, token=secret)


# --------------------------------------------------------------------------- management


def _clean(value: str, what: str) -> str:
    value = value.strip()
    if value and not _VALUE.match(value):
        raise InvalidInput(f"{what} {value!r} must not contain spaces")
    return value


def _check(hub: Hub, request: TrustedPublisherCreate) -> TrustedPublisherCreate:
    """The request with its issuer resolved and every constraint well-formed."""
    issuer = ISSUER_ALIASES.get(request.issuer.strip(), request.issuer.strip()).rstrip("/")
    issuers = trusted_issuers(hub)
    if issuer not in issuers:
        raise InvalidInput(f"OIDC issuer {issuer!r} is not trusted by this hub",
                           hint="use github, gitlab or one of: " + ", ".join(sorted(issuers)))
    repository = _clean(request.repository, "repository")
    parts = repository.split("/")
    if len(parts) < 2 or not all(parts):
        raise InvalidInput(f"repository {repository!r} must look like OWNER/NAME "
                           "(GitLab: GROUP/[SUBGROUP/]PROJECT)")
    ref = _clean(request.ref, "ref")
    if ref and not ref.startswith("refs/"):
        raise InvalidInput(f"ref {ref!r} must be a full ref, like refs/heads/main or "
                           "refs/tags/v*")
    return TrustedPublisherCreate(
        issuer=issuer, repository=repository, workflow=_clean(request.workflow, "workflow"),
        ref=ref, environment=_clean(request.environment, "environment"))


def _info(session: Session, rule: TrustedPublisher, namespace: str) -> TrustedPublisherInfo:
    creator = session.get(User, rule.created_by)
    assert rule.id is not None
    return TrustedPublisherInfo(
        id=rule.id, namespace=namespace, issuer=rule.issuer, repository=rule.repository,
        workflow=rule.workflow, ref=rule.ref, environment=rule.environment,
        created_by=creator.name if creator else "", created_at=rule.created_at)


def _owned(session: Session, caller: Caller, namespace: str) -> Namespace:
    found = namespaces.authorize(session, caller, namespace, create=False)
    if found is None:
        raise NotFound(f"no namespace {namespace!r}")
    return found


def add(hub: Hub, caller: Caller, namespace: str,
        request: TrustedPublisherCreate) -> TrustedPublisherInfo:
    """Trust a CI workflow to publish into `namespace` (claimed for the caller when free)."""
    clean = _check(hub, request)
    with hub.db.write() as session:
        found = namespaces.authorize(session, caller, namespace, create=True)
        assert found is not None and found.id is not None
        rule = TrustedPublisher(namespace_id=found.id, created_by=caller.user_id,
                                **clean.model_dump())
        try:
            with session.begin_nested():
                session.add(rule)
                session.flush()
        except IntegrityError:
            raise Conflict(f"namespace {namespace!r} already trusts exactly this publisher"
                           ) from None
        return _info(session, rule, namespace)


def list_for(hub: Hub, caller: Caller, namespace: str) -> list[TrustedPublisherInfo]:
    """The namespace's trusted publishers (owners and admins only)."""
    with hub.db.read() as session:
        found = _owned(session, caller, namespace)
        rules = session.exec(select(TrustedPublisher)
                             .where(TrustedPublisher.namespace_id == found.id)
                             .order_by(col(TrustedPublisher.id))).all()
        return [_info(session, rule, namespace) for rule in rules]


def remove(hub: Hub, caller: Caller, namespace: str, publisher_id: int) -> None:
    """Stop trusting a publisher; tokens it already minted expire on their own."""
    with hub.db.write() as session:
        found = _owned(session, caller, namespace)
        rule = session.get(TrustedPublisher, publisher_id) if 0 < publisher_id <= MAX_ID else None
        if rule is None or rule.namespace_id != found.id:
            raise NotFound(f"namespace {namespace!r} has no trusted publisher {publisher_id}")
        session.delete(rule)
