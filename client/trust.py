"""What the client trusts (design §5): publisher keys per namespace, each hub's index key, and
the highest index serial seen per function. Kept in `<config-dir>/trust.json`.

Trusted publisher keys of a namespace = the keys first seen for it on a hub (from its signed
index), plus keys trusted explicitly (`hub keys trust`), minus keys untrusted explicitly
(`hub keys untrust`). A key that is new to the client is refused with the exact command that
accepts it; accepting it adds to the set, so versions signed by keys still trusted keep working.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from filelock import FileLock
from pydantic import BaseModel, Field

from fnhub.core.api_models import KeyInfo
from fnhub.core.errors import HubAnswerMismatch, InvalidInput, StaleIndex, UntrustedKey
from fnhub.core.signing import key_id, public_key_from_b64
from fnhub.store import write_atomic

# keyid -> base64 public key (None when trusted by id alone; the hub supplies the key)
KeySet = dict[str, str | None]


class HubKey(BaseModel):
    """The index key pinned for a hub; `public_key` is None when trusted by id alone."""

    keyid: str
    public_key: str | None = None


class TrustFile(BaseModel):
    explicit: dict[str, KeySet] = Field(default_factory=dict)  # namespace -> keys
    untrusted: dict[str, list[str]] = Field(default_factory=dict)  # namespace -> key ids
    pinned: dict[str, dict[str, KeySet]] = Field(default_factory=dict)  # hub -> namespace -> keys
    index_keys: dict[str, HubKey] = Field(default_factory=dict)  # hub -> its index key
    serials: dict[str, dict[str, int]] = Field(default_factory=dict)  # hub -> "ns/name" -> serial


def check_keyid(keyid: str) -> str:
    if len(keyid) != 64 or any(c not in "0123456789abcdef" for c in keyid):
        raise InvalidInput(f"invalid key id {keyid!r}: expected 64 lowercase hex characters")
    return keyid


def hub_id(hub_url: str) -> str:
    """Trust is kept per hub address (`host:port`)."""
    return urlsplit(hub_url).netloc


def untrusted_key_error(namespace: str, keyid: str, what: str) -> UntrustedKey:
    """The refusal of a key the user has not accepted, with the command that accepts it."""
    return UntrustedKey(
        f"{what} is signed by key {keyid}, which you do not trust for namespace {namespace!r}",
        hint=f"if you expected this key (a rotation), accept it: "
             f"hub keys trust {namespace} {keyid}",
    )


def offered_keys(namespace: str, hub_keys: list[KeyInfo],
                 listed: list[str] | None) -> dict[str, Ed25519PublicKey]:
    """The hub's answer to "keys of `namespace`", checked: each key is of that namespace, its id
    is the hash of its bytes, and (with a signed index) the index lists it."""
    offered = {}
    for info in hub_keys:
        if info.namespace != namespace:
            raise HubAnswerMismatch(
                f"asked for the keys of namespace {namespace!r}, the hub answered with a key "
                f"of {info.namespace!r}")
        public = public_key_from_b64(info.public_key)
        if key_id(public) != info.keyid:
            raise HubAnswerMismatch(
                f"the hub offers a key of namespace {namespace!r} under id {info.keyid!r}, "
                f"but its bytes have id {key_id(public)}")
        if listed is not None and info.keyid not in listed:
            raise HubAnswerMismatch(
                f"the hub shows key {info.keyid} for namespace {namespace!r}, but its signed "
                "index does not list it")
        offered[info.keyid] = public
    return offered


class TrustStore:
    def __init__(self, config_dir: Path) -> None:
        self.path = config_dir / "trust.json"
        self.data = self._load()

    def _load(self) -> TrustFile:
        return (TrustFile.model_validate_json(self.path.read_bytes())
                if self.path.is_file() else TrustFile())

    @contextmanager
    def _update(self) -> Iterator[TrustFile]:
        """Read, change and write trust.json under a lock, so parallel clients lose nothing."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path.with_name("trust.json.lock"))):
            self.data = self._load()
            yield self.data
            write_atomic(self.path, self.data.model_dump_json(indent=2).encode())

    # -- the user's choices ---------------------------------------------------

    def trust(self, namespace: str, keyid: str, public_key_b64: str | None = None) -> None:
        check_keyid(keyid)
        with self._update() as data:
            data.explicit.setdefault(namespace, {})[keyid] = public_key_b64
            if keyid in data.untrusted.get(namespace, []):
                data.untrusted[namespace].remove(keyid)

    def untrust(self, namespace: str, keyid: str) -> None:
        check_keyid(keyid)
        with self._update() as data:
            data.explicit.get(namespace, {}).pop(keyid, None)
            if keyid not in data.untrusted.setdefault(namespace, []):
                data.untrusted[namespace].append(keyid)

    def explicit(self, namespace: str) -> KeySet:
        return dict(self.data.explicit.get(namespace, {}))

    # -- publisher keys -------------------------------------------------------

    def trusted_ids(self, hub_url: str, namespace: str) -> set[str]:
        """Ids of the keys trusted for `namespace` on this hub, from local data alone."""
        first_seen = self.data.pinned.get(hub_id(hub_url), {}).get(namespace, {})
        untrusted = set(self.data.untrusted.get(namespace, []))
        return (set(first_seen) | set(self.explicit(namespace))) - untrusted

    def trusted_keys(self, hub_url: str, namespace: str, hub_keys: list[KeyInfo],
                     listed: list[str] | None = None) -> dict[str, Ed25519PublicKey]:
        """The keys to verify `namespace`'s packages with; pins the keys on first sight.

        `listed` is the key list of the namespace's signed index (None without one)."""
        offered = offered_keys(namespace, hub_keys, listed)
        hub = hub_id(hub_url)
        if namespace not in self.data.pinned.get(hub, {}):
            with self._update() as data:
                data.pinned.setdefault(hub, {}).setdefault(namespace, {
                    info.keyid: info.public_key for info in hub_keys})
        known: KeySet = {**self.data.pinned[hub][namespace], **self.explicit(namespace)}
        keys = {}
        for keyid in self.trusted_ids(hub_url, namespace):
            b64 = known.get(keyid)
            if b64 is not None:
                keys[keyid] = public_key_from_b64(b64)
            elif keyid in offered:
                keys[keyid] = offered[keyid]
        return keys

    # -- hub index keys and serials -------------------------------------------

    def hub_key(self, hub_url: str) -> HubKey | None:
        return self.data.index_keys.get(hub_id(hub_url))

    def pin_hub_key(self, hub_url: str, keyid: str, public_key_b64: str | None) -> None:
        check_keyid(keyid)
        with self._update() as data:
            data.index_keys[hub_id(hub_url)] = HubKey(keyid=keyid, public_key=public_key_b64)

    def check_serial(self, hub_url: str, function: str, serial: int) -> None:
        """Refuse an index older than one already seen for `function` (rollback), then
        remember `serial` as the highest seen."""
        seen = self.data.serials.get(hub_id(hub_url), {}).get(function, 0)
        if serial < seen:
            raise StaleIndex(
                f"the signed index of {function} has serial {serial}, lower than serial {seen} "
                f"seen before: {hub_id(hub_url)} (or a mirror in its place) is replaying an "
                "older index (rollback)")
        if serial > seen:
            with self._update() as data:
                current = data.serials.setdefault(hub_id(hub_url), {})
                current[function] = max(serial, current.get(function, 0))
