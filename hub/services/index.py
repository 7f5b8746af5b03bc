"""The hub's index key and each function's signed index (design §5).

The index key is an Ed25519 PEM file: `FNHUB_SERVER_INDEX_KEY`, or `<data_dir>/index-key.pem`
made at first start. The database remembers the key ids (table `index_keys`, oldest first,
each later one with the rotation its predecessor signed), so a replica started with another
key refuses to start instead of serving indexes clients cannot verify.

An index is built and signed on every read, from one snapshot of the database: the
function's serial (raised in the transaction of every change, see
`functions.bump_index_serials`), all its versions (deleted ones as tombstones), its tags
and its namespace's key ids. Ed25519 is deterministic and `expires` depends only on the
clock's day (or window), so every replica serves the same bytes and the same ETag.

Rotation (`hub admin rotate-index-key`) writes the new key next to the old one
(`index-key.pem.next`), records it with the old key's signature over it, then moves it into
place; a start that finds the move undone finishes it. A replica still holding the old key
answers 503 for indexes until it is restarted with the new one.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from fnhub.core.errors import Conflict, HubUnavailable, InvalidInput
from fnhub.core.index import (
    FunctionIndex,
    IndexKeyInfo,
    IndexVersion,
    sign_index,
    sign_rotation,
)
from fnhub.core.signing import (
    Envelope,
    canonical_json,
    generate_key,
    key_id,
    load_private_key,
    public_key_to_b64,
    save_private_key,
)
from fnhub.hub.context import Hub
from fnhub.hub.models import IndexKey, Version, utcnow
from fnhub.hub.services import functions, keys
from fnhub.hub.settings import ServerSettings

logger = logging.getLogger(__name__)

GENESIS_ID = 1  # the first key's row id, so replicas starting together insert it only once
DEFAULT_VALIDITY = timedelta(days=7)


# --------------------------------------------------------------------------- the key


def _pending(path: Path) -> Path:
    """Where a rotation puts the new key before the database has recorded it."""
    return path.with_name(path.name + ".next")


def _current(session: Session) -> IndexKey | None:
    return session.exec(select(IndexKey).order_by(col(IndexKey.id).desc())).first()


def _load(settings: ServerSettings) -> Ed25519PrivateKey:
    """The configured key file, or the data dir's, made (0600) when it does not exist yet."""
    path = settings.index_key_path()
    if settings.index_key is None and not path.exists() and not path.is_symlink():
        save_private_key(generate_key(), path)
        logger.info("index key generated in %s", path)
    return load_private_key(path)


def _mismatch(path: Path, found: str, expected: str) -> Conflict:
    return Conflict(
        f"the index key {path} has key id {found}, but this hub's database signs with "
        f"{expected}: every replica needs the same index key",
        hint="point FNHUB_SERVER_INDEX_KEY at the PEM file the other replicas use")


def ensure_key(hub: Hub) -> Ed25519PrivateKey:
    """The index key, once the database knows it as the current one (recorded at first start).

    Conflict when the database's current key is another one (a second replica with its own
    key, or a data dir restored without its key file).
    """
    path = hub.settings.index_key_path()
    key = _load(hub.settings)
    keyid = key_id(key.public_key())
    try:
        with hub.db.write() as session:
            current = _current(session)
            if current is None:
                session.add(IndexKey(id=GENESIS_ID, keyid=keyid,
                                     public_key=public_key_to_b64(key.public_key())))
                return key
            if current.keyid == keyid:
                return key
    except IntegrityError:  # another replica recorded the first key at the same moment
        return ensure_key(hub)
    pending = _pending(path)
    if pending.is_file():  # a rotation recorded its key but did not move it into place
        rotated = load_private_key(pending)
        if key_id(rotated.public_key()) == current.keyid:
            os.replace(pending, path)
            logger.info("index key rotation finished: %s now holds %s", path, current.keyid)
            return rotated
    raise _mismatch(path, keyid, current.keyid)


@dataclass(frozen=True)
class Rotation:
    previous: str
    keyid: str
    path: Path


def rotate(hub: Hub) -> Rotation:
    """Replace the index key with a new one, signed over by the old one (the chain link)."""
    path = hub.settings.index_key_path()
    old = load_private_key(path)
    old_id = key_id(old.public_key())
    new = generate_key()
    new_id = key_id(new.public_key())
    pending = _pending(path)
    save_private_key(new, pending, overwrite=True)
    try:
        with hub.db.write() as session:
            current = _current(session)
            if current is None:
                raise InvalidInput("this hub has no index key yet: start it once first")
            if current.keyid != old_id:
                raise _mismatch(path, old_id, current.keyid)
            link = sign_rotation(old, new.public_key(), utcnow())
            session.add(IndexKey(keyid=new_id, public_key=public_key_to_b64(new.public_key()),
                                 rotation=link.model_dump(mode="json")))
    except BaseException:
        pending.unlink(missing_ok=True)
        raise
    os.replace(pending, path)
    return Rotation(previous=old_id, keyid=new_id, path=path)


def key_info(hub: Hub) -> IndexKeyInfo:
    """The current index key and the rotations leading to it, oldest first."""
    with hub.db.read() as session:
        rows = list(session.exec(select(IndexKey).order_by(col(IndexKey.id))).all())
    if not rows:
        raise HubUnavailable("this hub has no index key yet")
    chain = [Envelope.model_validate(row.rotation) for row in rows[1:] if row.rotation]
    return IndexKeyInfo(keyid=rows[-1].keyid, public_key=rows[-1].public_key, chain=chain)


# --------------------------------------------------------------------------- the index


def expires_at(settings: ServerSettings, now: datetime) -> datetime:
    """The next UTC midnight plus 7 days; with `index_expiry` E (seconds), the next multiple
    of E plus E. Either way every replica computes the same instant."""
    if settings.index_expiry is None:
        day = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        return day + timedelta(days=1) + DEFAULT_VALIDITY
    step = settings.index_expiry
    boundary = (math.floor(now.timestamp() / step) + 2) * step
    return datetime.fromtimestamp(boundary, timezone.utc)


def build_index(session: Session, settings: ServerSettings, namespace: str, name: str,
                now: datetime) -> FunctionIndex:
    """The index of `namespace/name` as `session` sees it (NotFound when there is none)."""
    function = functions.require_function(session, namespace, name)
    versions = session.exec(select(Version).where(Version.function_id == function.id)).all()
    return FunctionIndex(
        function=f"{namespace}/{name}",
        serial=function.index_serial,
        expires=expires_at(settings, now),
        versions={v.version: IndexVersion(digest=v.package_digest, yanked=v.yanked,
                                          deleted=v.deleted, published_at=v.published_at)
                  for v in versions},
        tags=functions.function_tags(session, function),
        keys=sorted(keys.trusted_keys(session, namespace)),
    )


@dataclass(frozen=True)
class SignedIndex:
    body: bytes  # the DSSE envelope as canonical JSON
    etag: str  # quoted sha256 of the body

    @classmethod
    def of(cls, envelope: Envelope) -> SignedIndex:
        body = canonical_json(envelope.model_dump(mode="json"))
        return cls(body=body, etag=f'"{hashlib.sha256(body).hexdigest()}"')


def signed_index(hub: Hub, namespace: str, name: str,
                 now: datetime | None = None) -> SignedIndex:
    """The function's index, signed now with the hub's index key.

    Read from one snapshot of the (primary) database; refused with 503 when the database's
    current index key is no longer the one this process holds (rotated meanwhile).
    """
    key = hub.index_key
    if key is None:
        raise HubUnavailable("this hub has not loaded its index key")
    with hub.db.snapshot() as session:
        current = _current(session)
        if current is None or current.keyid != key_id(key.public_key()):
            raise HubUnavailable("this replica's index key was rotated away",
                                 hint="restart it with the current index key")
        index = build_index(session, hub.settings, namespace, name, now or utcnow())
    return SignedIndex.of(sign_index(index, key))
