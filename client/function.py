"""`fnhub.import_function`: a hub function (or a local folder) as a Python callable."""

from __future__ import annotations

import html
import inspect
import io
import keyword
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console
from rich.table import Table

from fnhub.config import Config, load_config
from fnhub.core.errors import DigestMismatch
from fnhub.core.manifest import Manifest, Port, load_manifest
from fnhub.core.uri import is_local_ref, local_path, parse_uri
from fnhub.envs import Env
from fnhub.frames import outputs_as_frames
from fnhub.images import ContainerImage, recorded_image
from fnhub.install import Installer, Warn, default_warn, files_digest
from fnhub.runner import RunResult, make_env, run_function
from fnhub.store import InstallRecord, Store

_PARAMETER_ANNOTATIONS: dict[str, Any] = {
    "str": str, "int": int, "float": float, "bool": bool, "list": list, "dict": dict}


def _annotation(port: Port) -> Any:
    """The Python type a caller passes for `port` (a dataset also takes a DataFrame)."""
    optional = not port.required and port.default is None
    if port.type == "dataset":
        return "str | os.PathLike | pandas.DataFrame" + (" | None" if optional else "")
    base = str | os.PathLike if port.is_artifact else _PARAMETER_ANNOTATIONS[port.type]
    return base | None if optional else base


def signature(manifest: Manifest) -> inspect.Signature:
    """`Function.__call__` as the manifest declares it: one keyword argument per input, with
    its default and type, then `as_frames`; what help() and autocompletion show."""
    kw = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter(p.name, kw, annotation=_annotation(p),
                                default=inspect.Parameter.empty if p.required else p.default)
              for p in manifest.spec.inputs if not keyword.iskeyword(p.name)]
    if len(params) < len(manifest.spec.inputs):  # an input named like `class`: only via **
        params.append(inspect.Parameter("inputs", inspect.Parameter.VAR_KEYWORD))
    elif manifest.input("as_frames") is None:
        params.append(inspect.Parameter("as_frames", kw, default=False, annotation=bool))
    return inspect.Signature(params, return_annotation=dict[str, Any])


def _describe_ports(manifest: Manifest) -> str:
    """The inputs and outputs as docstring text, for help() and IPython's `fn?`."""
    lines = [manifest.metadata.description or manifest.ref, "", "Inputs:"]
    for port in manifest.spec.inputs:
        default = "" if port.required else f", default {port.default!r}"
        lines.append(f"    {port.name} ({port.type}{default}): {port.description}".rstrip())
    lines.append("Outputs:")
    lines += [f"    {p.name} ({p.type}): {p.description}".rstrip() for p in manifest.spec.outputs]
    return "\n".join(lines)


def _ports_html(manifest: Manifest) -> str:
    """The inputs/outputs table as HTML; every manifest text is escaped."""
    rows = []
    for direction, ports in (("in", manifest.spec.inputs), ("out", manifest.spec.outputs)):
        for port in ports:
            default = "" if direction == "out" else \
                "(required)" if port.required else repr(port.default)
            cells = (direction, port.name, port.type, default, port.description)
            rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
                        + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("", "name", "type", "default", "description"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


class FunctionDoc(str):
    """The inputs/outputs table: `print()`s as text, shows as HTML in a notebook, and as text
    (not a quoted string) in a REPL, so `fn.doc()` shows it once wherever it is called."""

    html: str

    def __new__(cls, text: str, html_table: str) -> FunctionDoc:
        doc = super().__new__(cls, text)
        doc.html = html_table
        return doc

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return self.html


def verify_installed(folder: Path, record: InstallRecord) -> None:
    """An installed item's files still pack to the digest that was verified at install."""
    actual = files_digest(folder)
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

    def __post_init__(self) -> None:
        # per instance: each function has its own inputs (inspect.signature reads this first)
        self.__signature__ = signature(self.manifest)
        self.__doc__ = _describe_ports(self.manifest)

    def __repr__(self) -> str:
        return f"<Function {self.manifest.ref} from {self.source}>"

    def _repr_html_(self) -> str:
        """A card for notebooks: name, version, description, source and the ports table."""
        meta = self.manifest.metadata
        return (f'<div class="fnhub-function"><strong>{html.escape(meta.namespace)}/'
                f"{html.escape(meta.name)}</strong> <code>{html.escape(meta.version)}</code>"
                f"<p>{html.escape(meta.description)}</p>"
                f"<p><small>from {html.escape(self.source)}</small></p>"
                f"{_ports_html(self.manifest)}</div>")

    def __call__(self, *, as_frames: bool = False, **inputs: Any) -> dict[str, Any]:
        """Run in this interpreter and return the outputs (artifacts as paths).

        A dataset input also takes a pandas DataFrame; `as_frames=True` returns the dataset
        outputs as DataFrames. `fn.run(...)` gives the run folder and other environments."""
        return self.run(as_frames=as_frames, **inputs).outputs

    def run(self, *, env: str | Env = "current", out_dir: str | Path | None = None,
            as_frames: bool = False, **inputs: Any) -> RunResult:
        """Run with `inputs`; artifact inputs are paths (a dataset also takes a DataFrame).
        Returns outputs and the run folder; `as_frames=True` reads dataset outputs as frames.

        `env`: "current" (this interpreter), "venv" (a cached venv with the requirements),
        "container" (the function's published image, through DOCKER_HOST's engine), or an
        `fnhub.envs.Env`."""
        self.verify_files()
        store = Store(self.config.home)
        if not isinstance(env, Env):
            env = make_env(env, venvs_dir=store.venvs_dir, manifest=self.manifest,
                           image=self.image)
        result = run_function(self.folder, self.manifest, inputs, env=env,
                              runs_dir=store.runs_dir,
                              out_dir=Path(out_dir) if out_dir else None, source=self.source)
        if as_frames:
            result.outputs = outputs_as_frames(self.manifest, result.outputs)
        return result

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

    def doc(self) -> FunctionDoc:
        """The inputs/outputs table; a notebook or REPL shows it (once) without `print`."""
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
        return FunctionDoc(buffer.getvalue(), _ports_html(self.manifest))


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
