"""The local store under FNHUB_HOME: cached packages and unpacked installs.

Layout (documented because users and tools read it):

    <home>/packages/sha256/<hex>.tar.gz                    verified package archives
    <home>/functions/<hub>/<ns>/<name>/<version>/record.json  what was installed, from where
    <home>/functions/<hub>/<ns>/<name>/<version>/files/       the unpacked function folder
    <home>/index/<hub>/<ns>/<name>.json                     its last verified signed index
    <home>/locks/                                           one lock file per entry
    <home>/runs/<run-id>/                                   run folders (inputs, outputs, run.json)
    <home>/venvs/<requirements-hash>/                       cached venvs for `--env venv`

Every entry is written to a temporary name and renamed into place, so a crash never leaves a
half-installed function that looks complete: an install exists when its record.json exists.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from filelock import FileLock
from pydantic import BaseModel, ValidationError

from fnhub.core.files import write_atomic


class InstallRecord(BaseModel):
    hub: str
    namespace: str
    name: str
    version: str
    digest: str
    size: int
    yanked: bool = False
    keyid: str | None = None  # None when installed unverified (--insecure-skip-verify)
    envelope: dict[str, Any] | None = None
    installed_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def uri(self) -> str:
        return f"hub://{urlsplit(self.hub).netloc}/{self.ref}:{self.version}@{self.digest}"


class Store:
    def __init__(self, home: Path) -> None:
        self.home = home

    @staticmethod
    def _hub_key(hub_url: str) -> str:
        return urlsplit(hub_url).netloc.replace(":", "_") or "local"

    def package_path(self, digest: str) -> Path:
        return self.home / "packages" / "sha256" / f"{digest.removeprefix('sha256:')}.tar.gz"

    def entry_dir(self, hub_url: str, ns: str, name: str, version: str) -> Path:
        return self.home / "functions" / self._hub_key(hub_url) / ns / name / version

    def index_path(self, hub_url: str, ns: str, name: str) -> Path:
        return self.home / "index" / self._hub_key(hub_url) / ns / f"{name}.json"

    def files_dir(self, record: InstallRecord) -> Path:
        return self.entry_dir(record.hub, record.namespace, record.name, record.version) / "files"

    def lock(self, key: str) -> FileLock:
        path = self.home / "locks" / (key.replace("/", "_") + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(path))

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def venvs_dir(self) -> Path:
        return self.home / "venvs"

    def records(self, ns: str | None = None, name: str | None = None) -> list[InstallRecord]:
        pattern = f"*/{ns or '*'}/{name or '*'}/*/record.json"
        out = []
        for path in sorted((self.home / "functions").glob(pattern)):
            try:
                out.append(InstallRecord.model_validate_json(path.read_bytes()))
            except (OSError, ValidationError):
                continue  # a damaged record is treated as not installed
        return out

    def get(self, hub_url: str, ns: str, name: str, version: str) -> InstallRecord | None:
        path = self.entry_dir(hub_url, ns, name, version) / "record.json"
        try:
            return InstallRecord.model_validate_json(path.read_bytes())
        except (OSError, ValidationError):
            return None

    def save(self, record: InstallRecord) -> None:
        entry = self.entry_dir(record.hub, record.namespace, record.name, record.version)
        write_atomic(entry / "record.json", record.model_dump_json(indent=2).encode())

    def remove(self, record: InstallRecord) -> None:
        """Drop the record first (the install stops existing), then its files."""
        entry = self.entry_dir(record.hub, record.namespace, record.name, record.version)
        (entry / "record.json").unlink(missing_ok=True)
        shutil.rmtree(entry, ignore_errors=True)
        if not any(r.digest == record.digest for r in self.records()):
            self.package_path(record.digest).unlink(missing_ok=True)
