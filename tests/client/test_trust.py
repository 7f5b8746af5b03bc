"""Trust policy (design §5): trusted = first seen + explicitly trusted - explicitly untrusted,
pinned per hub; a hub's answer about keys is checked before anything is pinned."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from fnhub.core.api_models import KeyInfo
from fnhub.core.errors import HubAnswerMismatch, InvalidInput, StaleIndex
from fnhub.core.signing import generate_key, key_id, public_key_to_b64
from fnhub.trust import TrustStore, untrusted_key_error

HUB = "http://127.0.0.1:8080"


def _info(namespace: str = "alice", *, keyid: str | None = None) -> KeyInfo:
    public = generate_key().public_key()
    return KeyInfo(keyid=keyid or key_id(public), namespace=namespace,
                   public_key=public_key_to_b64(public), created_at=datetime.now(timezone.utc))


def test_first_seen_keys_are_pinned_and_a_new_key_is_not_trusted(tmp_path: Path) -> None:
    first = _info()
    assert set(TrustStore(tmp_path).trusted_keys(HUB, "alice", [first])) == {first.keyid}
    # a new process sees the pin; a key the hub adds later is offered but not trusted
    intruder = _info()
    assert set(TrustStore(tmp_path).trusted_keys(HUB, "alice", [first, intruder])) == {
        first.keyid}
    assert TrustStore(tmp_path).trusted_ids(HUB, "alice") == {first.keyid}


def test_the_refusal_names_the_full_key_and_the_command(tmp_path: Path) -> None:
    keyid = _info().keyid
    error = untrusted_key_error("alice", keyid, "alice/scale@2.0.0")
    assert keyid in error.message and "alice/scale@2.0.0" in error.message
    assert error.hint and f"hub keys trust alice {keyid}" in error.hint


def test_pins_are_per_hub(tmp_path: Path) -> None:
    store = TrustStore(tmp_path)
    store.trusted_keys(HUB, "alice", [_info()])
    other = _info()
    assert set(store.trusted_keys("http://other:9000", "alice", [other])) == {other.keyid}


def test_explicit_trust_adds_to_the_first_seen_keys(tmp_path: Path) -> None:
    """A rotation accepted with `hub keys trust` never locks out the old key's versions."""
    first, second = _info(), _info()
    store = TrustStore(tmp_path)
    store.trusted_keys(HUB, "alice", [first])
    store.trust("alice", second.keyid)
    assert set(TrustStore(tmp_path).trusted_keys(HUB, "alice", [first, second])) == {
        first.keyid, second.keyid}


def test_untrust_removes_even_a_first_seen_key(tmp_path: Path) -> None:
    first, second = _info(), _info()
    store = TrustStore(tmp_path)
    store.trusted_keys(HUB, "alice", [first, second])
    store.untrust("alice", first.keyid)
    assert set(TrustStore(tmp_path).trusted_keys(HUB, "alice", [first, second])) == {
        second.keyid}
    store.trust("alice", first.keyid)  # trusting again undoes the untrust
    assert TrustStore(tmp_path).trusted_ids(HUB, "alice") == {first.keyid, second.keyid}


def test_a_pinned_key_the_hub_no_longer_lists_still_verifies(tmp_path: Path) -> None:
    """Its bytes are pinned locally; only `hub keys untrust` drops it."""
    first, second = _info(), _info()
    TrustStore(tmp_path).trusted_keys(HUB, "alice", [first])
    keys = TrustStore(tmp_path).trusted_keys(HUB, "alice", [second])
    assert set(keys) == {first.keyid}
    assert public_key_to_b64(keys[first.keyid]) == first.public_key


def test_a_key_offered_under_a_wrong_id_is_refused(tmp_path: Path) -> None:
    liar = _info(keyid="0" * 64)
    with pytest.raises(HubAnswerMismatch, match="its bytes have id"):
        TrustStore(tmp_path).trusted_keys(HUB, "alice", [liar])
    assert not (tmp_path / "trust.json").exists()


def test_a_key_of_another_namespace_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HubAnswerMismatch, match="a key of 'mallory'"):
        TrustStore(tmp_path).trusted_keys(HUB, "alice", [_info("mallory")])
    assert not (tmp_path / "trust.json").exists()


def test_a_key_the_signed_index_does_not_list_is_refused(tmp_path: Path) -> None:
    listed, swapped = _info(), _info()
    with pytest.raises(HubAnswerMismatch, match="signed index does not list it"):
        TrustStore(tmp_path).trusted_keys(HUB, "alice", [swapped], [listed.keyid])
    assert set(TrustStore(tmp_path).trusted_keys(HUB, "alice", [listed], [listed.keyid])) == {
        listed.keyid}


@pytest.mark.parametrize("bad", ["ABC", "A" * 64, "g" * 64, "a" * 63, "a" * 65])
def test_trust_rejects_a_malformed_key_id(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidInput, match="64 lowercase hex"):
        TrustStore(tmp_path).trust("alice", bad)
    with pytest.raises(InvalidInput, match="64 lowercase hex"):
        TrustStore(tmp_path).untrust("alice", bad)


def test_serials_only_go_up(tmp_path: Path) -> None:
    store = TrustStore(tmp_path)
    store.check_serial(HUB, "alice/scale", 5)
    store.check_serial(HUB, "alice/scale", 5)  # the same index again is fine
    with pytest.raises(StaleIndex, match="serial 4, lower than serial 5"):
        TrustStore(tmp_path).check_serial(HUB, "alice/scale", 4)
    TrustStore(tmp_path).check_serial(HUB, "alice/other", 1)  # per function
    TrustStore(tmp_path).check_serial("http://other:9000", "alice/scale", 1)  # per hub


# --------------------------------------------------------------- guards (issue #13 item 6)


@pytest.mark.parametrize("bad", ["a" * 63 + "G", "a" * 63 + "X", "0" * 63, "0" * 63 + " "])
def test_a_key_id_needs_both_the_length_and_the_alphabet(tmp_path: Path, bad: str) -> None:
    """Each half of the check alone: right length with a wrong character, right characters with
    the wrong length (an `and` in place of the `or` accepts both)."""
    with pytest.raises(InvalidInput, match="64 lowercase hex"):
        TrustStore(tmp_path).pin_hub_key(HUB, bad, None)
    assert not (tmp_path / "trust.json").exists()


def test_a_pinned_key_the_hub_drops_keeps_only_the_pinned_bytes(tmp_path: Path) -> None:
    """Pinned keys verify from their pinned bytes after the hub stops offering them; a key
    trusted by id alone needs the hub's bytes, so it counts only while the hub offers it."""
    first, second = _info(), _info()
    store = TrustStore(tmp_path)
    store.trusted_keys(HUB, "alice", [first, second])
    store.trust("alice", (by_id := _info()).keyid)  # trusted by id alone
    keys = TrustStore(tmp_path).trusted_keys(HUB, "alice", [])
    assert set(keys) == {first.keyid, second.keyid}
    assert {public_key_to_b64(k) for k in keys.values()} == {first.public_key, second.public_key}
    keys = TrustStore(tmp_path).trusted_keys(HUB, "alice", [by_id])
    assert set(keys) == {first.keyid, second.keyid, by_id.keyid}
    assert public_key_to_b64(keys[by_id.keyid]) == by_id.public_key


def test_first_sight_pins_only_that_namespace_on_that_hub(tmp_path: Path) -> None:
    alice, bob = _info("alice"), _info("bob")
    store = TrustStore(tmp_path)
    store.trusted_keys(HUB, "alice", [alice])
    assert store.trusted_ids(HUB, "bob") == set()
    assert set(store.trusted_keys(HUB, "bob", [bob])) == {bob.keyid}
    assert store.trusted_ids(HUB, "alice") == {alice.keyid}
    assert store.trusted_ids("http://other:9000", "alice") == set()


def test_a_namespace_pinned_empty_stays_closed(tmp_path: Path) -> None:
    """A namespace first seen without keys is pinned as empty: keys the hub adds later are not
    trusted on sight."""
    store = TrustStore(tmp_path)
    assert store.trusted_keys(HUB, "alice", []) == {}
    assert TrustStore(tmp_path).trusted_keys(HUB, "alice", [_info()]) == {}


def test_explicit_trust_with_bytes_needs_no_hub(tmp_path: Path) -> None:
    mine = _info()
    store = TrustStore(tmp_path)
    store.trust("alice", mine.keyid, mine.public_key)
    keys = TrustStore(tmp_path).trusted_keys(HUB, "alice", [])
    assert set(keys) == {mine.keyid}
    assert public_key_to_b64(keys[mine.keyid]) == mine.public_key
    assert TrustStore(tmp_path).explicit("alice") == {mine.keyid: mine.public_key}


def test_untrust_applies_on_every_hub_and_is_recorded_once(tmp_path: Path) -> None:
    key = _info()
    store = TrustStore(tmp_path)
    store.trusted_keys(HUB, "alice", [key])
    store.trusted_keys("http://other:9000", "alice", [key])
    store.trust("alice", key.keyid, key.public_key)
    store.untrust("alice", key.keyid)
    assert store.explicit("alice") == {}
    store.untrust("alice", key.keyid)
    again = TrustStore(tmp_path)
    assert again.data.untrusted == {"alice": [key.keyid]}
    assert again.trusted_ids(HUB, "alice") == set()
    assert again.trusted_ids("http://other:9000", "alice") == set()
    assert again.trusted_keys(HUB, "alice", [key]) == {}


def test_the_hub_index_key_is_pinned_per_hub(tmp_path: Path) -> None:
    key = _info()
    TrustStore(tmp_path).pin_hub_key(HUB, key.keyid, key.public_key)
    assert (tmp_path / "trust.json").is_file()
    again = TrustStore(tmp_path)
    pinned = again.hub_key(HUB)
    assert pinned is not None
    assert (pinned.keyid, pinned.public_key) == (key.keyid, key.public_key)
    assert again.hub_key("http://127.0.0.1:9999") is None


def test_a_higher_serial_is_remembered(tmp_path: Path) -> None:
    TrustStore(tmp_path).check_serial(HUB, "alice/scale", 3)
    TrustStore(tmp_path).check_serial(HUB, "alice/scale", 7)
    assert TrustStore(tmp_path).data.serials == {"127.0.0.1:8080": {"alice/scale": 7}}
    with pytest.raises(StaleIndex, match="serial 6, lower than serial 7"):
        TrustStore(tmp_path).check_serial(HUB, "alice/scale", 6)


def test_a_serial_raised_by_another_process_is_never_lowered(tmp_path: Path) -> None:
    """The write re-reads trust.json under the lock, so a slower process keeps the maximum."""
    slow = TrustStore(tmp_path)
    slow.check_serial(HUB, "alice/scale", 3)
    TrustStore(tmp_path).check_serial(HUB, "alice/scale", 9)
    slow.check_serial(HUB, "alice/scale", 5)  # it still remembers 3
    assert TrustStore(tmp_path).data.serials == {"127.0.0.1:8080": {"alice/scale": 9}}
