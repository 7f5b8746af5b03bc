"""The hub-signed per-function index and the hub's index-key rotation chain (design §5).

The hub signs, on every read, a DSSE envelope over the canonical JSON of a `FunctionIndex`
with its Ed25519 index key; Ed25519 is deterministic, so every replica serves the same bytes.
`GET /api/v1/index-key` answers an `IndexKeyInfo`: the current key plus the chain of
rotations, each a DSSE envelope over a `KeyRotation` signed by the key it replaces, so a
client that pinned any earlier key can reach the current one (`follow_chain`).

Both sides use this module: the hub to build and sign, the client to verify. Whatever the
payload says is checked here for shape only (names, versions, digests, key ids); freshness
(serial, expiry) and binding to the requested function are the caller's rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Annotated, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from fnhub.core.errors import SignatureInvalid, UntrustedKey, format_validation_error
from fnhub.core.names import name_problem, namespace_problem
from fnhub.core.signing import (
    Envelope,
    canonical_json,
    key_id,
    public_key_from_b64,
    public_key_to_b64,
    sign_payload,
    verify_payload,
)
from fnhub.core.versions import LATEST, TAG_RE, is_valid_version

INDEX_PAYLOAD_TYPE = "application/vnd.fnhub.index.v1+json"
ROTATION_PAYLOAD_TYPE = "application/vnd.fnhub.index-key-rotation.v1+json"
KEYID_RE = re.compile(r"^[0-9a-f]{64}\Z")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}\Z")
RFC3339 = "%Y-%m-%dT%H:%M:%SZ"


def _utc(value: datetime) -> datetime:
    """Whole seconds in UTC: the precision the index is signed with."""
    if value.tzinfo is None:
        raise ValueError("timestamps must carry a time zone")
    return value.astimezone(timezone.utc).replace(microsecond=0)


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with whole seconds (`2026-12-14T00:00:00Z`), one spelling per instant."""
    return _utc(value).strftime(RFC3339)


# A timestamp as the index signs it: read from RFC 3339, written back in one spelling.
Timestamp = Annotated[datetime, AfterValidator(_utc), PlainSerializer(format_time, str)]


def _keyid(value: str) -> str:
    if not KEYID_RE.match(value):
        raise ValueError(f"invalid key id {value!r}: expected 64 lowercase hex characters")
    return value


KeyId = Annotated[str, AfterValidator(_keyid)]


class _Signed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def canonical_json(self) -> bytes:
        """The signed bytes: sorted keys, no whitespace."""
        return canonical_json(self.model_dump(mode="json"))


class IndexVersion(_Signed):
    """One version in the index; deleted versions stay, as tombstones."""

    digest: str
    yanked: bool
    deleted: bool
    published_at: Timestamp

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        if not DIGEST_RE.match(value):
            raise ValueError(f"invalid digest {value!r}: expected sha256:<64 hex>")
        return value


class FunctionIndex(_Signed):
    """The signed payload of `GET /api/v1/functions/{ns}/{name}/index`."""

    function: str  # "NS/NAME"
    serial: int = Field(ge=0)
    expires: Timestamp
    versions: dict[str, IndexVersion]
    tags: dict[str, str]  # TAG -> VERSION (never `latest`: clients compute it)
    keys: list[KeyId]  # the publisher key ids registered to the namespace

    @field_validator("function")
    @classmethod
    def _function(cls, value: str) -> str:
        namespace, slash, name = value.partition("/")
        problem = ("expected NAMESPACE/NAME" if not slash else
                   namespace_problem(namespace) or name_problem(name))
        if problem:
            raise ValueError(f"invalid function {value!r}: {problem}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FunctionIndex:
        for version in self.versions:
            if not is_valid_version(version):
                raise ValueError(f"invalid version {version!r}")
        for tag, version in self.tags.items():
            if tag == LATEST or not TAG_RE.match(tag) or name_problem(tag):
                raise ValueError(f"invalid tag {tag!r}")
            entry = self.versions.get(version)
            if entry is None or entry.deleted:
                raise ValueError(f"tag {tag!r} points at {version!r}, which is not a live "
                                 "version of the index")
        return self

    @property
    def namespace(self) -> str:
        return self.function.partition("/")[0]

    @property
    def name(self) -> str:
        return self.function.partition("/")[2]


class KeyRotation(_Signed):
    """One link of the rotation chain, signed by the key it replaces (`previous`)."""

    previous: KeyId
    keyid: KeyId
    public_key: str  # base64 of the new raw 32-byte Ed25519 key
    rotated_at: Timestamp


class IndexKeyInfo(BaseModel):
    """The answer of `GET /api/v1/index-key`."""

    model_config = ConfigDict(extra="forbid")

    keyid: KeyId
    public_key: str  # base64 of the raw 32-byte Ed25519 key
    chain: list[Envelope] = Field(default_factory=list)  # KeyRotation envelopes, oldest first


# --------------------------------------------------------------------------- sign / verify


def _parse(model: type[_Signed], payload: bytes, what: str) -> Any:
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        raise SignatureInvalid(f"the signed {what} is malformed: "
                               f"{format_validation_error(exc)}") from None


def sign_index(index: FunctionIndex, key: Ed25519PrivateKey) -> Envelope:
    return sign_payload(INDEX_PAYLOAD_TYPE, index.canonical_json(), key)


def verify_index(envelope: Envelope, keys: Mapping[str, Ed25519PublicKey]) -> FunctionIndex:
    """The index, once its signature by one of `keys` (keyid -> hub index key) verifies."""
    index: FunctionIndex = _parse(FunctionIndex,
                                  verify_payload(envelope, INDEX_PAYLOAD_TYPE, keys), "index")
    return index


def sign_rotation(old: Ed25519PrivateKey, new: Ed25519PublicKey, at: datetime) -> Envelope:
    """The chain link by which `old` hands over to `new`."""
    rotation = KeyRotation(previous=key_id(old.public_key()), keyid=key_id(new),
                           public_key=public_key_to_b64(new), rotated_at=at)
    return sign_payload(ROTATION_PAYLOAD_TYPE, rotation.canonical_json(), old)


def follow_chain(pinned: Ed25519PublicKey, info: IndexKeyInfo) -> Ed25519PublicKey:
    """The hub's current index key, reached from the `pinned` one through signed rotations.

    Links signed by keys older than `pinned` are skipped; each later link must verify under
    the key reached so far. UntrustedKey when the chain does not end at `info`'s key.
    """
    current_id, current = key_id(pinned), pinned
    for link in info.chain:
        if all(s.keyid != current_id for s in link.signatures):
            continue
        rotation: KeyRotation = _parse(
            KeyRotation, verify_payload(link, ROTATION_PAYLOAD_TYPE, {current_id: current}),
            "key rotation")
        if rotation.previous != current_id:
            raise SignatureInvalid(f"a rotation signed by index key {current_id} names "
                                   f"{rotation.previous} as the key it replaces")
        new = public_key_from_b64(rotation.public_key)
        if key_id(new) != rotation.keyid:
            raise SignatureInvalid(f"the rotation to index key {rotation.keyid} carries "
                                   "another public key")
        current_id, current = rotation.keyid, new
    if current_id != info.keyid or public_key_to_b64(current) != info.public_key:
        raise UntrustedKey(
            f"the hub's index key {info.keyid} cannot be reached from the pinned index key "
            f"{key_id(pinned)} through the hub's rotation chain",
            hint=f"if you trust it: `hub keys trust-hub URL {info.keyid}`")
    return current
