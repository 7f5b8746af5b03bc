"""Who may pull and push: the Docker token flow, and hub API tokens used directly.

OCI clients (docker, podman, skopeo, oras) meet a 401 whose challenge names the token
endpoint (`GET /v2/token`, Basic auth with a hub API token as the password, or none for
anonymous pulls). It answers with a short-lived HS256 JWT whose `access` claims list the
actions granted per repository: the asked-for actions the caller holds, nothing more. The
signing secret is `FNHUB_SERVER_OCI_TOKEN_SECRET` when set (replicas share it that way);
otherwise it is made on first use and kept in `<data-dir>/oci-token-secret` (0600), so
every hub process sharing the data dir accepts the same tokens.

Rights follow the hub: `pull` where the hub is public or for any valid token; `push` and
`delete` on `<ns>/...` for tokens holding `publish:<ns>` whose user owns the namespace (or
may claim it while it is free). Scripts may also send a hub API token directly
(`Authorization: Bearer fnhub_...` or Basic auth).
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import uuid
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt

from fnhub.core.errors import Forbidden, InvalidInput, Unauthorized
from fnhub.hub.context import Hub
from fnhub.hub.oci.errors import Denied, NameInvalid, NeedsToken
from fnhub.hub.oci.names import check_repository, namespace_of
from fnhub.hub.services import auth, namespaces
from fnhub.hub.services.auth import ADMIN, Caller, publish_scope

TOKEN_TTL = 300  # seconds
LEEWAY = 30
ISSUER = "fnhub"
SECRET_FILE = "oci-token-secret"
ALGORITHM = "HS256"
PULL, PUSH, DELETE, ALL = "pull", "push", "delete", "*"
WRITE_ACTIONS = frozenset({PUSH, DELETE, ALL})
CATALOG = "catalog"


@dataclass(frozen=True)
class Scope:
    """`repository:alice/fn:pull,push` or `registry:catalog:*`."""

    type: str
    name: str
    actions: frozenset[str]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"


def parse_scope(text: str) -> Scope | None:
    """A scope from a token request; None for one this registry does not know."""
    kind, _, rest = text.partition(":")
    name, _, actions = rest.rpartition(":")
    wanted = frozenset(a for a in actions.split(",") if a)
    if kind not in ("repository", "registry") or not name or not wanted:
        return None
    return Scope(kind, name, wanted)


def repository_scope(repository: str, *actions: str) -> str:
    return str(Scope("repository", repository, frozenset(actions)))


@lru_cache(maxsize=16)
def _secret(path: str) -> bytes:
    """The signing secret in `path`, created (0600, published atomically) on first use."""
    target = Path(path)
    if not target.is_file():
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            with suppress(FileExistsError):  # a concurrent first start keeps its secret
                os.link(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return bytes.fromhex(target.read_text().strip())


def signing_secret(hub: Hub) -> bytes:
    if hub.settings.oci_token_secret is not None:
        return hub.settings.oci_token_secret.get_secret_value().encode()
    return _secret(str(hub.settings.data_dir / SECRET_FILE))


@dataclass(frozen=True)
class Access:
    """What a request to `/v2/` may do.

    `caller` is the hub user behind a hub API token, or the user a JWT was issued to (None
    when anonymous). `grants` are a JWT's access claims (repository or `catalog` -> actions);
    None when the request carries a hub API token or nothing, and rights come from the hub.
    """

    caller: Caller | None = None
    grants: Mapping[str, frozenset[str]] | None = field(default=None)

    def _granted(self, name: str, action: str) -> bool:
        assert self.grants is not None
        held = self.grants.get(name, frozenset())
        return action in held or ALL in held

    def require_pull(self, hub: Hub, repository: str) -> None:
        if self.grants is not None:
            if not self._granted(repository, PULL):
                raise NeedsToken(f"this token does not grant pulling from {repository}",
                                 scope=repository_scope(repository, PULL), insufficient=True)
            return
        if self.caller is None and hub.settings.private:
            raise NeedsToken("this hub is private: pulling needs credentials",
                             scope=repository_scope(repository, PULL))

    def require_push(self, repository: str, action: str = PUSH) -> Caller:
        """The caller to check namespace ownership with; 401 or 403 when it may not push."""
        namespace = namespace_of(repository)
        scope = repository_scope(repository, PULL, action)
        if self.caller is None:
            raise NeedsToken(f"{action} to {repository} needs credentials", scope=scope,
                             hint="log in with a hub API token as the password")
        if self.grants is not None:
            if not self._granted(repository, action):
                raise NeedsToken(f"this token does not grant {action} on {repository}",
                                 scope=scope, insufficient=True)
            return Caller(user_id=self.caller.user_id, user=self.caller.user,
                          scopes=self.caller.scopes | {publish_scope(namespace)})
        if not self.caller.holds(publish_scope(namespace)):
            raise Denied(f"this token lacks the scope 'publish:{namespace}' needed to "
                         f"{action} {repository}")
        return self.caller

    def require_catalog(self, hub: Hub) -> None:
        if self.grants is not None:
            if not self._granted(CATALOG, ALL):
                raise NeedsToken("this token does not grant listing the catalog",
                                 scope="registry:catalog:*", insufficient=True)
            return
        if self.caller is None and hub.settings.private:
            raise NeedsToken("this hub is private: listing needs credentials",
                             scope="registry:catalog:*")


def _basic_password(value: str) -> str:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise Unauthorized("malformed Basic credentials") from None
    _user, sep, password = decoded.partition(":")
    if not sep:
        raise Unauthorized("malformed Basic credentials")
    return password


def hub_caller(hub: Hub, authorization: str | None) -> Caller | None:
    """The caller of a hub API token sent as Basic password or Bearer; None without one."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "basic":
        return auth.authenticate(hub, _basic_password(value.strip()))
    if scheme.lower() == "bearer":
        return auth.authenticate(hub, value.strip())
    raise Unauthorized(f"unsupported authorization scheme {scheme!r}")


def identify(hub: Hub, authorization: str | None, service: str) -> Access:
    """The access of a `/v2/` request from its Authorization header."""
    if not authorization:
        return Access()
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or value.startswith(auth.TOKEN_PREFIX):
        return Access(caller=hub_caller(hub, authorization))
    try:
        claims = jwt.decode(value, signing_secret(hub), algorithms=[ALGORITHM],
                            audience=service, issuer=ISSUER, leeway=LEEWAY,
                            options={"require": ["exp", "iat", "aud", "iss", "access"]})
    except jwt.PyJWTError as exc:
        raise NeedsToken(f"invalid registry token: {exc}") from None
    grants: dict[str, frozenset[str]] = {}
    for item in claims.get("access") or []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            grants[item["name"]] = frozenset(str(a) for a in item.get("actions") or [])
    caller = None
    if isinstance(claims.get("uid"), int):
        caller = Caller(user_id=claims["uid"], user=str(claims.get("sub", "")),
                        scopes=frozenset({ADMIN}) if claims.get("adm") else frozenset())
    return Access(caller=caller, grants=grants)


def _may_push(hub: Hub, caller: Caller, namespace: str) -> bool:
    if not caller.holds(publish_scope(namespace)):
        return False
    with hub.db.read() as session:
        try:
            namespaces.authorize(session, caller, namespace, create=False)
        except (Forbidden, InvalidInput):
            return False
    return True


def _allowed(hub: Hub, caller: Caller | None, scope: Scope) -> frozenset[str]:
    """The actions of `scope` this caller holds."""
    readable = caller is not None or not hub.settings.private
    if scope.type == "registry":
        return scope.actions & {ALL} if scope.name == CATALOG and readable else frozenset()
    try:
        check_repository(scope.name)
    except NameInvalid:
        return frozenset()
    allowed = {PULL} if readable else set()
    if scope.actions & WRITE_ACTIONS and caller is not None and _may_push(
            hub, caller, namespace_of(scope.name)):
        allowed |= WRITE_ACTIONS
    return scope.actions & allowed


def issue(hub: Hub, caller: Caller | None, service: str, scopes: list[str]) -> dict[str, Any]:
    """The token endpoint's answer: a JWT granting what the caller holds of `scopes`."""
    access = []
    for text in scopes:
        scope = parse_scope(text)
        if scope is None:
            continue
        if actions := _allowed(hub, caller, scope):
            access.append({"type": scope.type, "name": scope.name, "actions": sorted(actions)})
    now = datetime.now(timezone.utc)
    claims: dict[str, Any] = {
        "iss": ISSUER, "aud": service, "sub": caller.user if caller else "",
        "iat": now, "nbf": now, "exp": now.timestamp() + TOKEN_TTL,
        "jti": uuid.uuid4().hex, "access": access,
    }
    if caller is not None:
        claims["uid"] = caller.user_id
        claims["adm"] = caller.is_admin
    token = jwt.encode(claims, signing_secret(hub), algorithm=ALGORITHM)
    return {"token": token, "access_token": token, "expires_in": TOKEN_TTL,
            "issued_at": now.isoformat()}
