"""Resolve a function URI on the configured hubs (or the local store), download, verify, unpack.

The client verifies before it installs or runs anything: the envelope's signature against the
trusted keys of the namespace, the signed subject against the package digest, and the downloaded
bytes against that digest. When the signed statement also names an image, the manifest the
registry serves for the version's image must hash to that very digest. Offline mode resolves
from the store only and never opens a socket.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from fnhub.api_client import HubClient
from fnhub.config import Config, HubEntry
from fnhub.core.api_models import Resolution
from fnhub.core.errors import (
    DigestMismatch,
    FnhubError,
    HubUnavailable,
    NoMatchingVersion,
    NotFound,
    OfflineError,
    SignatureInvalid,
)
from fnhub.core.packaging import DIGEST_PREFIX, digest_file, unpack
from fnhub.core.signing import Statement, check_subjects, parse_envelope, verify_envelope
from fnhub.core.uri import FunctionURI
from fnhub.core.versions import Candidate, resolve
from fnhub.images import parse_image_ref, served_digest
from fnhub.store import InstallRecord, Store
from fnhub.trust import TrustStore

Warn = Callable[[str], None]


def default_warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)


@dataclass
class Installer:
    config: Config
    insecure_skip_verify: bool = False
    warn: Warn = default_warn

    @property
    def store(self) -> Store:
        return Store(self.config.home)

    def hubs_for(self, uri: FunctionURI) -> list[HubEntry]:
        return [self.config.hub_for_host(uri.host)] if uri.host else list(self.config.hubs)

    # -- resolution -----------------------------------------------------------

    def resolve_online(self, uri: FunctionURI) -> tuple[HubEntry, Resolution]:
        """The first configured hub that has the function decides; unreachable hubs are skipped."""
        last: FnhubError | None = None
        for hub in self.hubs_for(uri):
            with HubClient(hub.url, hub.token) as client:
                try:
                    resolution = client.resolve(uri.namespace, uri.name, uri.version)
                except NoMatchingVersion:
                    raise
                except (NotFound, HubUnavailable) as exc:
                    last = exc
                    continue
            self._check_pin(uri, resolution.digest, resolution.version)
            return hub, resolution
        assert last is not None
        raise last

    def resolve_installed(self, uri: FunctionURI) -> InstallRecord:
        """Offline resolution: only what the store holds."""
        hubs = {h.url for h in self.hubs_for(uri)} if uri.host else None
        records = [r for r in self.store.records(uri.namespace, uri.name)
                   if hubs is None or r.hub in hubs]
        if not records:
            raise OfflineError(
                f"{uri.ref} is not installed and offline mode is on (FNHUB_OFFLINE=1)",
                hint=f"install it while online: hub install {uri}")
        candidates = [Candidate(r.version, r.yanked) for r in records]
        try:
            version = resolve(uri.version, candidates, {}, ref=uri.ref)
        except NoMatchingVersion as exc:
            raise OfflineError(f"offline: {exc.message}") from None
        record = next(r for r in records if r.version == version)
        self._check_pin(uri, record.digest, record.version)
        return record

    @staticmethod
    def _check_pin(uri: FunctionURI, digest: str, version: str) -> None:
        if uri.digest and uri.digest != digest:
            raise DigestMismatch(
                f"{uri.ref}@{version} has digest {digest}, but the URI pins {uri.digest}")

    # -- install --------------------------------------------------------------

    def ensure(self, uri: FunctionURI) -> InstallRecord:
        """The installed function for `uri`, installing it first when needed."""
        if self.config.offline:
            return self.resolve_installed(uri)
        try:
            hub, resolution = self.resolve_online(uri)
        except HubUnavailable as exc:
            try:
                record = self.resolve_installed(uri)
            except OfflineError:
                raise exc from None
            self.warn(f"hub unreachable; using the installed {record.ref}@{record.version}")
            return record
        return self.install_resolved(hub, resolution)

    def install_resolved(self, hub: HubEntry, res: Resolution) -> InstallRecord:
        if res.yanked:
            self.warn(f"{res.namespace}/{res.name}@{res.version} is yanked; installing it because "
                      "it was pinned exactly")
        store = self.store
        with store.lock(f"{res.namespace}/{res.name}/{res.version}"):
            existing = store.get(hub.url, res.namespace, res.name, res.version)
            if existing and existing.digest == res.digest and store.files_dir(existing).is_dir():
                if existing.yanked != res.yanked:
                    existing.yanked = res.yanked
                    store.save(existing)
                return existing
            if existing:
                store.remove(existing)
            return self._download_and_unpack(hub, res)

    def _download_and_unpack(self, hub: HubEntry, res: Resolution) -> InstallRecord:
        store = self.store
        ref = f"{res.namespace}/{res.name}"
        package = store.package_path(res.digest)
        with HubClient(hub.url, hub.token) as client:
            envelope_data = client.attestations(res.namespace, res.name, res.version)
            keyid = None
            if self.insecure_skip_verify:
                self.warn(f"--insecure-skip-verify: installing {ref}@{res.version} WITHOUT "
                          "checking its signature")
            else:
                keyid, _image = self._verify(client, hub, res, envelope_data)
            if not package.is_file() or digest_file(package) != res.digest:
                client.download_package(res.namespace, res.name, res.version, package, res.digest)
        record = InstallRecord(
            hub=hub.url, namespace=res.namespace, name=res.name, version=res.version,
            digest=res.digest, size=package.stat().st_size, yanked=res.yanked, keyid=keyid,
            envelope=envelope_data[0] if envelope_data else None,
            installed_at=datetime.now(timezone.utc))
        entry = store.entry_dir(hub.url, res.namespace, res.name, res.version)
        unpack(package, entry / "files")
        store.save(record)
        return record

    def verify_remote(self, uri: FunctionURI) -> dict[str, str]:
        """Everything install checks, without installing: signature, trust, digests."""
        hub, res = self.resolve_online(uri)
        with HubClient(hub.url, hub.token) as client:
            keyid, image = self._verify(
                client, hub, res, client.attestations(res.namespace, res.name, res.version))
            with tempfile.TemporaryDirectory(prefix="fnhub-verify-") as tmp:
                client.download_package(res.namespace, res.name, res.version,
                                        Path(tmp) / "package.tar.gz", res.digest)
        result = {"function": f"{res.namespace}/{res.name}", "version": res.version,
                  "digest": res.digest, "keyid": keyid, "hub": hub.url}
        return result | ({"image": image} if image else {})

    def _verify(self, client: HubClient, hub: HubEntry, res: Resolution,
                envelope_data: list[dict]) -> tuple[str, str | None]:
        """Signature, key trust and signed digests; returns the id of the key that signed, and
        the verified image (`REF@DIGEST`) when the statement names one."""
        ref = f"{res.namespace}/{res.name}@{res.version}"
        if not envelope_data:
            raise SignatureInvalid(f"{ref} has no signed attestation on {hub.url}")
        trusted = TrustStore(self.config.config_dir).trusted_keys(
            hub.url, res.namespace, client.keys(res.namespace))
        envelope = parse_envelope(envelope_data[0])
        statement = verify_envelope(envelope, trusted)
        check_subjects(statement, ref, res.digest)
        image = self._check_image(client, hub, res, statement)
        return next(s.keyid for s in envelope.signatures if s.keyid in trusted), image

    def _check_image(self, client: HubClient, hub: HubEntry, res: Resolution,
                     statement: Statement) -> str | None:
        """When the statement signs an image digest, the registry must serve that manifest
        for the version's image; returns `REF@DIGEST`, or None without an image."""
        package = f"{res.namespace}/{res.name}@{res.version}"
        images = [s for s in statement.subject if s.name != package]
        if not images:
            return None
        signed = DIGEST_PREFIX + images[0].digest.get("sha256", "").lower()
        info = client.version(res.namespace, res.name, res.version).image
        if info is None or not info.ref:
            raise DigestMismatch(f"{package}: the signed statement names image {signed}, but "
                                 f"{hub.url} does not say where that image is")
        ref = parse_image_ref(info.ref)
        registry = hub if ref.registry == hub.netloc else self.config.hub_for_host(ref.registry)
        served = served_digest(registry, ref)
        if served != signed:
            raise DigestMismatch(
                f"{package}: image {ref} has manifest digest {served} in its registry, but "
                f"the signed statement names {signed}",
                hint="the image was changed after publishing; do not run it")
        return f"{ref}@{signed}"
