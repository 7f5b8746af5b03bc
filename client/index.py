"""The client side of a hub's signed index (design §5): pin the hub's index key on first use,
follow its rotation chain, and accept a function's index only when it verifies, names the
function asked for, is not older than one seen before (rollback) and has not expired (freeze).

The verified envelope is cached with its ETag under FNHUB_HOME, so resolving an installed
function again costs one conditional request (a 304) and no download. Once a hub's index key
is pinned, the client never falls back to the unsigned `/resolve`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ValidationError

from fnhub.api_client import HubClient
from fnhub.config import Config
from fnhub.core.errors import (
    HubAnswerMismatch,
    NotFound,
    SignatureInvalid,
    StaleIndex,
    UntrustedKey,
)
from fnhub.core.files import write_atomic
from fnhub.core.index import FunctionIndex, follow_chain, format_time, verify_index
from fnhub.core.signing import Envelope, key_id, parse_envelope, public_key_from_b64
from fnhub.core.signing import public_key_to_b64 as to_b64
from fnhub.store import Store
from fnhub.trust import TrustStore, hub_id

CLOCK_SKEW = timedelta(minutes=5)


class CachedIndex(BaseModel):
    etag: str | None
    envelope: dict[str, Any]


def _utcnow() -> datetime:
    """This machine's clock (a function, so tests can move it)."""
    return datetime.now(timezone.utc)


@dataclass
class IndexReader:
    """Fetches and verifies the signed indexes of one hub."""

    config: Config
    client: HubClient

    def __post_init__(self) -> None:
        self.trust = TrustStore(self.config.config_dir)
        self.store = Store(self.config.home)

    @property
    def hub(self) -> str:
        return hub_id(self.client.url)

    def fetch(self, namespace: str, name: str) -> FunctionIndex | None:
        """The verified index of NAMESPACE/NAME; None only from a hub whose index key is not
        pinned and which serves no index (then the caller checks `/resolve`'s answer)."""
        function = f"{namespace}/{name}"
        pinned = self.trust.hub_key(self.client.url)
        if pinned is None:
            info = self.client.index_key()
            if info is None:
                return None
            self.trust.pin_hub_key(self.client.url, info.keyid, info.public_key)
        cache_path = self.store.index_path(self.client.url, namespace, name)
        cached = self._cached(cache_path)
        try:
            etag, body = self.client.function_index(namespace, name,
                                                    cached.etag if cached else None)
        except NotFound as exc:
            raise NotFound(f"{self.hub} serves no signed index of {function} ({exc.message})",
                           hint=exc.hint) from None
        if body:
            envelope = parse_envelope(body)
        elif cached is not None:
            envelope = Envelope.model_validate(cached.envelope)
        else:
            raise HubAnswerMismatch(f"{self.hub} answered 'not modified' for the index of "
                                    f"{function}, which this client has never seen")
        index = self._check(function, self._verify(envelope))
        if body:
            write_atomic(cache_path, CachedIndex(
                etag=etag, envelope=envelope.model_dump()).model_dump_json().encode())
        return index

    @staticmethod
    def _cached(path: Any) -> CachedIndex | None:
        try:
            return CachedIndex.model_validate_json(path.read_bytes())
        except (OSError, ValidationError):
            return None

    def _verify(self, envelope: Envelope) -> FunctionIndex:
        """The index, verified with the pinned index key, or with the key the hub rotated to
        (reached from the pinned one through the signed chain, then pinned)."""
        key = self._pinned_key()
        signers = {s.keyid for s in envelope.signatures}
        if key is None or key_id(key) not in signers:
            key = self._rotate(key)
        return verify_index(envelope, {key_id(key): key})

    def _pinned_key(self) -> Ed25519PublicKey | None:
        pinned = self.trust.hub_key(self.client.url)
        assert pinned is not None
        return public_key_from_b64(pinned.public_key) if pinned.public_key else None

    def _rotate(self, pinned: Ed25519PublicKey | None) -> Ed25519PublicKey:
        """The hub's current index key, accepted only through the chain from the pinned key
        (or, pinned by id alone with `hub keys trust-hub`, when its id is that one)."""
        info = self.client.index_key()
        wanted = self.trust.hub_key(self.client.url)
        assert wanted is not None
        if info is None:
            raise SignatureInvalid(
                f"{self.hub} no longer serves its index key, whose id {wanted.keyid} this "
                "client pinned; a mirror may be hiding it")
        current = public_key_from_b64(info.public_key)
        if key_id(current) != info.keyid:
            raise HubAnswerMismatch(f"{self.hub} offers its index key under id {info.keyid}, "
                                    f"but the key's id is {key_id(current)}")
        if pinned is None:
            if info.keyid != wanted.keyid:
                raise self._unreachable(info.keyid, wanted.keyid)
        else:
            try:
                current = follow_chain(pinned, info)
            except UntrustedKey:
                raise self._unreachable(info.keyid, wanted.keyid) from None
        self.trust.pin_hub_key(self.client.url, info.keyid, to_b64(current))
        return current

    def _unreachable(self, offered: str, pinned: str) -> UntrustedKey:
        return UntrustedKey(
            f"{self.hub} signs its index with key {offered}, which cannot be reached from the "
            f"index key {pinned} this client pinned for it",
            hint=f"if the hub's operators changed its key, accept it: "
                 f"hub keys trust-hub {self.client.url} {offered}")

    def _check(self, function: str, index: FunctionIndex) -> FunctionIndex:
        """Binding, freshness and rollback: the rules a valid signature alone does not give."""
        if index.function != function:
            raise HubAnswerMismatch(
                f"asked for the index of {function}, {self.hub} answered with the signed index "
                f"of {index.function}")
        now = _utcnow()
        if now > index.expires + CLOCK_SKEW:
            raise StaleIndex(
                f"the signed index of {function} from {self.hub} expired at "
                f"{format_time(index.expires)}, and this machine's clock says "
                f"{format_time(now)}: the hub or a mirror is serving a frozen index, or this "
                "clock is wrong")
        self.trust.check_serial(self.client.url, function, index.serial)
        return index
