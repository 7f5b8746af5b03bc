"""The step cache: a finished step's outputs, found again by what went into it.

A step's cache key is the sha256 of its function's package digest, its parameter values and
the digests of its input artifacts (a file's sha256; a folder's sha256 over its sorted entries'
paths and file digests), so a step is skipped only when it would run the same code on the same
data. Steps are assumed deterministic; `--no-cache` (cache=False) runs them anyway and refreshes
their entries.

Layout under FNHUB_HOME:

    <home>/cache/steps/<key>/entry.json      {"key", "step", "function", "created_at",
                                              "outputs": {name: {"value": v} |
                                                          {"path": "outputs/...", "digest"}}}
    <home>/cache/steps/<key>/outputs/...     the artifact outputs, hard-linked from the run
    <home>/cache/steps/<key>.lock

A run whose artifacts live in an object store (the dask engine with `storage="s3://..."`) caches
their URIs instead, `{"uri", "digest", "fingerprint"}`: the fingerprint (the objects' keys, sizes
and ETags) stands in for re-hashing, so an object changed or removed since is a miss too. An
entry serves only runs that keep their artifacts where it does (files, or objects).

An entry is built under a temporary name and renamed into place; the key's lock is held to read
an entry and to replace one, not to add a new one (a rename onto no entry cannot disturb a
reader), so a step with a new key creates no lock file. Outputs are hard-linked (copied across
file systems) into the entry and from it into later runs; a lookup re-hashes the cached
artifacts, so an entry whose files were changed or removed is a miss, never a wrong answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock

from fnhub.core.packaging import DIGEST_PREFIX, digest_file

ENTRY_FILE = "entry.json"
REMOTE_SCHEME = "s3://"


def is_remote(value: object) -> bool:
    """An artifact kept in an object store, named by its URI rather than a local path."""
    return isinstance(value, str) and value.startswith(REMOTE_SCHEME)


class ObjectStore(Protocol):
    def fingerprint(self, uri: str) -> str | None:
        """What the artifact's objects are now; None when it is gone."""
        ...


def artifact_digest(path: Path) -> str:
    """`sha256:<hex>` of a file, or of a folder tree (paths, kinds, links and file digests)."""
    if not path.is_dir():
        return digest_file(path)
    hasher = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        rel_root = Path(root).relative_to(path)
        for name in dirs:
            hasher.update(f"D {(rel_root / name).as_posix()}\n".encode())
        for name in sorted(files):
            full, rel = Path(root) / name, (rel_root / name).as_posix()
            if full.is_symlink():
                hasher.update(f"L {rel} {os.readlink(full)}\n".encode())
            else:
                hasher.update(f"F {rel} {digest_file(full)}\n".encode())
    return DIGEST_PREFIX + hasher.hexdigest()


def cache_key(function_digest: str, inputs: dict[str, Any], artifacts: dict[str, str]) -> str:
    """The key of one step run; `artifacts` maps each artifact input to its content digest."""
    described = {name: {"artifact": artifacts[name]} if name in artifacts else {"value": value}
                 for name, value in sorted(inputs.items())}
    payload = json.dumps({"function": function_digest, "inputs": described}, sort_keys=True,
                         default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def link_tree(source: Path, dest: Path) -> None:
    """Hard-link a file or a folder tree to `dest` (copy where links are impossible)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, dest, copy_function=_link_file, symlinks=True, dirs_exist_ok=True)
    else:
        _link_file(source, dest)


def _link_file(source: str | Path, dest: str | Path) -> None:
    if os.path.lexists(dest):
        os.unlink(dest)
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


@dataclass
class CacheHit:
    outputs: dict[str, Any]  # values, and artifact paths inside the new run
    digests: dict[str, str]  # artifact output -> digest
    created_at: str


class StepCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _lock(self, key: str) -> FileLock:
        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / f"{key}.lock"))

    def restore(self, key: str, output_dir: Path,
                store: ObjectStore | None = None) -> CacheHit | None:
        """Link a valid entry's outputs into `output_dir`; None when there is none. Given
        `store`, the run keeps its artifacts there: only an entry of objects can serve it."""
        entry_dir = self.root / key
        if not (entry_dir / ENTRY_FILE).is_file():  # a miss needs no lock
            return None
        with self._lock(key):
            try:
                entry = json.loads((entry_dir / ENTRY_FILE).read_text())
            except (OSError, ValueError):
                return None
            artifacts = {name: item for name, item in entry["outputs"].items()
                         if "value" not in item}
            for item in artifacts.values():
                if ("uri" in item) != (store is not None):
                    return None
                if store is not None:
                    now = store.fingerprint(item["uri"])
                    if now is None or now != item["fingerprint"]:
                        return None
                    continue
                cached = entry_dir / item["path"]
                if not cached.exists() or artifact_digest(cached) != item["digest"]:
                    return None
            outputs: dict[str, Any] = {}
            for name, item in entry["outputs"].items():
                if "value" in item or "uri" in item:
                    outputs[name] = item.get("value", item.get("uri"))
                    continue
                rel = Path(item["path"]).relative_to("outputs")
                link_tree(entry_dir / item["path"], output_dir / rel)
                outputs[name] = str(output_dir / rel)
        return CacheHit(outputs, {n: i["digest"] for n, i in artifacts.items()},
                        entry["created_at"])

    def save(self, key: str, *, step: str, function: str, outputs: dict[str, Any],
             digests: dict[str, str], output_dir: Path,
             store: ObjectStore | None = None) -> None:
        """Store a successful step's outputs (artifacts inside `output_dir`, or objects in
        `store`) under `key`."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{key}-{secrets.token_hex(4)}"
        described: dict[str, Any] = {}
        try:
            for name, value in outputs.items():
                if name not in digests:
                    described[name] = {"value": value}
                    continue
                if is_remote(value):
                    described[name] = {"uri": value, "digest": digests[name], "fingerprint":
                                       store.fingerprint(value) if store else None}
                    continue
                rel = Path("outputs") / Path(value).relative_to(output_dir)
                link_tree(Path(value), tmp / rel)
                described[name] = {"path": rel.as_posix(), "digest": digests[name]}
            tmp.mkdir(parents=True, exist_ok=True)
            entry = {"key": key, "step": step, "function": function, "outputs": described,
                     "created_at": datetime.now(timezone.utc).isoformat()}
            (tmp / ENTRY_FILE).write_text(json.dumps(entry, indent=2, default=str))
            try:
                os.rename(tmp, self.root / key)  # fails when an entry is already there
            except OSError:
                with self._lock(key):
                    shutil.rmtree(self.root / key, ignore_errors=True)
                    os.replace(tmp, self.root / key)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
