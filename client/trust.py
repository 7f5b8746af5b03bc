"""Which publisher keys the client accepts (design §5).

Policy, per namespace: keys the user trusts explicitly (`hub keys trust`) win; otherwise the
namespace's key set as first seen on a hub is pinned, and a later, different set is refused
until the user trusts the new key explicitly.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, Field

from fnhub.core.api_models import KeyInfo
from fnhub.core.errors import InvalidInput, UntrustedKey
from fnhub.core.signing import key_id, public_key_from_b64
from fnhub.store import write_atomic

# keyid -> base64 public key (None when trusted by id alone; the hub supplies the key)
KeySet = dict[str, str | None]


class TrustFile(BaseModel):
    explicit: dict[str, KeySet] = Field(default_factory=dict)  # namespace -> keys
    pinned: dict[str, dict[str, KeySet]] = Field(default_factory=dict)  # hub -> namespace -> keys


def _short(keyid: str) -> str:
    return keyid[:12]


class TrustStore:
    def __init__(self, config_dir: Path) -> None:
        self.path = config_dir / "trust.json"
        self.data = (TrustFile.model_validate_json(self.path.read_bytes())
                     if self.path.is_file() else TrustFile())

    def _save(self) -> None:
        write_atomic(self.path, self.data.model_dump_json(indent=2).encode())

    def trust(self, namespace: str, keyid: str, public_key_b64: str | None = None) -> None:
        if len(keyid) != 64 or any(c not in "0123456789abcdef" for c in keyid):
            raise InvalidInput(f"invalid key id {keyid!r}: expected 64 lowercase hex characters")
        self.data.explicit.setdefault(namespace, {})[keyid] = public_key_b64
        self._save()

    def explicit(self, namespace: str) -> KeySet:
        return dict(self.data.explicit.get(namespace, {}))

    def trusted_keys(self, hub_url: str, namespace: str,
                     hub_keys: list[KeyInfo]) -> dict[str, Ed25519PublicKey]:
        """The keys to verify `namespace`'s packages with; pins the hub's set on first sight."""
        offered = {}
        for info in hub_keys:
            public = public_key_from_b64(info.public_key)
            if key_id(public) == info.keyid:  # a hub cannot pass a key off under another id
                offered[info.keyid] = public

        explicit = self.explicit(namespace)
        if explicit:
            keys = {}
            for keyid, b64 in explicit.items():
                if b64 is not None:
                    keys[keyid] = public_key_from_b64(b64)
                elif keyid in offered:
                    keys[keyid] = offered[keyid]
            return keys

        hub = urlsplit(hub_url).netloc
        pinned = self.data.pinned.get(hub, {}).get(namespace)
        if pinned is None:
            self.data.pinned.setdefault(hub, {})[namespace] = {
                k: info.public_key for info in hub_keys for k in [info.keyid] if k in offered}
            self._save()
            return offered
        if set(pinned) != set(offered):
            added = sorted(set(offered) - set(pinned))
            removed = sorted(set(pinned) - set(offered))
            parts = []
            if added:
                parts.append("new " + ", ".join(map(_short, added)))
            if removed:
                parts.append("removed " + ", ".join(map(_short, removed)))
            first = (added or removed)[0]
            raise UntrustedKey(
                f"the publisher keys of namespace {namespace!r} on {hub} changed since first "
                f"seen ({'; '.join(parts)})",
                hint=f"if you expected this, accept the key: hub keys trust {namespace} {first}",
            )
        return {k: public_key_from_b64(b64) for k, b64 in pinned.items() if b64}

