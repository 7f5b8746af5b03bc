"""Function packages (design §4): deterministic packing, digests, and safe unpacking."""

from fnhub.core.packaging.digests import (
    DIGEST_PREFIX,
    HashingWriter,
    PackResult,
    digest_file,
    digest_hex,
)
from fnhub.core.packaging.pack import ALWAYS_EXCLUDED, IGNORE_FILE, pack, package_files
from fnhub.core.packaging.unpack import (
    DEFAULT_MAX_MEMBERS,
    DEFAULT_MAX_UNPACKED_SIZE,
    check_archive,
    read_member,
    unpack,
)

__all__ = [
    "ALWAYS_EXCLUDED", "DEFAULT_MAX_MEMBERS", "DEFAULT_MAX_UNPACKED_SIZE", "DIGEST_PREFIX",
    "IGNORE_FILE", "HashingWriter", "PackResult", "check_archive", "digest_file", "digest_hex",
    "pack", "package_files", "read_member", "unpack",
]
