"""Ed25519 keys and DSSE-signed in-toto statements over packages (design §5).

Publishing signs a Statement naming the package digest (and the image digest, when there is
one); the hub and the client verify the envelope against trusted keys, then check that the
signed digests are the ones they actually hold.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fnhub.core.errors import (
    Conflict,
    DigestMismatch,
    InvalidInput,
    SignatureInvalid,
    UntrustedKey,
    format_validation_error,
)
from fnhub.core.files import write_atomic
from fnhub.core.names import check_name, check_namespace
from fnhub.core.packaging.digests import DIGEST_PREFIX, digest_hex
from fnhub.core.versions import parse_version

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "urn:fnhub:publish:v1"
MAX_ENVELOPE_BYTES = 1 << 20
_MAX_KEY_FILE_BYTES = 64 * 1024
_RAW_KEY_LEN = 32


class Subject(BaseModel):
    name: str
    digest: dict[str, str]


class Statement(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    type_: str = Field(STATEMENT_TYPE, alias="_type")
    subject: list[Subject]
    predicateType: str
    predicate: dict[str, Any]

    def canonical_json(self) -> bytes:
        """The bytes that get signed: sorted keys, no whitespace, so equal statements sign equal."""
        return canonical_json(self.model_dump(mode="json", by_alias=True))


class Signature(BaseModel):
    keyid: str
    sig: str  # base64


class Envelope(BaseModel):
    payloadType: str
    payload: str  # base64 of the statement JSON
    signatures: list[Signature] = Field(min_length=1)


def canonical_json(data: Any) -> bytes:
    """Sorted keys, no whitespace, ASCII: equal data always encodes (and signs) to equal bytes."""
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("ascii")


def _short(keyid: str) -> str:
    return f"{keyid[:12]}…" if len(keyid) > 12 else keyid


# --------------------------------------------------------------------------- keys


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """Hex sha256 of the raw 32-byte public key."""
    return hashlib.sha256(_raw(public_key)).hexdigest()


def public_key_to_b64(public_key: Ed25519PublicKey) -> str:
    return base64.b64encode(_raw(public_key)).decode("ascii")


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError, AttributeError):
        raise InvalidInput("public key is not valid base64") from None
    if len(raw) != _RAW_KEY_LEN:
        raise InvalidInput(
            f"public key is {len(raw)} bytes, an Ed25519 public key is {_RAW_KEY_LEN}"
        )
    return Ed25519PublicKey.from_public_bytes(raw)


def save_private_key(key: Ed25519PrivateKey, path: str | Path, *, overwrite: bool = False) -> None:
    """PEM PKCS8, unencrypted, readable only by the owner (0600; a new parent folder is 0700).

    An existing key is never silently replaced: losing a private key loses the identity.
    """
    path = Path(path)
    if not overwrite and (path.exists() or path.is_symlink()):
        raise Conflict(f"a key already exists at {path}")
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(path, pem, 0o600)


def _read_key_file(path: str | Path, what: str) -> bytes:
    path = Path(path)
    try:
        if path.stat().st_size > _MAX_KEY_FILE_BYTES:
            raise InvalidInput(f"{path} is too large to be a {what}")
        return path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"no {what} at {path}") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a folder, not a {what}") from None
    except OSError as exc:  # permission denied, a file used as a folder, a name too long...
        raise InvalidInput(f"cannot read {what} {path}: {exc.strerror}") from None


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    data = _read_key_file(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise InvalidInput(f"{path}: the private key is encrypted; fnhub needs it plain") from None
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidInput(f"{path} does not hold a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(f"{path} holds a {type(key).__name__}, not an Ed25519 private key")
    return key


def save_public_key(public_key: Ed25519PublicKey, path: str | Path) -> None:
    """PEM SubjectPublicKeyInfo, mode 0644."""
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_atomic(Path(path), pem, 0o644)


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """A PEM public key file, or a file holding the base64 raw key (as `hub keys list` shows)."""
    data = _read_key_file(path, "public key")
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm):
            raise InvalidInput(f"{path} does not hold a valid PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidInput(f"{path} holds a {type(key).__name__}, not an Ed25519 public key")
        return key
    try:
        return public_key_from_b64(data.decode("ascii"))
    except (UnicodeDecodeError, InvalidInput) as exc:
        reason = exc.message if isinstance(exc, InvalidInput) else "not text"
        raise InvalidInput(
            f"{path} is neither a PEM nor a base64 Ed25519 public key ({reason})"
        ) from None


# --------------------------------------------------------------------------- statements


def _check_ref(ref: str) -> tuple[str, str, str]:
    """The namespace, name and version of `NS/NAME@VERSION`, the subject name of a package."""
    head, sep, version = ref.partition("@")
    namespace, slash, name = head.partition("/")
    if not sep or not slash:
        raise InvalidInput(f"invalid package reference {ref!r}: expected NAMESPACE/NAME@VERSION")
    check_namespace(namespace)
    check_name(name)
    parse_version(version)
    return namespace, name, version


def make_statement(
    ref: str,
    package_digest: str,
    *,
    image_digest: str | None = None,
    image_name: str | None = None,
    predicate: dict[str, Any],
) -> Statement:
    """The in-toto statement `hub publish` signs; the image subject defaults to NS/NAME:VERSION."""
    namespace, name, version = _check_ref(ref)
    subjects = [Subject(name=ref, digest={"sha256": digest_hex(package_digest)})]
    if image_digest is not None:
        image = image_name or f"{namespace}/{name}:{version}"
        subjects.append(Subject(name=image, digest={"sha256": digest_hex(image_digest)}))
    return Statement(subject=subjects, predicateType=PREDICATE_TYPE, predicate=predicate)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature actually covers."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def sign_payload(payload_type: str, payload: bytes, private_key: Ed25519PrivateKey) -> Envelope:
    """A DSSE envelope over `payload`; Ed25519 is deterministic, so equal input, equal bytes."""
    sig = private_key.sign(pae(payload_type, payload))
    return Envelope(
        payloadType=payload_type,
        payload=base64.b64encode(payload).decode("ascii"),
        signatures=[
            Signature(keyid=key_id(private_key.public_key()), sig=base64.b64encode(sig).decode())
        ],
    )


def sign_statement(statement: Statement, private_key: Ed25519PrivateKey) -> Envelope:
    return sign_payload(PAYLOAD_TYPE, statement.canonical_json(), private_key)


def parse_envelope(data: str | bytes | dict[str, Any]) -> Envelope:
    """A DSSE envelope from JSON text or a decoded dict; SignatureInvalid when malformed."""
    if isinstance(data, (str, bytes)):
        if len(data) > MAX_ENVELOPE_BYTES:
            raise SignatureInvalid(f"envelope is larger than {MAX_ENVELOPE_BYTES} bytes")
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SignatureInvalid(f"envelope is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SignatureInvalid("envelope must be a JSON object")
    try:
        return Envelope.model_validate(data)
    except ValidationError as exc:
        raise SignatureInvalid(f"malformed envelope: {format_validation_error(exc)}") from None


def verify_envelope(envelope: Envelope, keys: Mapping[str, Ed25519PublicKey]) -> Statement:
    """The signed statement, once a signature by one of `keys` (keyid -> key) verifies."""
    return _parse_statement(verify_payload(envelope, PAYLOAD_TYPE, keys))


def verify_payload(envelope: Envelope, payload_type: str,
                   keys: Mapping[str, Ed25519PublicKey]) -> bytes:
    """The payload bytes of a `payload_type` envelope, once a signature by one of `keys`
    (keyid -> key) verifies over them."""
    if envelope.payloadType != payload_type:
        raise SignatureInvalid(
            f"envelope payloadType is {envelope.payloadType!r}, expected {payload_type!r}"
        )
    known = [s for s in envelope.signatures if s.keyid in keys]
    if not known:
        signers = ", ".join(_short(s.keyid) for s in envelope.signatures)
        raise UntrustedKey(
            f"envelope is signed by key {signers}, which is not trusted"
            if len(envelope.signatures) == 1
            else f"envelope is signed by keys {signers}, none of which is trusted"
        )
    try:
        payload = base64.b64decode(envelope.payload, validate=True)
    except ValueError:  # binascii.Error
        raise SignatureInvalid("envelope payload is not valid base64") from None
    message = pae(envelope.payloadType, payload)
    failures = []
    for signature in known:
        try:
            keys[signature.keyid].verify(base64.b64decode(signature.sig, validate=True), message)
        except (InvalidSignature, ValueError):  # a signature that is not base64 fails alike
            failures.append(_short(signature.keyid))
            continue
        return payload
    raise SignatureInvalid(f"signature by key {', '.join(failures)} does not verify")


def _parse_statement(payload: bytes) -> Statement:
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SignatureInvalid(f"signed payload is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SignatureInvalid("signed payload is not a JSON object")
    try:
        statement = Statement.model_validate(data)
    except ValidationError as exc:
        raise SignatureInvalid(
            f"signed payload is not an in-toto statement: {format_validation_error(exc)}"
        ) from None
    if "_type" not in data or statement.type_ != STATEMENT_TYPE:
        raise SignatureInvalid(
            f"signed statement _type is {data.get('_type')!r}, expected {STATEMENT_TYPE!r}"
        )
    return statement


def check_subjects(
    statement: Statement, ref: str, package_digest: str, *, image_digest: str | None = None
) -> None:
    """Raise DigestMismatch unless the statement vouches for exactly this package (and image)."""
    if statement.predicateType != PREDICATE_TYPE:
        raise DigestMismatch(
            f"statement predicateType is {statement.predicateType!r}, expected {PREDICATE_TYPE!r}"
        )
    expected = digest_hex(package_digest)
    named = [s for s in statement.subject if s.name == ref]
    if not named:
        signed = ", ".join(s.name for s in statement.subject) or "none"
        raise DigestMismatch(f"the signed statement has no subject {ref} (subjects: {signed})")
    for subject in named:
        signed_hex = subject.digest.get("sha256", "").lower()
        if signed_hex != expected:
            raise DigestMismatch(
                f"{ref}: package digest {DIGEST_PREFIX}{expected} differs from the signed "
                f"digest {DIGEST_PREFIX}{signed_hex or '(none)'}"
            )
    if image_digest is not None:
        image_hex = digest_hex(image_digest)
        if not any(s.digest.get("sha256", "").lower() == image_hex for s in statement.subject):
            raise DigestMismatch(
                f"{ref}: image digest {DIGEST_PREFIX}{image_hex} is not among the signed subjects"
            )
