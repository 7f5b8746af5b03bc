"""`hub init`: derive a manifest from a callable's type hints and docstring, without running it.

The source is parsed with `ast`, so initialising a folder never imports (executes) user code.
Inputs take their types from annotations (`Path` and `pd.DataFrame` become artifact types,
`int`, `float`, ... parameters); outputs from a `TypedDict` return annotation, from
`name (type): ...` entries in the docstring's Returns section, or from a single return
annotation. A port whose type cannot be derived is an error that asks for one: a guessed
`str` would only fail at the first run.

Functions that take or return pandas DataFrames get a generated adapter (`FRAMES_FILE`) as
their entrypoint: fnhub's calling convention passes artifacts as paths, so the adapter reads
dataset inputs into DataFrames and writes DataFrame outputs to files, and the function itself
runs unchanged.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fnhub.core.errors import InvalidInput
from fnhub.core.manifest import ARTIFACT_TYPES, Manifest, parse_manifest

_PARAMS = {"str": "str", "int": "int", "float": "float", "bool": "bool", "list": "list",
           "dict": "dict", "List": "list", "Dict": "dict", "Sequence": "list",
           "Mapping": "dict", "tuple": "list", "Tuple": "list"}
_PATH_TYPES = {"Path", "PathLike", "pathlib.Path", "os.PathLike"}
_FRAME_TYPES = {"DataFrame", "pd.DataFrame", "pandas.DataFrame"}
_ARTIFACT_HINTS = (("model", "model"), ("metric", "metrics"), ("dir", "dir"), ("folder", "dir"),
                   ("data", "dataset"), ("table", "dataset"), ("csv", "dataset"))
_DOC_LINE = re.compile(r"^\s*(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
FRAMES_FILE = "fnhub_frames.py"
_TYPE_HELP = ("str, int, float, bool, list, dict, Path or pd.DataFrame (or, in a docstring, "
              "one of dataset, model, file, dir, metrics)")


@dataclass
class Derived:
    """What `hub init --from-code` writes: the manifest, and the adapter when one is needed."""

    manifest: Manifest
    files: dict[str, str] = field(default_factory=dict)  # name in the folder -> text


def _base(text: str) -> str:
    """`Optional[X]`, `X | None` and `typing.X[...]` to `X`."""
    text = text.strip().removeprefix("typing.")
    if text.startswith(("Optional[", "Union[")):
        text = text.split("[", 1)[1].rsplit("]", 1)[0].split(",")[0]
    parts = [p.strip() for p in text.split("|") if p.strip() != "None"]
    return (parts[0] if parts else "None").split("[")[0].strip().removeprefix("typing.")


def _port_type(text: str, name: str) -> tuple[str, bool] | None:
    """(manifest type, is a DataFrame) for a type's text, or None when it has no fnhub type."""
    base = _base(text)
    if base in _PATH_TYPES:
        return next((t for hint, t in _ARTIFACT_HINTS if hint in name.lower()), "file"), False
    if base in _FRAME_TYPES:
        return "dataset", True
    if base in _PARAMS:
        return _PARAMS[base], False
    if base in ARTIFACT_TYPES:  # a docstring's `name (dataset): ...`
        return base, False
    return None


def _doc_sections(doc: str) -> dict[str, dict[str, tuple[str | None, str]]]:
    """Google-style `Args:` / `Returns:` entries: name -> (type, description)."""
    sections: dict[str, dict[str, tuple[str | None, str]]] = {}
    current: str | None = None
    for line in doc.splitlines():
        header = line.strip().rstrip(":").lower()
        if line.strip().endswith(":") and header in ("args", "arguments", "parameters",
                                                     "returns", "outputs"):
            current = "returns" if header in ("returns", "outputs") else "args"
            continue
        if current and (match := _DOC_LINE.match(line)):
            sections.setdefault(current, {})[match[1]] = (match[2], match[3].strip())
    return sections


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise InvalidInput(f"default {ast.unparse(node)!r} is not a literal value") from None


def _source_file(folder: Path, file_part: str, cwd: Path) -> Path:
    """FILE as given (relative to the current folder, or absolute), inside the function folder."""
    path = Path(file_part) if Path(file_part).is_absolute() else cwd / file_part
    if not path.is_file():
        inside = folder / file_part
        hint = (f"paths are relative to the current folder: {inside}?"
                if inside.is_file() and not Path(file_part).is_absolute() else None)
        raise InvalidInput(f"--from-code: {path} does not exist", hint=hint)
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        raise InvalidInput(f"--from-code: {path} is not inside the function folder {folder}",
                           hint="the code must be packaged with the function") from None
    return path


def _typed_dict_fields(tree: ast.Module, name: str) -> dict[str, str] | None:
    """The fields of a TypedDict class named `name` in the same file (name -> annotation)."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name and any(
                ast.unparse(b).split(".")[-1] == "TypedDict" for b in node.bases):
            return {s.target.id: ast.unparse(s.annotation) for s in node.body
                    if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}
    return None


def _inputs(func: ast.FunctionDef | ast.AsyncFunctionDef, docs: dict[str, tuple[str | None, str]]
            ) -> tuple[list[dict[str, Any]], list[str]]:
    args = func.args.args
    defaults = dict(zip([a.arg for a in args[len(args) - len(func.args.defaults):]],
                        func.args.defaults, strict=True))
    inputs, frames = [], []
    for arg in args:
        doc_type, description = docs.get(arg.arg, (None, ""))
        text = ast.unparse(arg.annotation) if arg.annotation is not None else doc_type
        derived = _port_type(text, arg.arg) if text else None
        if derived is None and text is None and arg.arg in defaults:
            default = _literal(defaults[arg.arg])
            derived = _port_type(type(default).__name__, arg.arg) if default is not None else None
        if derived is None:
            raise InvalidInput(
                f"cannot tell the type of input {arg.arg!r}"
                + (f" from {text!r}" if text else " (no annotation)"),
                hint=f"annotate it with one of: {_TYPE_HELP}")
        port: dict[str, Any] = {"name": arg.arg, "type": derived[0], "description": description}
        if arg.arg in defaults:
            port["default"] = _literal(defaults[arg.arg])
        inputs.append(port)
        if derived[1]:
            frames.append(arg.arg)
    return inputs, frames


def _outputs(tree: ast.Module, func: ast.FunctionDef | ast.AsyncFunctionDef,
             docs: dict[str, tuple[str | None, str]]) -> tuple[list[dict[str, Any]], list[str]]:
    returns = ast.unparse(func.returns) if func.returns is not None else None
    fields = _typed_dict_fields(tree, _base(returns)) if returns else None
    if fields is None and docs:
        fields = {name: doc_type or "" for name, (doc_type, _) in docs.items()}
    elif fields is None and returns not in (None, "None"):
        if _base(returns) in ("dict", "Dict", "Mapping"):
            raise InvalidInput(f"cannot tell the outputs of {func.name} from `-> {returns}`",
                               hint="return a TypedDict, or list each output as `name (type): "
                                    "...` under Returns: in the docstring")
        fields = {"result": returns}
    outputs, frames = [], []
    for name, text in (fields or {}).items():
        derived = _port_type(text, name) if text else None
        if derived is None:
            raise InvalidInput(f"cannot tell the type of output {name!r}"
                               + (f" from {text!r}" if text else ""),
                               hint=f"give it one of: {_TYPE_HELP}, e.g. `{name} (dataset): ...`"
                                    " under Returns: in the docstring")
        outputs.append({"name": name, "type": derived[0],
                        "description": docs.get(name, (None, ""))[1]})
        if derived[1]:
            frames.append(name)
    return outputs, frames


def manifest_from_code(folder: Path, target: str, name: str, namespace: str, *,
                       cwd: Path | None = None) -> Derived:
    """The manifest for FILE:CALLABLE (FILE relative to `cwd`, inside `folder`)."""
    file_part, sep, func_name = target.rpartition(":")
    if not sep or not file_part.endswith(".py") or not func_name:
        raise InvalidInput(f"--from-code {target!r}: expected FILE.py:CALLABLE")
    path = _source_file(folder, file_part, cwd or Path.cwd())
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except SyntaxError as exc:
        raise InvalidInput(f"{path}:{exc.lineno}: {exc.msg}") from None
    func = next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and n.name == func_name), None)
    if func is None:
        raise InvalidInput(f"{path} has no top-level function {func_name!r}")
    doc = ast.get_docstring(func) or ""
    sections = _doc_sections(doc)
    inputs, frames_in = _inputs(func, sections.get("args", {}))
    outputs, frames_out = _outputs(tree, func, sections.get("returns", {}))
    source = path.resolve().relative_to(folder.resolve()).as_posix()
    spec: dict[str, Any] = {"kind": "job", "entrypoint": f"{source}:{func_name}",
                            "inputs": inputs, "outputs": outputs}
    files = {}
    if frames_in or frames_out:
        spec["entrypoint"] = f"{FRAMES_FILE}:main"
        spec["requirements"] = ["pandas>=2.0"]
        files[FRAMES_FILE] = _frames_adapter(source, func_name, frames_in, frames_out,
                                             [o["name"] for o in outputs])
    summary = doc.strip().splitlines()[0] if doc.strip() else ""
    manifest = parse_manifest({
        "apiVersion": "fnhub/v1", "kind": "Function",
        "metadata": {"name": name, "namespace": namespace, "version": "0.1.0",
                     "description": summary},
        "spec": spec,
    }, source=target)
    return Derived(manifest, files)


def _frames_adapter(source: str, func_name: str, frames_in: list[str],
                    frames_out: list[str], outputs: list[str]) -> str:
    return f'''"""Generated by `hub init --from-code`: runs {source}:{func_name} unchanged under
fnhub's calling convention. Dataset inputs arrive as file paths and are read into pandas
DataFrames; DataFrame outputs are written as CSV files into the run's output folder."""

import importlib.util
import os
import tempfile
from pathlib import Path

import pandas as pd

FRAMES_IN = {frames_in!r}
FRAMES_OUT = {frames_out!r}
OUTPUTS = {outputs!r}

_spec = importlib.util.spec_from_file_location(
    "_fnhub_user_code", Path(__file__).resolve().parent / {source!r})
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
target = _module.{func_name}


def _read(path):
    path = Path(path)
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def _write(name, frame):
    out_dir = Path(os.environ.get("FNHUB_OUTPUT_DIR") or tempfile.mkdtemp())
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{{name}}.csv"
    frame.to_csv(path, index=False)
    return path


def main(**inputs):
    for name in FRAMES_IN:
        if inputs.get(name) is not None:
            inputs[name] = _read(inputs[name])
    result = target(**inputs)
    if len(OUTPUTS) == 1 and not (isinstance(result, dict) and set(result) == set(OUTPUTS)):
        result = {{OUTPUTS[0]: result}}
    if isinstance(result, dict):
        result = {{k: _write(k, v) if k in FRAMES_OUT else v for k, v in result.items()}}
    return result
'''


def starter_manifest(folder: Path, name: str, namespace: str) -> Manifest:
    """A minimal manifest pointing at the folder's only Python file, if it has exactly one."""
    sources = sorted(p.name for p in folder.glob("*.py") if not p.name.startswith("test_"))
    entry = f"{sources[0]}:main" if len(sources) == 1 else "main.py:main"
    return parse_manifest({
        "apiVersion": "fnhub/v1", "kind": "Function",
        "metadata": {"name": name, "namespace": namespace, "version": "0.1.0"},
        "spec": {"kind": "job", "entrypoint": entry},
    }, source=str(folder))
