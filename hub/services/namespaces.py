"""Namespaces and their owners.

A free namespace goes to the first user who claims it: explicitly (POST /namespaces), by
registering a key for it, or by publishing into it. `library` is reserved for the hub's
operators (admin tokens). Changing a namespace needs `publish:<ns>` and ownership, or admin.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from fnhub.core.api_models import NamespaceInfo
from fnhub.core.errors import Conflict, Forbidden, NotFound
from fnhub.core.names import DEFAULT_NAMESPACE, check_namespace, closest
from fnhub.hub.context import Hub
from fnhub.hub.models import Namespace, NamespaceOwner, User
from fnhub.hub.services.auth import Caller, publish_scope

RESERVED = DEFAULT_NAMESPACE
MAX_GUESSES = 5


def near(word: str, candidates: Iterable[str], limit: int = MAX_GUESSES) -> list[str]:
    """Up to `limit` of `candidates` close to `word` (a mistyped name), the likeliest first."""
    pool = sorted(set(candidates))
    first = closest(word, pool)
    close = difflib.get_close_matches(word.lower(), pool, n=limit, cutoff=0.6)
    return list(dict.fromkeys([*([first] if first else []), *close]))[:limit]


def find(session: Session, name: str) -> Namespace | None:
    return session.exec(select(Namespace).where(Namespace.name == name)).first()


def likely(session: Session, name: str, limit: int = MAX_GUESSES) -> list[str]:
    """The existing namespaces someone asking for `name` most likely meant."""
    return near(name, session.exec(select(Namespace.name)).all(), limit)


def require(session: Session, name: str) -> Namespace:
    """The namespace, or NotFound naming the closest existing one."""
    check_namespace(name)
    namespace = find(session, name)
    if namespace is None:
        guesses = likely(session, name, 1)
        raise NotFound(f"no namespace {name!r}",
                       hint=f"did you mean {guesses[0]!r}?" if guesses else None)
    return namespace


def owners(session: Session, namespace: Namespace) -> list[str]:
    return list(session.exec(
        select(User.name).join(NamespaceOwner)
        .where(NamespaceOwner.namespace_id == namespace.id).order_by(User.name)
    ).all())


def _is_owner(session: Session, namespace: Namespace, caller: Caller) -> bool:
    return session.get(NamespaceOwner, (namespace.id, caller.user_id)) is not None


def _check_claim(caller: Caller, name: str) -> None:
    if name == RESERVED and not caller.is_admin:
        raise Forbidden(f"namespace {RESERVED!r} is reserved for the hub's operators",
                        hint="publish into a namespace of your own")


def authorize(session: Session, caller: Caller, name: str, *, create: bool) -> Namespace | None:
    """Check the caller may change namespace `name`; claim it for them when free and `create`.

    Returns the namespace row, or None when it is free and `create` is false (the caller
    could claim it). Raises Forbidden naming the missing scope or the ownership problem.
    """
    check_namespace(name)
    caller.require(publish_scope(name))
    namespace = find(session, name)
    if namespace is None:
        _check_claim(caller, name)
        return _create(session, caller, name) if create else None
    if not caller.is_admin and not _is_owner(session, namespace, caller):
        raise Forbidden(f"namespace {name!r} belongs to another user",
                        hint="publish into a namespace you own")
    return namespace


def _create(session: Session, caller: Caller, name: str) -> Namespace:
    """Insert the namespace owned by the caller; losing a race to another claim is a 409."""
    try:
        with session.begin_nested():
            namespace = Namespace(name=name)
            session.add(namespace)
            session.flush()
            assert namespace.id is not None
            session.add(NamespaceOwner(namespace_id=namespace.id, user_id=caller.user_id))
            session.flush()
    except IntegrityError:
        raise Conflict(f"namespace {name!r} was just claimed by another user") from None
    return namespace


def _info(session: Session, namespace: Namespace) -> NamespaceInfo:
    return NamespaceInfo(name=namespace.name, owners=owners(session, namespace),
                         created_at=namespace.created_at)


def claim(hub: Hub, caller: Caller, name: str) -> NamespaceInfo:
    """Claim a free namespace for the caller; Conflict when it is taken."""
    check_namespace(name)
    caller.require(publish_scope(name))
    _check_claim(caller, name)
    with hub.db.write() as session:
        existing = find(session, name)
        if existing is not None:
            whose = "you already own it" if _is_owner(session, existing, caller) else "it is taken"
            raise Conflict(f"namespace {name!r} exists: {whose}")
        return _info(session, _create(session, caller, name))


def get(hub: Hub, name: str) -> NamespaceInfo:
    with hub.db.read() as session:
        return _info(session, require(session, name))


def list_all(hub: Hub) -> list[NamespaceInfo]:
    with hub.db.read() as session:
        rows = session.exec(select(Namespace).order_by(col(Namespace.name))).all()
        return [_info(session, row) for row in rows]
