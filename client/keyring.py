"""The user's own signing keys: `<config-dir>/keys/NAME.key` (0600) and `NAME.pub`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fnhub.core.errors import Conflict, InvalidInput, NotFound
from fnhub.core.signing import (
    generate_key,
    key_id,
    load_private_key,
    save_private_key,
    save_public_key,
)

KEY_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")


@dataclass(frozen=True)
class LocalKey:
    name: str
    path: Path

    def load(self) -> Ed25519PrivateKey:
        return load_private_key(self.path)

    @property
    def keyid(self) -> str:
        return key_id(self.load().public_key())


def generate(keys_dir: Path, name: str = "default") -> LocalKey:
    if not name or not set(name) <= KEY_NAME_CHARS or name.startswith("."):
        raise InvalidInput(f"invalid key name {name!r}: "
                           "use lowercase letters, digits, '-', '_', '.'")
    path = keys_dir / f"{name}.key"
    if path.exists():
        raise Conflict(f"a key named {name!r} exists already ({path})",
                       hint="choose another --name; keys are never overwritten")
    key = generate_key()
    save_private_key(key, path)
    save_public_key(key.public_key(), keys_dir / f"{name}.pub")
    return LocalKey(name, path)


def list_keys(keys_dir: Path) -> list[LocalKey]:
    return [LocalKey(p.stem, p) for p in sorted(keys_dir.glob("*.key"))]


def find(keys_dir: Path, name_or_file: str | None) -> LocalKey:
    """A key by name or file; with neither, the only key there is."""
    if name_or_file:
        candidate = Path(name_or_file).expanduser()
        if candidate.is_file():
            return LocalKey(candidate.stem, candidate)
        path = keys_dir / f"{name_or_file}.key"
        if path.is_file():
            return LocalKey(name_or_file, path)
        raise NotFound(f"no key named {name_or_file!r} in {keys_dir} and no such file",
                       hint="`hub keys list` shows your keys; `hub keys generate` makes one")
    keys = list_keys(keys_dir)
    if len(keys) == 1:
        return keys[0]
    if not keys:
        raise NotFound("you have no signing key", hint="create one with `hub keys generate`")
    names = ", ".join(k.name for k in keys)
    raise InvalidInput(f"you have several keys ({names}); choose one with --key NAME")
