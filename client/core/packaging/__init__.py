"""Function packages (design §4): deterministic packing, digests, and safe unpacking.

Packing loads `pathspec` and the manifest (YAML), which installing never needs, so `pack` and
`unpack` load on first use: verifying and unpacking a download stays cheap to start.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from fnhub.core.packaging.digests import (
    DIGEST_PREFIX,
    HashingWriter,
    PackResult,
    digest_file,
    digest_hex,
)

if TYPE_CHECKING:
    from fnhub.core.packaging.pack import ALWAYS_EXCLUDED, IGNORE_FILE, pack, package_files
    from fnhub.core.packaging.unpack import (
        DEFAULT_MAX_MEMBERS,
        DEFAULT_MAX_UNPACKED_SIZE,
        check_archive,
        read_member,
        unpack,
    )

_LAZY = {name: "fnhub.core.packaging.pack"
         for name in ("ALWAYS_EXCLUDED", "IGNORE_FILE", "pack", "package_files")}
_LAZY |= {name: "fnhub.core.packaging.unpack"
          for name in ("DEFAULT_MAX_MEMBERS", "DEFAULT_MAX_UNPACKED_SIZE", "check_archive",
                       "read_member", "unpack")}

__all__ = [
    "ALWAYS_EXCLUDED", "DEFAULT_MAX_MEMBERS", "DEFAULT_MAX_UNPACKED_SIZE", "DIGEST_PREFIX",
    "IGNORE_FILE", "HashingWriter", "PackResult", "check_archive", "digest_file", "digest_hex",
    "pack", "package_files", "read_member", "unpack",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fnhub.core.packaging' has no attribute {name!r}")
