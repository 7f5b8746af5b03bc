"""Trust policy: explicit trust wins; otherwise the first-seen key set is pinned per hub."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from fnhub.core.api_models import KeyInfo
from fnhub.core.errors import InvalidInput, UntrustedKey
from fnhub.core.signing import generate_key, key_id, public_key_to_b64
from fnhub.trust import TrustStore

HUB = "http://127.0.0.1:8080"


def _info(namespace: str = "alice", *, keyid: str | None = None) -> KeyInfo:
    public = generate_key().public_key()
    return KeyInfo(keyid=keyid or key_id(public), namespace=namespace,
                   public_key=public_key_to_b64(public), created_at=datetime.now(timezone.utc))


def test_first_seen_keys_are_pinned_and_a_change_is_refused(tmp_path: Path) -> None:
    first = _info()
    assert set(TrustStore(tmp_path).trusted_keys(HUB, "alice", [first])) == {first.keyid}
    # a new process sees the pin
    assert set(TrustStore(tmp_path).trusted_keys(HUB, "alice", [first])) == {first.keyid}
    intruder = _info()
    with pytest.raises(UntrustedKey, match="changed since first seen") as info:
        TrustStore(tmp_path).trusted_keys(HUB, "alice", [first, intruder])
    assert info.value.hint and f"hub keys trust alice {intruder.keyid}" in info.value.hint


def test_pins_are_per_hub(tmp_path: Path) -> None:
    store = TrustStore(tmp_path)
    store.trusted_keys(HUB, "alice", [_info()])
    other = _info()
    assert set(store.trusted_keys("http://other:9000", "alice", [other])) == {other.keyid}


def test_explicit_trust_replaces_pinning(tmp_path: Path) -> None:
    first, second = _info(), _info()
    store = TrustStore(tmp_path)
    store.trusted_keys(HUB, "alice", [first])
    store.trust("alice", second.keyid)
    assert set(TrustStore(tmp_path).trusted_keys(HUB, "alice", [first, second])) == {
        second.keyid}


def test_a_key_offered_under_a_wrong_id_is_ignored(tmp_path: Path) -> None:
    liar = _info(keyid="0" * 64)
    assert TrustStore(tmp_path).trusted_keys(HUB, "alice", [liar]) == {}


def test_trust_rejects_a_malformed_key_id(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="64 lowercase hex"):
        TrustStore(tmp_path).trust("alice", "ABC")
