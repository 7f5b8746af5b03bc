"""Users, API tokens and scopes.

A token is `fnhub_` + 43 random URL-safe characters; the database keeps only its sha256.
Scopes: `read`, `publish:<namespace>`, `publish:*` and `admin` (which holds every scope).
Every valid token may read; writes need the scope naming what they change.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import String, cast
from sqlmodel import Session, col, select

from fnhub.core.api_models import TokenCreate, TokenCreated, TokenInfo, WhoAmI
from fnhub.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from fnhub.core.names import namespace_problem
from fnhub.hub.context import Hub
from fnhub.hub.models import Namespace, NamespaceOwner, Token, User, utcnow

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "fnhub_"
ADMIN_USER = "admin"
ADMIN_TOKEN_FILE = "admin-token"
BOOTSTRAP_TOKEN_NAME = "bootstrap"  # the admin token of the token file or FNHUB_SERVER_ADMIN_TOKEN
READ, ADMIN, PUBLISH_ANY = "read", "admin", "publish:*"
MAX_TOKEN_LENGTH = 200
MAX_LIFETIME = timedelta(days=3660)
MAX_ID = 2**63 - 1  # the database's integer range


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def publish_scope(namespace: str) -> str:
    return f"publish:{namespace}"


def check_scope(scope: str) -> str:
    """A well-formed scope, or InvalidInput listing the forms that exist."""
    if scope in (READ, ADMIN, PUBLISH_ANY):
        return scope
    kind, _, namespace = scope.partition(":")
    if kind == "publish" and namespace and namespace_problem(namespace) is None:
        return scope
    raise InvalidInput(
        f"unknown scope {scope!r}: use read, publish:NAMESPACE, publish:* or admin"
    )


@dataclass(frozen=True)
class Caller:
    """Who is making a request: the token's user and the scopes the token grants."""

    user_id: int
    user: str
    scopes: frozenset[str]
    token_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.scopes

    def holds(self, scope: str) -> bool:
        """Whether this token grants `scope` (any token reads; admin grants everything)."""
        if self.is_admin or scope == READ or scope in self.scopes:
            return True
        return scope.startswith("publish:") and PUBLISH_ANY in self.scopes

    def require(self, scope: str) -> None:
        if not self.holds(scope):
            raise Forbidden(
                f"this token lacks the scope {scope!r}",
                hint=f"mint a token with `{scope}` (POST /api/v1/tokens)",
            )


def _user_named(session: Session, name: str) -> User | None:
    return session.exec(select(User).where(User.name == name)).first()


def ensure_user(session: Session, name: str) -> User:
    """The user called `name`, created on first use (names follow the namespace rules)."""
    if problem := namespace_problem(name):
        raise InvalidInput(f"invalid user name {name!r}: {problem}")
    user = _user_named(session, name)
    if user is None:
        user = User(name=name)
        session.add(user)
        session.flush()
    return user


def authenticate(hub: Hub, token: str) -> Caller:
    """The caller a bearer token stands for; Unauthorized for unknown or expired tokens."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise Unauthorized("invalid token")
    with hub.db.read() as session:
        row = session.exec(
            select(Token, User).join(User).where(Token.token_hash == hash_token(token))
        ).first()
    if row is None:
        raise Unauthorized("invalid token", hint="check FNHUB_TOKEN or run `hub login` again")
    found, user = row
    if found.expires_at is not None and found.expires_at <= utcnow():
        raise Unauthorized(f"token {found.name!r} expired at {found.expires_at.isoformat()}")
    assert found.id is not None and user.id is not None
    return Caller(user_id=user.id, user=user.name, scopes=frozenset(found.scopes),
                  token_id=found.id)


def _info(token: Token, user: str) -> TokenInfo:
    assert token.id is not None
    return TokenInfo(id=token.id, name=token.name, user=user, scopes=token.scopes,
                     created_at=token.created_at, expires_at=token.expires_at)


def create_token(hub: Hub, caller: Caller, request: TokenCreate) -> TokenCreated:
    """Mint a token: for yourself with scopes you hold, or (admins) for any user, created then."""
    scopes = sorted({check_scope(scope) for scope in request.scopes})
    owner = request.user or caller.user
    if owner != caller.user and not caller.is_admin:
        raise Forbidden("only admins may mint tokens for other users")
    for scope in scopes:
        caller.require(scope)
    expires = None
    if request.expires_in is not None:
        if request.expires_in > MAX_LIFETIME.total_seconds():
            raise InvalidInput(f"expires_in is more than {MAX_LIFETIME.days} days")
        expires = utcnow() + timedelta(seconds=request.expires_in)
    secret = new_token_secret()
    with hub.db.write() as session:
        user = ensure_user(session, owner)
        assert user.id is not None
        token = Token(user_id=user.id, name=request.name, token_hash=hash_token(secret),
                      scopes=scopes, expires_at=expires)
        session.add(token)
        session.flush()
        info = _info(token, user.name)
    return TokenCreated(**info.model_dump(), token=secret)


def list_tokens(hub: Hub, caller: Caller) -> list[TokenInfo]:
    """The caller's own tokens, without their secrets."""
    with hub.db.read() as session:
        tokens = session.exec(
            select(Token).where(Token.user_id == caller.user_id).order_by(col(Token.id))
        ).all()
        return [_info(token, caller.user) for token in tokens]


def _other_admin_tokens(session: Session, token_id: int) -> int:
    """How many unexpired admin tokens besides `token_id` exist; their rows are locked
    (FOR UPDATE on PostgreSQL), so two revocations cannot each leave the other's as last."""
    candidates = session.exec(
        select(Token).where(Token.id != token_id,
                            cast(Token.scopes, String).contains(f'"{ADMIN}"'))
        .order_by(col(Token.id)).with_for_update()
    ).all()
    now = utcnow()
    return sum(1 for token in candidates
               if ADMIN in token.scopes and (token.expires_at is None or token.expires_at > now))


def revoke_token(hub: Hub, caller: Caller, token_id: int) -> None:
    """Delete one of the caller's tokens (admins may delete anyone's), but never the last
    admin token: that would lock the hub's operators out."""
    if not 1 <= token_id <= MAX_ID:
        raise NotFound(f"you have no token with id {token_id}")
    with hub.db.write() as session:
        token = session.get(Token, token_id)
        if token is None or (token.user_id != caller.user_id and not caller.is_admin):
            raise NotFound(f"you have no token with id {token_id}")
        if ADMIN in token.scopes and not _other_admin_tokens(session, token_id):
            raise Conflict(
                f"token {token.name!r} is the hub's last admin token: revoking it would lock "
                "the hub's operators out",
                hint="mint another admin token first (hub tokens create NAME --scope admin)")
        session.delete(token)


def owned_namespaces(session: Session, user_id: int) -> list[str]:
    return list(session.exec(
        select(Namespace.name).join(NamespaceOwner)
        .where(NamespaceOwner.user_id == user_id).order_by(Namespace.name)
    ).all())


def whoami(hub: Hub, caller: Caller) -> WhoAmI:
    with hub.db.read() as session:
        namespaces = owned_namespaces(session, caller.user_id)
    return WhoAmI(user=caller.user, scopes=sorted(caller.scopes), namespaces=namespaces)


def _write_secret_file(path: Path, secret: str) -> None:
    """Write `secret` to `path` readable by the owner only (0600 from the first byte)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secret + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _is_bootstrap(session: Session, admin: User, secret: str) -> bool:
    token = session.exec(select(Token).where(Token.token_hash == hash_token(secret))).first()
    return (token is not None and token.user_id == admin.id
            and token.name == BOOTSTRAP_TOKEN_NAME)


def _replace_bootstrap(session: Session, admin: User, secret: str) -> None:
    for old in session.exec(select(Token).where(Token.user_id == admin.id,
                                                Token.name == BOOTSTRAP_TOKEN_NAME)).all():
        session.delete(old)
    session.flush()
    assert admin.id is not None
    session.add(Token(user_id=admin.id, name=BOOTSTRAP_TOKEN_NAME,
                      token_hash=hash_token(secret), scopes=[ADMIN]))


def ensure_admin_token(hub: Hub) -> Path | None:
    """Make sure the `admin` user has its bootstrap token; returns the token file, if any.

    With FNHUB_SERVER_ADMIN_TOKEN that token is the bootstrap token (replaced when the
    variable changes). Otherwise the token lives in `<data_dir>/admin-token` (0600); it is
    minted on first start, and again whenever the file no longer matches the database.
    Only the file's path is ever logged, never the token.
    """
    configured = hub.settings.admin_token
    path = hub.settings.data_dir / ADMIN_TOKEN_FILE
    with hub.db.write() as session:
        admin = ensure_user(session, ADMIN_USER)
        if configured is not None:
            secret = configured.get_secret_value().strip()
            if not _is_bootstrap(session, admin, secret):
                _replace_bootstrap(session, admin, secret)
            minted = False
        else:
            try:
                current = path.read_text().strip()
            except FileNotFoundError:
                current = ""
            minted = not current or not _is_bootstrap(session, admin, current)
            if minted:
                secret = new_token_secret()
                _replace_bootstrap(session, admin, secret)
                _write_secret_file(path, secret)
    if configured is not None:
        logger.info("admin token set from FNHUB_SERVER_ADMIN_TOKEN")
        return None
    logger.info("admin token %s %s", "written to" if minted else "is in", path)
    return path


def operator(hub: Hub) -> Caller:
    """The hub acting as its own operator (the `admin` user), e.g. to seed the catalog."""
    with hub.db.write() as session:
        admin = ensure_user(session, ADMIN_USER)
    assert admin.id is not None
    return Caller(user_id=admin.id, user=admin.name, scopes=frozenset({ADMIN}))
