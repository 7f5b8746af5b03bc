"""Resolving a step's function to one exact version and package digest, installing it verified.

A step may also use a feature set (a hub URI or a folder holding featureset.yaml): it resolves,
installs and verifies the same way and becomes a feature-set step (`fnhub.pipeline.featuresets`).

A hub URI goes through `Installer.ensure` (signature, key trust and digests are checked before
anything is installed); under a lock it installs exactly the pinned version and digest. A local
folder is identified by the digest of the package it would pack to, so any change to its files
changes its identity (and so its lock entry and its cache keys).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fnhub.config import Config
from fnhub.core.errors import Conflict, FnhubError, InvalidInput, ManifestError
from fnhub.core.featureset import FeatureSetManifest
from fnhub.core.items import FEATURE_SET, Item, load_item
from fnhub.core.packaging import HashingWriter, pack
from fnhub.core.uri import FunctionURI, is_local_ref, local_path, parse_uri
from fnhub.function import Function
from fnhub.install import Installer, Warn, default_warn
from fnhub.pipeline.featuresets import feature_source, step_manifest
from fnhub.pipeline.graph import FunctionRef
from fnhub.pipeline.lock import RELOCK, PipelineLock
from fnhub.store import InstallRecord


def pack_digest(folder: Path) -> str:
    """The digest of the package `folder` would pack to (nothing is written)."""
    return pack(folder, HashingWriter()).digest


def _item_ref(uses: str, ref: str, version: str, digest: str, pinned: str | None,
              folder: Path, item: Item, insecure_skip_verify: bool,
              transform: str | None) -> FunctionRef:
    """A function, or a feature set as the interface of the step ingesting into it."""
    if isinstance(item, FeatureSetManifest):
        manifest = step_manifest(item, feature_source(folder, pinned),
                                 insecure_skip_verify=insecure_skip_verify, transform=transform)
        return FunctionRef(uses=uses, ref=ref, version=version, digest=digest, pinned=pinned,
                           folder=folder, manifest=manifest, kind=FEATURE_SET,
                           transform=transform)
    return FunctionRef(uses=uses, ref=ref, version=version, digest=digest, pinned=pinned,
                       folder=folder, manifest=item)


def _local_ref(uses: str, folder: Path, manifest: Item,
               transform: str | None = None) -> FunctionRef:
    meta = manifest.metadata
    return _item_ref(uses, f"{meta.namespace}/{meta.name}", meta.version, pack_digest(folder),
                     None, folder, manifest, False, transform)


def _installed_ref(uses: str, record: InstallRecord, folder: Path, manifest: Item,
                   insecure_skip_verify: bool = False,
                   transform: str | None = None) -> FunctionRef:
    return _item_ref(uses, record.ref, record.version, record.digest, record.uri, folder,
                     manifest, insecure_skip_verify, transform)


@dataclass
class Resolver:
    """Turns what a step `uses` into a FunctionRef.

    `base_dir` anchors relative local folders (a pipeline file's folder); with `lock`, hub steps
    resolve to what the lock pins, and a step missing from it or whose `uses` changed is refused.
    """

    config: Config
    insecure_skip_verify: bool = False
    warn: Warn = default_warn
    base_dir: Path | None = None
    lock: PipelineLock | None = None
    lock_path: Path | None = None

    def resolve(self, step: str, function: Function | str | os.PathLike[str]) -> FunctionRef:
        if isinstance(function, os.PathLike):
            folder = ((self.base_dir or Path.cwd()) / function).resolve()
            item = load_item(folder)
            return _local_ref(os.fspath(function), folder, item,
                              self._transform(step, os.fspath(function), item))
        if isinstance(function, Function):
            if function.record is None:
                return _local_ref(function.source, function.folder, function.manifest)
            return _installed_ref(function.source, function.record, function.folder,
                                  function.manifest)
        if not isinstance(function, str):
            raise InvalidInput(f"step {step!r}: expected a Function, a hub URI or a local folder "
                               f"path, got {type(function).__name__}")
        if is_local_ref(function):
            relative = function in (".", "..") or function.startswith(("./", "../"))
            folder = (self.base_dir / function).resolve() if relative and self.base_dir else \
                local_path(function)
            item = load_item(folder)
            return _local_ref(function, folder, item, self._transform(step, function, item))
        target = parse_uri(function)
        if self.lock is not None and self.lock_path is not None:
            locked = self.lock.entry(step, function, self.lock_path)
            if locked.pinned is None:
                raise InvalidInput(f"{self.lock_path}: step {step!r} is locked as a local folder")
            target = parse_uri(locked.pinned)
        installer, record = self._install(step, function, target)
        folder = installer.store.files_dir(record)
        item = load_item(folder)
        return _installed_ref(function, record, folder, item, self.insecure_skip_verify,
                              self._transform(step, function, item))

    def _install(self, step: str, uses: str, target: FunctionURI
                 ) -> tuple[Installer, InstallRecord]:
        """Install `target` verified; an error names the step."""
        installer = Installer(self.config, insecure_skip_verify=self.insecure_skip_verify,
                              warn=self.warn)
        try:
            return installer, installer.ensure(target)
        except FnhubError as exc:
            raise type(exc)(f"step {step!r} ({uses}): {exc.message}", hint=exc.hint) from None

    def _transform(self, step: str, uses: str, item: Item) -> str | None:
        """The exact version (a digest-pinned URI) of a feature set's hub transform: under a
        lock the lock's pin, else what the range names now; installed and verified either
        way, so a run on a fresh store applies the set with the transform it was locked
        with."""
        if not isinstance(item, FeatureSetManifest) or item.spec.transform is None \
                or is_local_ref(item.spec.transform.uses):
            return None
        wanted = item.spec.transform.uses
        if self.lock is not None and self.lock_path is not None:
            locked = self.lock.entry(step, uses, self.lock_path).transform
            if locked is None:
                raise Conflict(f"{self.lock_path} is stale: step {step!r} has no pin for the "
                               f"transform {wanted}", hint=RELOCK)
            try:
                item.check_transform_pin(locked)
            except ManifestError as exc:
                raise InvalidInput(f"{self.lock_path}: step {step!r}: {exc.message}") from None
            wanted = locked
        return self._install(step, wanted, parse_uri(wanted))[1].uri
