"""Resolve a function URI on the configured hubs (or the local store), download, verify, unpack.

What the client acts on is bound to what it was asked for (design §5): the namespace and name
come from the URI, the version and digest from the hub's signed index (or, before a hub's
index key is pinned, from its answer checked against the URI), and the publisher's signed
statement must name exactly `NS/NAME@VERSION` with the digest of the bytes downloaded. A hub
answer that disagrees is refused (`hub_answer_mismatch`) before anything is written. When the
statement also names an image, the manifest the registry serves for the version's image must
hash to that very digest. Offline mode resolves from the store only and never opens a socket.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fnhub.api_client import HubClient
from fnhub.config import Config, HubEntry
from fnhub.core.api_models import Resolution
from fnhub.core.errors import (
    DigestMismatch,
    FnhubError,
    HubAnswerMismatch,
    HubUnavailable,
    NoMatchingVersion,
    NotFound,
    OfflineError,
    SignatureInvalid,
    UnsafePackage,
    VerificationError,
)
from fnhub.core.index import FunctionIndex
from fnhub.core.packaging import DIGEST_PREFIX, digest_file, pack, unpack
from fnhub.core.packaging.digests import HashingWriter
from fnhub.core.signing import Statement, check_subjects, parse_envelope, verify_envelope
from fnhub.core.uri import DIGEST_RE, FunctionURI
from fnhub.core.versions import Candidate, is_valid_version, parse_version, resolve
from fnhub.index import IndexReader
from fnhub.store import InstallRecord, Store
from fnhub.trust import TrustStore, untrusted_key_error

Warn = Callable[[str], None]


def default_warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)


@dataclass(frozen=True)
class Target:
    """One version to install: names from the URI, version and digest from signed (or checked)
    data, and the namespace's key list when a signed index gave one."""

    hub: HubEntry
    namespace: str
    name: str
    version: str
    digest: str
    yanked: bool
    listed_keys: list[str] | None = None

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def subject(self) -> str:
        """The package subject the publisher's statement must name."""
        return f"{self.ref}@{self.version}"


def check_version_answer(uri: FunctionURI, version: str, digest: str) -> None:
    """A version and digest a hub answered for `uri` are well-formed and within what was asked."""
    if not is_valid_version(version):
        raise HubAnswerMismatch(f"the hub answered {uri.ref} with a malformed version {version!r}")
    if not DIGEST_RE.fullmatch(digest):
        raise HubAnswerMismatch(
            f"the hub answered {uri.ref}@{version} with a malformed digest {digest[:80]!r}")
    spec = uri.spec
    if spec.exact is not None and parse_version(version) != parse_version(spec.exact):
        raise HubAnswerMismatch(
            f"asked for {uri.ref}:{spec.exact} exactly, the hub answered version {version}")
    if spec.exact is None and spec.tag in (None, "latest") and not spec.matches(version):
        raise HubAnswerMismatch(
            f"asked for {uri.ref}:{spec.text}, the hub answered version {version}, "
            "which is outside that range")


def bind_resolution(hub: HubEntry, uri: FunctionURI, res: Resolution) -> Target:
    """An unsigned `/resolve` answer, accepted only when it names what was asked for."""
    if (res.namespace, res.name) != (uri.namespace, uri.name):
        raise HubAnswerMismatch(
            f"asked for {uri.ref}, the hub answered with {res.namespace}/{res.name}"[:300])
    check_version_answer(uri, res.version, res.digest)
    return Target(hub, uri.namespace, uri.name, res.version, res.digest, res.yanked)


def resolve_from_index(hub: HubEntry, uri: FunctionURI, index: FunctionIndex) -> Target:
    """Ranges, tags and `latest` resolved by the client from a verified index."""
    live = {v: entry for v, entry in index.versions.items() if not entry.deleted}
    candidates = [Candidate(v, entry.yanked) for v, entry in live.items()]
    version = resolve(uri.spec, candidates, index.tags, ref=uri.ref)
    entry = live[version]
    check_version_answer(uri, version, entry.digest)
    return Target(hub, uri.namespace, uri.name, version, entry.digest, entry.yanked,
                  list(index.keys))


def files_digest(folder: Path) -> str:
    """The digest the folder packs to: what an untouched install of that package has."""
    return pack(folder, HashingWriter()).digest


@dataclass
class Installer:
    config: Config
    insecure_skip_verify: bool = False
    warn: Warn = default_warn
    # Within `session()`, one HubClient per hub: an install's index, attestation, keys and
    # package requests share one keep-alive connection (and one TLS set-up). Sessions are per
    # thread (keyed by thread id), so one Installer (a FeatureStore's) may serve several.
    _sessions: dict[int, dict[tuple[str, str | None], HubClient]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    @property
    def _clients(self) -> dict[tuple[str, str | None], HubClient] | None:
        return self._sessions.get(threading.get_ident())

    @contextmanager
    def session(self) -> Iterator[Installer]:
        """Keep one connection per hub open for every call made inside the block."""
        if self._clients is not None:  # nested: the outer session owns the clients
            yield self
            return
        thread = threading.get_ident()
        self._sessions[thread] = {}
        try:
            yield self
        finally:
            for client in self._sessions.pop(thread).values():
                client.close()

    @contextmanager
    def _client(self, hub: HubEntry) -> Iterator[HubClient]:
        """The session's client for `hub`, or, outside a session, one for this call alone."""
        clients = self._clients
        if clients is None:
            with HubClient(hub.url, hub.token) as client:
                yield client
            return
        key = (hub.url, hub.token)
        if key not in clients:
            clients[key] = HubClient(hub.url, hub.token)
        yield clients[key]

    @property
    def store(self) -> Store:
        return Store(self.config.home)

    @property
    def trust(self) -> TrustStore:
        return TrustStore(self.config.config_dir)

    def hubs_for(self, uri: FunctionURI) -> list[HubEntry]:
        return [self.config.hub_for_host(uri.host)] if uri.host else list(self.config.hubs)

    # -- resolution -----------------------------------------------------------

    def resolve_online(self, uri: FunctionURI) -> Target:
        """The first configured hub that has the function decides; unreachable hubs are skipped."""
        last: FnhubError | None = None
        for hub in self.hubs_for(uri):
            try:
                target = self._resolve_on(hub, uri)
            except NoMatchingVersion:
                raise
            except (NotFound, HubUnavailable) as exc:
                last = exc
                continue
            self._check_pin(uri, target.digest, target.version)
            return target
        assert last is not None
        raise last

    def _resolve_on(self, hub: HubEntry, uri: FunctionURI) -> Target:
        with self._client(hub) as client:
            index = IndexReader(self.config, client).fetch(uri.namespace, uri.name)
            if index is not None:
                return resolve_from_index(hub, uri, index)
            return bind_resolution(hub, uri, client.resolve(uri.namespace, uri.name, uri.version))

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

    def _usable_offline(self, record: InstallRecord, why: str) -> InstallRecord:
        """An installed record used without asking a hub; an unverified one only with the flag."""
        if record.keyid is None:
            if not self.insecure_skip_verify:
                raise VerificationError(
                    f"{record.ref}@{record.version} was installed without verification "
                    f"(--insecure-skip-verify) and cannot be verified now: {why}",
                    hint=f"verify it with the hub reachable (hub install {record.uri}), or pass "
                         "--insecure-skip-verify to use it unverified")
            self.warn(f"--insecure-skip-verify: using the UNVERIFIED {record.ref}@{record.version}")
        return record

    # -- install --------------------------------------------------------------

    def ensure(self, uri: FunctionURI) -> InstallRecord:
        """The installed function for `uri`, installing it first when needed."""
        with self.session():
            return self._ensure(uri)

    def _ensure(self, uri: FunctionURI) -> InstallRecord:
        if self.config.offline:
            return self._usable_offline(self.resolve_installed(uri), "offline mode is on")
        try:
            target = self.resolve_online(uri)
        except HubUnavailable as exc:
            try:
                record = self.resolve_installed(uri)
            except OfflineError:
                raise exc from None
            self._usable_offline(record, "the hub is unreachable")
            self.warn(f"hub unreachable; using the installed {record.ref}@{record.version}")
            return record
        return self.install_target(target)

    def install_target(self, target: Target) -> InstallRecord:
        if target.yanked:
            self.warn(f"{target.subject} is yanked; installing it because it was pinned exactly")
        store = self.store
        with store.lock(target.subject):
            existing = store.get(target.hub.url, target.namespace, target.name, target.version)
            if (existing and existing.digest == target.digest
                    and store.files_dir(existing).is_dir() and self._reverify(target, existing)):
                if existing.yanked != target.yanked:
                    existing.yanked = target.yanked
                    store.save(existing)
                return existing
            if existing:
                store.remove(existing)
            return self._download_and_unpack(target)

    def _reverify(self, target: Target, record: InstallRecord) -> bool:
        """Whether an installed record may be used as it is. One installed unverified, or signed
        by a key no longer trusted, is verified now (a refusal raises); False when its files
        no longer match its digest, so the caller replaces it."""
        if self.insecure_skip_verify:
            return True
        if record.keyid in self.trust.trusted_ids(target.hub.url, target.namespace):
            return True
        with self._client(target.hub) as client:
            envelopes = client.attestations(target.namespace, target.name, target.version)
            keyid, _image = self._verify(client, target, envelopes)
        if files_digest(self.store.files_dir(record)) != record.digest:
            return False
        record.keyid, record.envelope = keyid, envelopes[0]
        self.store.save(record)
        return True

    def _download_and_unpack(self, target: Target) -> InstallRecord:
        store = self.store
        package = store.package_path(target.digest)
        with self._client(target.hub) as client:
            envelopes = client.attestations(target.namespace, target.name, target.version)
            keyid = None
            if self.insecure_skip_verify:
                self.warn(f"--insecure-skip-verify: installing {target.subject} WITHOUT "
                          "checking its signature")
            else:
                keyid, _image = self._verify(client, target, envelopes)
            if not package.is_file() or digest_file(package) != target.digest:
                client.download_package(target.namespace, target.name, target.version, package,
                                        target.digest)
        record = InstallRecord(
            hub=target.hub.url, namespace=target.namespace, name=target.name,
            version=target.version, digest=target.digest, size=package.stat().st_size,
            yanked=target.yanked, keyid=keyid, envelope=envelopes[0] if envelopes else None,
            installed_at=datetime.now(timezone.utc))
        entry = store.entry_dir(target.hub.url, target.namespace, target.name, target.version)
        shutil.rmtree(entry, ignore_errors=True)  # leftovers of a crash; we hold the lock
        try:
            unpack(package, entry / "files")
        except OSError as exc:
            raise UnsafePackage(f"cannot unpack {target.subject}: {exc.strerror or exc}") from None
        finally:
            if not (entry / "files").is_dir():
                shutil.rmtree(entry, ignore_errors=True)
        store.save(record)
        return record

    # -- verification ---------------------------------------------------------

    def verify(self, uri: FunctionURI) -> dict[str, Any]:
        """Everything install checks, without installing (signature, trust, digests), and the
        installed copy of that version, if any: its files against its recorded digest."""
        with self.session():
            return self._verify_uri(uri)

    def _verify_uri(self, uri: FunctionURI) -> dict[str, Any]:
        target = self.resolve_online(uri)
        with self._client(target.hub) as client:
            keyid, image = self._verify(
                client, target, client.attestations(target.namespace, target.name,
                                                    target.version))
            with tempfile.TemporaryDirectory(prefix="fnhub-verify-") as tmp:
                client.download_package(target.namespace, target.name, target.version,
                                        Path(tmp) / "package.tar.gz", target.digest)
        result: dict[str, Any] = {"function": target.ref, "version": target.version,
                                  "digest": target.digest, "keyid": keyid, "hub": target.hub.url}
        record = self.store.get(target.hub.url, target.namespace, target.name, target.version)
        if record is not None:
            self._check_installed(target, record)
            result["installed"] = str(self.store.files_dir(record))
        return result | ({"image": image} if image else {})

    def _check_installed(self, target: Target, record: InstallRecord) -> None:
        """The installed copy is the hub's signed package, and its files are untouched."""
        if record.digest != target.digest:
            raise DigestMismatch(
                f"the installed {target.subject} has digest {record.digest}, but the hub's "
                f"signed copy has {target.digest}",
                hint=f"reinstall it: hub uninstall {target.ref}:{target.version} && "
                     f"hub install {target.ref}:{target.version}")
        actual = files_digest(self.store.files_dir(record))
        if actual != record.digest:
            raise DigestMismatch(
                f"the installed files of {target.subject} were modified (they pack to "
                f"{actual}, installed {record.digest})",
                hint=f"reinstall it: hub uninstall {target.ref}:{target.version} && "
                     f"hub install {target.ref}:{target.version}")

    def _verify(self, client: HubClient, target: Target,
                envelopes: list[dict]) -> tuple[str, str | None]:
        """Signature, key trust and signed digests; returns the id of the key that signed, and
        the verified image (`REF@DIGEST`) when the statement names one."""
        if not envelopes:
            raise SignatureInvalid(f"{target.subject} has no signed attestation on "
                                   f"{target.hub.url}")
        trusted = self.trust.trusted_keys(target.hub.url, target.namespace,
                                          client.keys(target.namespace), target.listed_keys)
        envelope = parse_envelope(envelopes[0])
        signers = [s.keyid for s in envelope.signatures]
        if not any(keyid in trusted for keyid in signers):
            raise untrusted_key_error(target.namespace, signers[0], target.subject)
        statement = verify_envelope(envelope, trusted)
        check_subjects(statement, target.subject, target.digest)
        image = self._check_image(client, target, statement)
        return next(keyid for keyid in signers if keyid in trusted), image

    def _check_image(self, client: HubClient, target: Target,
                     statement: Statement) -> str | None:
        """When the statement signs an image digest, the registry must serve that manifest
        for the version's image; returns `REF@DIGEST`, or None without an image."""
        package = target.subject
        images = [s for s in statement.subject if s.name != package]
        if not images:
            return None
        from fnhub.images import parse_image_ref, served_digest  # the manifest model, YAML

        signed = DIGEST_PREFIX + images[0].digest.get("sha256", "").lower()
        info = client.version(target.namespace, target.name, target.version).image
        if info is None or not info.ref:
            raise DigestMismatch(f"{package}: the signed statement names image {signed}, but "
                                 f"{target.hub.url} does not say where that image is")
        ref = parse_image_ref(info.ref)
        hub = target.hub
        registry = hub if ref.registry == hub.netloc else self.config.hub_for_host(ref.registry)
        served = served_digest(registry, ref)
        if served != signed:
            raise DigestMismatch(
                f"{package}: image {ref} has manifest digest {served} in its registry, but "
                f"the signed statement names {signed}",
                hint="the image was changed after publishing; do not run it")
        return f"{ref}@{signed}"
