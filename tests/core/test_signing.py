"""Ed25519 keys, DSSE envelopes and in-toto statements (design §5)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fnhub.core.errors import (
    Conflict,
    DigestMismatch,
    InvalidInput,
    SignatureInvalid,
    UntrustedKey,
)
from fnhub.core.signing import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    Envelope,
    Signature,
    Statement,
    Subject,
    check_subjects,
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
    make_statement,
    pae,
    parse_envelope,
    public_key_from_b64,
    public_key_to_b64,
    save_private_key,
    save_public_key,
    sign_statement,
    verify_envelope,
)

REF = "acme/describe@1.2.0"
PKG = "sha256:" + "ab" * 32
IMAGE = "sha256:" + "cd" * 32
PREDICATE = {"metadata": {"name": "describe", "version": "1.2.0"}, "source": {"commit": "abc"}}


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return generate_key()


def signed(key: Ed25519PrivateKey, **kwargs: str) -> Envelope:
    return sign_statement(make_statement(REF, PKG, predicate=PREDICATE, **kwargs), key)


def trusted(*keys: Ed25519PrivateKey) -> dict[str, Ed25519PublicKey]:
    return {key_id(k.public_key()): k.public_key() for k in keys}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --------------------------------------------------------------------------- keys


def test_key_id_and_base64_round_trip(key: Ed25519PrivateKey) -> None:
    public = key.public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key_id(public) == hashlib.sha256(raw).hexdigest()
    text = public_key_to_b64(public)
    assert base64.b64decode(text) == raw
    assert key_id(public_key_from_b64(f"  {text}\n")) == key_id(public)


@pytest.mark.parametrize(
    ("text", "problem"),
    [("not base64 !!", "not valid base64"), (b64(b"short"), "5 bytes"), ("", "0 bytes")],
)
def test_public_key_from_b64_rejects_garbage(text: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        public_key_from_b64(text)


def test_private_key_file_is_0600_in_a_0700_folder(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    old_umask = os.umask(0)  # even a permissive umask must not widen the key's mode
    try:
        path = tmp_path / "config" / "keys" / "default.pem"
        save_private_key(key, path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = load_private_key(path)
    assert key_id(loaded.public_key()) == key_id(key.public_key())
    assert sorted(p.name for p in path.parent.iterdir()) == ["default.pem"]

    with pytest.raises(Conflict, match="already exists"):
        save_private_key(generate_key(), path)
    assert key_id(load_private_key(path).public_key()) == key_id(key.public_key())
    other = generate_key()
    save_private_key(other, path, overwrite=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key_id(load_private_key(path).public_key()) == key_id(other.public_key())


def test_load_private_key_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no private key at"):
        load_private_key(tmp_path / "missing.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello")
    with pytest.raises(InvalidInput, match="does not hold a PEM private key"):
        load_private_key(garbage)
    rsa_path = tmp_path / "rsa.pem"
    rsa_path.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(InvalidInput, match="not an Ed25519 private key"):
        load_private_key(rsa_path)
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        generate_key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(InvalidInput, match="encrypted"):
        load_private_key(encrypted)


def test_public_key_files_pem_or_base64(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    public = key.public_key()
    pem = tmp_path / "key.pub"
    save_public_key(public, pem)
    assert pem.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert stat.S_IMODE(pem.stat().st_mode) == 0o644
    assert key_id(load_public_key(pem)) == key_id(public)
    raw = tmp_path / "key.b64"
    raw.write_text(public_key_to_b64(public) + "\n")
    assert key_id(load_public_key(raw)) == key_id(public)

    bad = tmp_path / "bad.pub"
    bad.write_text("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    with pytest.raises(InvalidInput, match="valid PEM public key"):
        load_public_key(bad)
    bad.write_bytes(b"\xff\xfe binary")
    with pytest.raises(InvalidInput, match="neither a PEM nor a base64"):
        load_public_key(bad)
    with pytest.raises(InvalidInput, match="no public key at"):
        load_public_key(tmp_path / "missing.pub")


# --------------------------------------------------------------------------- statements


def test_pae_matches_the_dsse_spec() -> None:
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_make_statement_subjects() -> None:
    statement = make_statement(REF, PKG, predicate=PREDICATE)
    data = statement.model_dump(by_alias=True)
    assert data == {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": REF, "digest": {"sha256": "ab" * 32}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": PREDICATE,
    }
    with_image = make_statement(REF, PKG, image_digest=IMAGE, predicate={})
    assert [(s.name, s.digest) for s in with_image.subject][1] == (
        "acme/describe:1.2.0",
        {"sha256": "cd" * 32},
    )
    named = make_statement(REF, PKG, image_digest=IMAGE, image_name="hub.local/x", predicate={})
    assert named.subject[1].name == "hub.local/x"


@pytest.mark.parametrize(
    ("ref", "digest", "problem"),
    [
        ("describe@1.0.0", PKG, "NAMESPACE/NAME@VERSION"),
        ("acme/describe", PKG, "NAMESPACE/NAME@VERSION"),
        ("Acme/describe@1.0.0", PKG, "invalid namespace"),
        (REF, "ab" * 32, "invalid digest"),
        (REF, "sha256:zz", "invalid digest"),
    ],
)
def test_make_statement_rejects_bad_input(ref: str, digest: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        make_statement(ref, digest, predicate={})


def test_sign_and_verify_round_trip(key: Ed25519PrivateKey) -> None:
    envelope = signed(key, image_digest=IMAGE)
    assert envelope.payloadType == PAYLOAD_TYPE
    assert envelope.signatures[0].keyid == key_id(key.public_key())
    payload = base64.b64decode(envelope.payload)
    assert (
        payload == json.dumps(json.loads(payload), sort_keys=True, separators=(",", ":")).encode()
    )

    wire = parse_envelope(envelope.model_dump_json())
    statement = verify_envelope(wire, trusted(key))
    assert statement == make_statement(REF, PKG, image_digest=IMAGE, predicate=PREDICATE)
    check_subjects(statement, REF, PKG)
    check_subjects(statement, REF, PKG, image_digest=IMAGE)
    assert parse_envelope(json.loads(envelope.model_dump_json()).copy()) == envelope
    assert parse_envelope(envelope.model_dump_json().encode()) == envelope


def test_signing_is_deterministic(key: Ed25519PrivateKey) -> None:
    assert signed(key) == signed(key)


def test_tampered_payload_fails(key: Ed25519PrivateKey) -> None:
    envelope = signed(key)
    statement = json.loads(base64.b64decode(envelope.payload))
    statement["subject"][0]["digest"]["sha256"] = "ef" * 32
    forged = envelope.model_copy(update={"payload": b64(json.dumps(statement).encode())})
    kid = key_id(key.public_key())
    with pytest.raises(SignatureInvalid, match=f"signature by key {kid[:12]}… does not verify"):
        verify_envelope(forged, trusted(key))


def test_tampered_signature_fails(key: Ed25519PrivateKey) -> None:
    envelope = signed(key)
    sig = bytearray(base64.b64decode(envelope.signatures[0].sig))
    sig[0] ^= 1
    forged = envelope.model_copy(
        update={"signatures": [Signature(keyid=envelope.signatures[0].keyid, sig=b64(bytes(sig)))]}
    )
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_envelope(forged, trusted(key))
    not_b64 = envelope.model_copy(
        update={"signatures": [Signature(keyid=envelope.signatures[0].keyid, sig="!!!")]}
    )
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_envelope(not_b64, trusted(key))


def test_signature_by_a_different_key_under_a_trusted_keyid_fails(key: Ed25519PrivateKey) -> None:
    impostor = generate_key()
    envelope = signed(impostor)
    relabelled = envelope.model_copy(
        update={
            "signatures": [
                Signature(keyid=key_id(key.public_key()), sig=envelope.signatures[0].sig)
            ]
        }
    )
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_envelope(relabelled, trusted(key))


def test_unknown_key_is_untrusted(key: Ed25519PrivateKey) -> None:
    envelope = signed(key)
    with pytest.raises(UntrustedKey, match=key_id(key.public_key())[:12]):
        verify_envelope(envelope, trusted(generate_key()))
    with pytest.raises(UntrustedKey):
        verify_envelope(envelope, {})


def test_one_good_trusted_signature_is_enough(key: Ed25519PrivateKey) -> None:
    stranger, broken = generate_key(), generate_key()
    good = signed(key)
    bad_sig = Signature(keyid=key_id(broken.public_key()), sig=b64(bytes(64)))
    other = Signature(keyid=key_id(stranger.public_key()), sig=signed(stranger).signatures[0].sig)
    envelope = good.model_copy(update={"signatures": [other, bad_sig, *good.signatures]})
    statement = verify_envelope(envelope, trusted(key, broken))
    check_subjects(statement, REF, PKG)


def test_wrong_payload_type_fails(key: Ed25519PrivateKey) -> None:
    envelope = signed(key).model_copy(update={"payloadType": "text/plain"})
    with pytest.raises(SignatureInvalid, match="payloadType is 'text/plain'"):
        verify_envelope(envelope, trusted(key))


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"_type": "https://in-toto.io/Statement/v1"}', "subject: required field is missing"),
        (
            json.dumps(
                {
                    "_type": "https://in-toto.io/Statement/v0.1",
                    "subject": [],
                    "predicateType": PREDICATE_TYPE,
                    "predicate": {},
                }
            ).encode(),
            "_type is 'https://in-toto.io/Statement/v0.1'",
        ),
        (
            json.dumps({"subject": [], "predicateType": PREDICATE_TYPE, "predicate": {}}).encode(),
            "_type is None",
        ),
    ],
)
def test_signed_but_malformed_statement_fails(
    key: Ed25519PrivateKey, payload: bytes, problem: str
) -> None:
    envelope = Envelope(
        payloadType=PAYLOAD_TYPE,
        payload=b64(payload),
        signatures=[
            Signature(keyid=key_id(key.public_key()), sig=b64(key.sign(pae(PAYLOAD_TYPE, payload))))
        ],
    )
    with pytest.raises(SignatureInvalid, match=problem):
        verify_envelope(envelope, trusted(key))


def test_payload_that_is_not_base64_fails(key: Ed25519PrivateKey) -> None:
    envelope = signed(key).model_copy(update={"payload": "%%%"})
    with pytest.raises(SignatureInvalid, match="payload is not valid base64"):
        verify_envelope(envelope, trusted(key))


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ("{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ({"payloadType": PAYLOAD_TYPE, "payload": "e30="}, "signatures: required field"),
        ({"payloadType": PAYLOAD_TYPE, "payload": "e30=", "signatures": []}, "signatures"),
        (
            {"payloadType": PAYLOAD_TYPE, "payload": 5, "signatures": [{"keyid": "k", "sig": "s"}]},
            "payload",
        ),
        (
            {"payloadType": PAYLOAD_TYPE, "payload": "e30=", "signatures": [{"keyid": "k"}]},
            r"signatures\[0\]\.sig",
        ),
        ("x" * (2 << 20), "larger than"),
    ],
)
def test_parse_envelope_rejects_malformed(data: object, problem: str) -> None:
    with pytest.raises(SignatureInvalid, match=problem):
        parse_envelope(data)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- subjects


def test_wrong_subject_digest_names_both_digests(key: Ed25519PrivateKey) -> None:
    statement = verify_envelope(signed(key), trusted(key))
    other = "sha256:" + "ef" * 32
    with pytest.raises(DigestMismatch) as excinfo:
        check_subjects(statement, REF, other)
    assert other in str(excinfo.value) and PKG in str(excinfo.value)


def test_missing_subject_and_image_digest(key: Ed25519PrivateKey) -> None:
    statement = verify_envelope(signed(key), trusted(key))
    with pytest.raises(DigestMismatch, match=r"no subject acme/describe@1\.3\.0"):
        check_subjects(statement, "acme/describe@1.3.0", PKG)
    with pytest.raises(DigestMismatch, match=r"sha256:(cd)+ is not among the signed"):
        check_subjects(statement, REF, PKG, image_digest=IMAGE)


def test_wrong_predicate_type(key: Ed25519PrivateKey) -> None:
    statement = make_statement(REF, PKG, predicate={})
    statement = Statement.model_validate(
        {**statement.model_dump(by_alias=True), "predicateType": "https://slsa.dev/provenance/v1"}
    )
    envelope = sign_statement(statement, key)
    verified = verify_envelope(envelope, trusted(key))
    with pytest.raises(
        DigestMismatch, match=re.escape("predicateType is 'https://slsa.dev/provenance/v1'")
    ):
        check_subjects(verified, REF, PKG)


# --------------------------------------------------------------- guards (issue #13 item 6)


def test_a_pem_public_key_of_another_algorithm_is_refused(tmp_path: Path) -> None:
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    path = tmp_path / "ec.pub"
    path.write_bytes(other.public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo))
    with pytest.raises(InvalidInput) as caught:
        load_public_key(path)
    assert caught.value.message == (
        f"{path} holds a {type(other).__name__}, not an Ed25519 public key")


def _with_junk(text: str) -> str:
    """Valid base64 with one character outside the alphabet in the middle (lenient decoders
    skip it and decode the same bytes)."""
    middle = len(text) // 2
    return text[:middle] + "!" + text[middle:]


def test_base64_is_decoded_strictly(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    text = _with_junk(public_key_to_b64(key.public_key()))
    with pytest.raises(InvalidInput) as caught:
        public_key_from_b64(text)
    assert caught.value.message == "public key is not valid base64"
    envelope = signed(key)
    loose_payload = envelope.model_copy(update={"payload": _with_junk(envelope.payload)})
    with pytest.raises(SignatureInvalid, match="envelope payload is not valid base64"):
        verify_envelope(loose_payload, trusted(key))
    sig = envelope.signatures[0].model_copy(update={"sig": _with_junk(envelope.signatures[0].sig)})
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_envelope(envelope.model_copy(update={"signatures": [sig]}), trusted(key))


@pytest.mark.parametrize(("ref", "problem"), [
    ("acme/Bad_Name@1.0.0", "invalid function name 'Bad_Name'"),
    ("acme/../etc@1.0.0", "invalid function name '../etc'"),
    ("../acme/x@1.0.0", "invalid namespace '..'"),
    ("acme/x@", "'' is not a SemVer 2.0 version"),
    ("acme/x@1.0", "'1.0' is not a SemVer 2.0 version"),
    ("acme/x@latest", "'latest' is not a SemVer 2.0 version"),
    ("acme/x@1.0.0@evil", "'1.0.0@evil' is not a SemVer 2.0 version"),
])
def test_the_signed_reference_names_are_checked(ref: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(problem)):
        make_statement(ref, PKG, predicate={})


def test_size_limits_refuse_one_byte_over_not_at(tmp_path: Path) -> None:
    at = tmp_path / "at.pub"
    at.write_bytes(b"x" * (64 * 1024))
    with pytest.raises(InvalidInput, match="neither a PEM nor a base64"):
        load_public_key(at)
    over = tmp_path / "over.pub"
    over.write_bytes(b"x" * (64 * 1024 + 1))
    with pytest.raises(InvalidInput, match="too large to be a public key"):
        load_public_key(over)
    with pytest.raises(SignatureInvalid, match="not valid JSON"):
        parse_envelope(b" " * (1 << 20))
    with pytest.raises(SignatureInvalid, match="larger than 1048576 bytes"):
        parse_envelope(b" " * ((1 << 20) + 1))


def test_a_predicate_value_json_cannot_hold_is_signed_as_its_json_text(
        key: Ed25519PrivateKey) -> None:
    """A predicate is any mapping (YAML loads `released: 2026-01-02` as a date): it signs as the
    JSON the verifier reads back, not as a TypeError."""
    statement = make_statement(REF, PKG, predicate={"released": datetime.date(2026, 1, 2)})
    verified = verify_envelope(sign_statement(statement, key), trusted(key))
    assert verified.predicate == {"released": "2026-01-02"}
    check_subjects(verified, REF, PKG)


def test_a_key_being_written_exists_only_as_a_private_temp_file_beside_it(
        tmp_path: Path, key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch) -> None:
    """Atomic replace: the new key is written to a hidden 0600 sibling (same folder, so the
    rename cannot cross file systems) while the old key stays whole, then renamed over it."""
    folder = tmp_path / "keys"
    path = folder / "default.key"
    save_private_key(generate_key(), path)
    old = path.read_bytes()
    seen: list[dict[str, tuple[int, bytes]]] = []
    real_fsync = os.fsync

    def fsync_and_look(fd: int) -> None:
        real_fsync(fd)
        seen.append({p.name: (stat.S_IMODE(p.stat().st_mode), p.read_bytes())
                     for p in folder.iterdir()})

    monkeypatch.setattr(os, "fsync", fsync_and_look)
    save_private_key(key, path, overwrite=True)
    monkeypatch.undo()
    [during] = seen
    assert during.pop("default.key") == (0o600, old)
    [(temp_name, (temp_mode, temp_data))] = during.items()
    assert re.fullmatch(r"\.default\.key\.\w+\.tmp", temp_name)
    assert temp_mode == 0o600 and temp_data == path.read_bytes() != old
    assert [p.name for p in folder.iterdir()] == ["default.key"]


def test_a_failed_rename_leaves_no_temp_file(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    target = tmp_path / "key.pub"
    target.mkdir()
    (target / "inside").write_text("kept")
    with pytest.raises(IsADirectoryError):
        save_public_key(key.public_key(), target)
    assert [p.name for p in tmp_path.iterdir()] == ["key.pub"]
    assert (target / "inside").read_text() == "kept"


@pytest.mark.parametrize("load", [load_private_key, load_public_key])
def test_a_key_path_that_cannot_be_read_is_refused_naming_it(
        tmp_path: Path, load: Callable[[Path], object]) -> None:
    """A folder, a path through a plain file, a name too long: one-line errors, no traceback."""
    folder = tmp_path / "keys.d"
    folder.mkdir()
    plain = tmp_path / "plain"
    plain.write_text("x")
    for path in (folder, plain / "default.key", tmp_path / ("k" * 300)):
        with pytest.raises(InvalidInput) as caught:
            load(path)
        assert str(path) in caught.value.message


def test_a_pem_public_key_after_blank_lines_loads(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    path = tmp_path / "pasted.pub"
    save_public_key(key.public_key(), path)
    path.write_bytes(b"\n  \n" + path.read_bytes())
    assert key_id(load_public_key(path)) == key_id(key.public_key())


def test_a_subject_without_a_sha256_digest_vouches_for_nothing() -> None:
    package_sha512 = Subject(name=REF, digest={"sha512": "ab" * 64})
    statement = Statement(subject=[package_sha512], predicateType=PREDICATE_TYPE, predicate={})
    with pytest.raises(DigestMismatch, match=REF):
        check_subjects(statement, REF, PKG)
    image_sha512 = Subject(name="acme/describe:1.2.0", digest={"sha512": "cd" * 64})
    package = Subject(name=REF, digest={"sha256": "ab" * 32})
    statement = Statement(subject=[package, image_sha512], predicateType=PREDICATE_TYPE,
                          predicate={})
    check_subjects(statement, REF, PKG)
    with pytest.raises(DigestMismatch, match="image digest"):
        check_subjects(statement, REF, PKG, image_digest=IMAGE)


def test_a_public_key_file_is_world_readable_whatever_the_umask(
        tmp_path: Path, key: Ed25519PrivateKey) -> None:
    """Others check signatures with it; the private key stays 0600."""
    old = os.umask(0o077)
    try:
        save_public_key(key.public_key(), tmp_path / "k.pub")
        save_private_key(key, tmp_path / "k.key")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k.pub").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "k.key").stat().st_mode) == 0o600
