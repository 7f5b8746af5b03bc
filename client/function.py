"""`fnhub.import_function`: a hub function (or a local folder) as a Python callable."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console
from rich.table import Table

from fnhub.config import Config, load_config
from fnhub.core.errors import DigestMismatch
from fnhub.core.manifest import Manifest, load_manifest
from fnhub.core.packaging import pack
from fnhub.core.uri import is_local_ref, local_path, parse_uri
from fnhub.images import ContainerImage, recorded_image
from fnhub.install import Installer, Warn, default_warn
from fnhub.runner import RunResult, run_function
from fnhub.store import InstallRecord, Store


class _Discard(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(data)


def folder_digest(folder: Path) -> str:
    """The digest the folder packs to, without writing the package anywhere."""
    return pack(folder, _Discard()).digest


def verify_installed(folder: Path, record: InstallRecord) -> None:
    """An installed item's files still pack to the digest that was verified at install."""
    actual = folder_digest(folder)
    if actual != record.digest:
        raise DigestMismatch(
            f"the installed files of {record.ref}@{record.version} were modified "
            f"(digest {actual}, installed {record.digest})",
            hint=f"reinstall it: hub uninstall {record.ref}:{record.version} && "
                 f"hub install {record.ref}:{record.version}")


@dataclass
class Function:
    """A runnable function: its manifest, its folder, and where it came from."""

    manifest: Manifest
    folder: Path
    source: str
    config: Config
    record: InstallRecord | None = None

    @property
    def name(self) -> str:
        return self.manifest.metadata.name

    @property
    def version(self) -> str:
        return self.manifest.metadata.version

    def __repr__(self) -> str:
        return f"<Function {self.manifest.ref} from {self.source}>"

    def __call__(self, **inputs: Any) -> dict[str, Any]:
        return self.run(**inputs).outputs

    def run(self, *, env: str = "current", out_dir: str | Path | None = None,
            **inputs: Any) -> RunResult:
        """Run with `inputs`; artifact inputs are paths. Returns outputs and the run folder.

        `env`: "current" (this interpreter), "venv" (a cached venv with the requirements) or
        "container" (the function's published image, through DOCKER_HOST's engine)."""
        self.verify_files()
        store = Store(self.config.home)
        return run_function(
            self.folder, self.manifest, inputs, env=env, runs_dir=store.runs_dir,
            venvs_dir=store.venvs_dir, out_dir=Path(out_dir) if out_dir else None,
            source=self.source, image=self.image() if env == "container" else None)

    def image(self) -> ContainerImage | None:
        """The image the manifest records, pinned by digest (installed, it was verified against
        the signed statement), with the hub entry whose token pulls it; None without one."""
        name = recorded_image(self.manifest, urlsplit(self.record.hub).netloc
                              if self.record else None)
        if name is None:
            return None
        return ContainerImage(name, self.config.hub_for_host(name.partition("/")[0]))

    def verify_files(self) -> None:
        """An installed function's files still pack to the digest that was verified at install."""
        if self.record is not None:
            verify_installed(self.folder, self.record)

    def doc(self, *, file: Any = None) -> str:
        """Print and return the inputs/outputs table."""
        table = Table(title=f"{self.manifest.ref} — {self.manifest.metadata.description}")
        for column in ("", "name", "type", "default", "description"):
            table.add_column(column)
        for port in self.manifest.spec.inputs:
            default = "(required)" if port.required else repr(port.default)
            table.add_row("in", port.name, port.type, default, port.description)
        for port in self.manifest.spec.outputs:
            table.add_row("out", port.name, port.type, "", port.description)
        buffer = io.StringIO()
        Console(file=buffer, width=120).print(table)
        text = buffer.getvalue()
        Console(file=file).print(table)
        return text


def import_function(uri: str, *, insecure_skip_verify: bool = False, warn: Warn | None = None,
                    config: Config | None = None) -> Function:
    """Resolve, install (verified) and load a function: `hub://describe:^1.2` or `./my_fn`."""
    config = config or load_config()
    if is_local_ref(uri):
        folder = local_path(uri)
        return Function(load_manifest(folder), folder, str(folder), config)
    installer = Installer(config, insecure_skip_verify=insecure_skip_verify,
                          warn=warn or default_warn)
    record = installer.ensure(parse_uri(uri))
    folder = installer.store.files_dir(record)
    return Function(load_manifest(folder), folder, record.uri, config, record)
