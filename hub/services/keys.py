"""Publisher keys: the Ed25519 public keys allowed to sign a namespace's packages.

The namespace's key ids are part of each of its functions' signed index, so registering
or removing a key raises their index serials in the same transaction.
"""

from __future__ import annotations

import re

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from fnhub.core.api_models import KeyInfo, KeyRegister
from fnhub.core.errors import Conflict, InvalidInput, NotFound, UntrustedKey
from fnhub.core.signing import key_id, public_key_from_b64, public_key_to_b64
from fnhub.hub.context import Hub
from fnhub.hub.models import Function, Namespace, PublisherKey
from fnhub.hub.services import functions, namespaces
from fnhub.hub.services.auth import Caller

KEYID_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_KEY_NAME = 100


def _info(key: PublisherKey, namespace: str) -> KeyInfo:
    return KeyInfo(keyid=key.keyid, namespace=namespace, public_key=key.public_key,
                   name=key.name, created_at=key.created_at)


def trusted_keys(session: Session, namespace: str) -> dict[str, Ed25519PublicKey]:
    """keyid -> public key of every key registered to `namespace` (empty when it is free)."""
    rows = session.exec(
        select(PublisherKey).join(Namespace).where(Namespace.name == namespace)
    ).all()
    return {row.keyid: public_key_from_b64(row.public_key) for row in rows}


def no_keys_error(namespace: str) -> UntrustedKey:
    return UntrustedKey(
        f"namespace {namespace!r} has no registered publisher keys",
        hint=f"register one first: `hub keys register --namespace {namespace}`",
    )


def list_keys(hub: Hub, namespace: str | None = None) -> list[KeyInfo]:
    """The keys of one namespace (NotFound when it does not exist), or of all namespaces."""
    with hub.db.read() as session:
        query = select(PublisherKey, Namespace.name).join(Namespace)
        if namespace is not None:
            query = query.where(PublisherKey.namespace_id == namespaces.require(session,
                                                                                namespace).id)
        rows = session.exec(query.order_by(Namespace.name, col(PublisherKey.id))).all()
        return [_info(key, ns) for key, ns in rows]


def register(hub: Hub, caller: Caller, request: KeyRegister) -> KeyInfo:
    """Register a public key to a namespace the caller owns, claiming the namespace if free."""
    public = public_key_from_b64(request.public_key)
    if request.name is not None and len(request.name) > MAX_KEY_NAME:
        raise InvalidInput(f"key name is longer than {MAX_KEY_NAME} characters")
    keyid = key_id(public)
    with hub.db.write() as session:
        namespace = namespaces.authorize(session, caller, request.namespace, create=True)
        assert namespace is not None and namespace.id is not None
        key = PublisherKey(namespace_id=namespace.id, keyid=keyid,
                           public_key=public_key_to_b64(public), name=request.name)
        try:
            with session.begin_nested():
                session.add(key)
                session.flush()
        except IntegrityError:
            raise Conflict(
                f"key {keyid[:12]}… is already registered to namespace {namespace.name!r}"
            ) from None
        functions.bump_index_serials(session, col(Function.namespace_id) == namespace.id)
        return _info(key, namespace.name)


def delete(hub: Hub, caller: Caller, namespace: str, keyid: str) -> None:
    """Unregister a key; packages it signed stay, but new uploads need another key."""
    if not KEYID_RE.match(keyid):
        raise InvalidInput(f"invalid key id {keyid!r}: expected 64 lowercase hex characters")
    with hub.db.write() as session:
        row = namespaces.authorize(session, caller, namespace, create=False)
        key = None if row is None else session.exec(
            select(PublisherKey).where(PublisherKey.namespace_id == row.id,
                                       PublisherKey.keyid == keyid)
        ).first()
        if key is None:
            raise NotFound(f"no key {keyid[:12]}… registered to namespace {namespace!r}")
        session.delete(key)
        functions.bump_index_serials(session, col(Function.namespace_id) == key.namespace_id)
