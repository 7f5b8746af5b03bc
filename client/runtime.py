"""Call a function by its calling convention (design §3). Standard library only.

The same code runs a function in-process, in a venv (`python runtime.py REQUEST RESULT`, where
fnhub itself is not installed), as a pipeline step and in a container (`python -m fnhub.runtime`),
so it imports nothing outside the standard library. It has two command-line forms:

    python -m fnhub.runtime REQUEST.json RESULT.json

REQUEST is JSON: {"folder", "entrypoint", "inputs": {name: value}, "artifacts": [names whose
value is a path], "outputs": [{"name", "type"}], "output_dir"}. RESULT receives
{"ok": true, "outputs": {name: {"value": v} | {"path": p}}} or {"ok": false, "error", "traceback"}.
Paths go to the function exactly as given (the local engines and `hub run` use this form).

    python -m fnhub.runtime --function-dir DIR --entrypoint FILE:CALLABLE
        [--param NAME=JSON]... [--text NAME=TEXT]... [--artifact NAME[:TYPE]=PATH]...
        [--output NAME:TYPE[=PATH[/]]]... [--output-dir DIR] [--result RESULT.json]

The flag form is for containers (Kubeflow Pipelines, Argo), whose placeholders fill single
arguments. `--param` takes a JSON value (`3`, `true`, `[1, 2]`, `"iris"`); `--text` takes a
string as is (KFP substitutes string parameters unquoted); `--artifact` passes an input artifact's
path. `--output` declares the outputs in the manifest's order; with `=PATH` the output is also
written to PATH after the call, where workflow engines collect it: an artifact is copied there (a
file, or a folder tree), a parameter is written as text (a string as is, anything else as JSON).
`--output-dir` is `fnhub.context().output_dir` (by default a new temporary folder, removed at
the end when every artifact output has a `=PATH`); `--result`
receives the RESULT JSON above. The exit code is 0 on success, 1 when the function failed and 2
for a malformed command line.

Artifact folders. Workflow engines name an artifact's path after the artifact (KFP's
`/gcs/.../dataset`, Argo's `/tmp/.../dataset`), so a file stored there loses its own name, and
with it the suffix (`.csv`, `.parquet`) by which functions choose a reader. The flag form keeps
names by storing each artifact as a folder:

- `--output NAME:TYPE=PATH/` (PATH ending in `/`, TYPE an artifact type) makes PATH a folder
  (created if missing) holding the produced file, or folder, under its own name
  (`PATH/iris.csv`); for a `dir` output, PATH holds the produced folder's contents. A parameter
  output cannot take the folder form: engines read it from a file.
- `--artifact NAME:TYPE=PATH` with TYPE other than `dir`: when PATH is a folder holding exactly
  one entry, the function gets that entry (`PATH/iris.csv`, or a model folder); otherwise PATH
  as is. A `dir` input, and the untyped `--artifact NAME=PATH`, get PATH as is (the runtime
  cannot tell which folders stand for one artifact without the type).

So `--output` and `--artifact` without these marks keep their plain meaning, and an artifact
given from outside a pipeline (an importer's URI, a workflow argument) works either as the file
itself under a name with its suffix, or as a folder holding it under that name.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import itertools
import json
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ARTIFACT_TYPES = ("dataset", "model", "file", "dir", "metrics")
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "float": (float, int), "bool": (bool,),
    "list": (list, tuple), "dict": (dict,),
}


@dataclass(frozen=True)
class Context:
    """What a running function may ask of its runner."""

    output_dir: Path


def context() -> Context:
    """`fnhub.context()`: where to write artifact outputs in this run."""
    configured = os.environ.get("FNHUB_OUTPUT_DIR")
    output_dir = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="fnhub-out-"))
    output_dir.mkdir(parents=True, exist_ok=True)
    return Context(output_dir)


class OutputError(Exception):
    """The function returned something its manifest does not promise."""


@contextmanager
def _on_path(folder: Path) -> Iterator[None]:
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        if str(folder) in sys.path:
            sys.path.remove(str(folder))


def load_callable(folder: Path, entrypoint: str) -> Callable[..., Any]:
    target, _, attr = entrypoint.partition(":")
    with _on_path(folder):
        if target.endswith(".py"):
            path = folder / target
            module_name = f"_fnhub_fn_{abs(hash(str(path)))}"
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None or not path.is_file():
                raise FileNotFoundError(f"entrypoint file {target!r} not found in {folder}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"entrypoint {entrypoint!r} is not callable")
    return obj


def _plain(value: Any) -> Any:
    """numpy/pandas scalars and arrays to plain JSON values."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return value.tolist()
    if hasattr(value, "item") and not isinstance(value, (str, bytes, list, dict)):
        return value.item()
    return value


def value_matches(kind: str, value: Any) -> bool:
    """Whether a plain value fits a parameter type (None fits any: the value is optional)."""
    if value is None:
        return True
    return isinstance(value, _PYTHON_TYPES[kind]) and (kind == "bool"
                                                       or not isinstance(value, bool))


def encode_outputs(result: Any, outputs: list[dict[str, str]]) -> dict[str, dict[str, Any]]:
    """Check a function's return value against its declared outputs."""
    names = [o["name"] for o in outputs]
    if not outputs:
        return {}
    if len(outputs) == 1 and not (isinstance(result, dict) and set(result) == {names[0]}):
        result = {names[0]: result}
    if not isinstance(result, dict):
        raise OutputError(f"returned {type(result).__name__}; expected a dict with keys {names}")
    unknown = sorted(set(result) - set(names))
    missing = [n for n in names if n not in result]
    if unknown or missing:
        raise OutputError(f"outputs do not match the manifest: missing {missing}, "
                          f"unknown {unknown}")
    encoded: dict[str, dict[str, Any]] = {}
    for spec in outputs:
        name, kind, value = spec["name"], spec["type"], result[spec["name"]]
        if kind in ARTIFACT_TYPES:
            if not isinstance(value, (str, os.PathLike)) or not Path(value).exists():
                raise OutputError(f"output {name!r} ({kind}) must be a path the function wrote, "
                                  f"got {value!r}")
            encoded[name] = {"path": str(Path(value).resolve())}
            continue
        value = _plain(value)
        if not value_matches(kind, value):
            raise OutputError(f"output {name!r} should be {kind}, got {type(value).__name__}")
        encoded[name] = {"value": list(value) if isinstance(value, tuple) else value}
    return encoded


def call(request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    folder = Path(request["folder"])
    kwargs = dict(request["inputs"])
    for name in request.get("artifacts", []):
        if kwargs.get(name) is not None:
            kwargs[name] = Path(kwargs[name])
    fn = load_callable(folder, request["entrypoint"])
    return encode_outputs(fn(**kwargs), request["outputs"])


def _pair(parser: argparse.ArgumentParser, text: str, flag: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        parser.error(f"{flag} {text!r}: expected NAME=VALUE")
    return name, value


@dataclass(frozen=True)
class Target:
    """Where `--output NAME:TYPE=PATH` writes an output of type `kind`; `folder`: PATH ended
    in `/` (the artifact folder form)."""

    path: Path
    kind: str
    folder: bool


def artifact_input(kind: str | None, path: str) -> str:
    """The path a function gets for `--artifact NAME[:TYPE]=PATH` ("Artifact folders" in the
    module docstring): a typed non-`dir` artifact's folder of one entry is that entry."""
    folder = Path(path)
    if kind is None or kind == "dir" or not folder.is_dir():
        return path
    with os.scandir(folder) as entries:
        first = list(itertools.islice(entries, 2))
    return str(folder / first[0].name) if len(first) == 1 else path


def _parse_flags(args: list[str]
                 ) -> tuple[dict[str, Any], Path | None, dict[str, Target], Path | None]:
    """The flag form as (request, result file, {output name: where to write it}, the
    temporary output dir to remove at the end, if any)."""
    parser = argparse.ArgumentParser(prog="python -m fnhub.runtime",
                                     description="Call an fnhub function (see the docstring).")
    parser.add_argument("--function-dir", required=True, type=Path)
    parser.add_argument("--entrypoint", required=True, help="FILE:CALLABLE")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=JSON")
    parser.add_argument("--text", action="append", default=[], metavar="NAME=TEXT")
    parser.add_argument("--artifact", action="append", default=[], metavar="NAME[:TYPE]=PATH")
    parser.add_argument("--output", action="append", default=[], metavar="NAME:TYPE[=PATH[/]]")
    parser.add_argument("--output-dir", type=Path)
    parser.add_argument("--result", type=Path)
    ns = parser.parse_args(args)
    inputs: dict[str, Any] = {}
    for item in ns.param:
        name, text = _pair(parser, item, "--param")
        try:
            inputs[name] = json.loads(text)
        except json.JSONDecodeError:
            parser.error(f"--param {name}: {text!r} is not JSON (use --text for strings)")
    for item in ns.text:
        name, text = _pair(parser, item, "--text")
        inputs[name] = text
    artifacts = []
    for item in ns.artifact:
        declared, text = _pair(parser, item, "--artifact")
        name, colon, kind = declared.partition(":")
        if colon and (not name or kind not in ARTIFACT_TYPES):
            parser.error(f"--artifact {item!r}: expected NAME[:TYPE]=PATH with TYPE one of "
                         f"{', '.join(ARTIFACT_TYPES)}")
        inputs[name] = artifact_input(kind or None, text)
        artifacts.append(name)
    outputs, targets = [], {}
    for item in ns.output:
        declared, _, target = item.partition("=")
        name, colon, kind = declared.partition(":")
        if not colon or not name or kind not in (*_PYTHON_TYPES, *ARTIFACT_TYPES):
            parser.error(f"--output {item!r}: expected NAME:TYPE[=PATH] with a known type")
        folder = target.endswith("/")
        if folder and kind not in ARTIFACT_TYPES:
            parser.error(f"--output {item!r}: {kind} is a parameter, written to a file; "
                         "only artifacts take the folder form PATH/")
        outputs.append({"name": name, "type": kind})
        if target:
            targets[name] = Target(Path(target), kind, folder)
    output_dir = ns.output_dir or Path(tempfile.mkdtemp(prefix="fnhub-out-"))
    output_dir.mkdir(parents=True, exist_ok=True)
    request = {"folder": str(ns.function_dir.resolve()), "entrypoint": ns.entrypoint,
               "inputs": inputs, "artifacts": artifacts, "outputs": outputs,
               "output_dir": str(output_dir.resolve())}
    # a temporary output dir whose artifacts all go to targets is scratch, removed at the end
    scratch = ns.output_dir is None and all(
        o["name"] in targets for o in outputs if o["type"] in ARTIFACT_TYPES)
    return request, ns.result, targets, output_dir if scratch else None


def _copy(source: Path, dest: Path) -> None:
    """A file (atomically: a temporary name, then renamed) or a folder tree to `dest`."""
    if source == dest.resolve():
        return
    if source.is_dir():
        shutil.copytree(source, dest, dirs_exist_ok=True)
        return
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        shutil.copy2(source, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _write_outputs(encoded: dict[str, dict[str, Any]], targets: dict[str, Target]) -> None:
    """Put each output where a workflow engine collects it; artifacts then point there."""
    for name, target in targets.items():
        item, path = encoded[name], target.path
        if "value" in item:
            path.parent.mkdir(parents=True, exist_ok=True)
            value = item["value"]
            path.write_text(value if isinstance(value, str) else json.dumps(value))
            continue
        source = Path(item["path"])
        dest = path
        if target.folder:
            if path.exists() and not path.is_dir():
                raise OutputError(f"output {name!r}: {path} is a file, but the folder form "
                                  f"({path}/) needs a folder there")
            path.mkdir(parents=True, exist_ok=True)
            if target.kind != "dir":
                dest = path / source.name
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        _copy(source, dest)
        item["path"] = str(dest.resolve())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    targets: dict[str, Target] = {}
    scratch = None
    if args and args[0].startswith("--"):
        request, result_file, targets, scratch = _parse_flags(args)
    elif len(args) == 2:
        request, result_file = json.loads(Path(args[0]).read_text()), Path(args[1])
    else:
        print("usage: python -m fnhub.runtime REQUEST.json RESULT.json\n"
              "       python -m fnhub.runtime --function-dir DIR --entrypoint FILE:CALLABLE "
              "[...] (see --help)", file=sys.stderr)
        return 2
    os.environ["FNHUB_OUTPUT_DIR"] = request["output_dir"]
    try:
        outputs = call(request)
        _write_outputs(outputs, targets)
        result: dict[str, Any] = {"ok": True, "outputs": outputs}
    except BaseException as exc:  # the parent reports it; the child must always answer
        traceback.print_exc()
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc()}
    if result_file is not None:
        result_file.write_text(json.dumps(result, default=str))
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
