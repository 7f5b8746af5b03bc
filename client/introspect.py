"""`hub init`: derive a manifest from a callable's type hints and docstring, without running it.

The source is parsed with `ast`, so initialising a folder never imports (executes) user code.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from fnhub.core.errors import InvalidInput
from fnhub.core.manifest import Manifest, parse_manifest

_SIMPLE = {"str": "str", "int": "int", "float": "float", "bool": "bool", "list": "list",
           "dict": "dict", "List": "list", "Dict": "dict", "Sequence": "list",
           "Mapping": "dict", "tuple": "list"}
_PATH_TYPES = {"Path", "PathLike", "pathlib.Path", "os.PathLike"}
_ARTIFACT_HINTS = (("model", "model"), ("metric", "metrics"), ("dir", "dir"), ("folder", "dir"),
                   ("data", "dataset"), ("table", "dataset"), ("csv", "dataset"))
_DOC_LINE = re.compile(r"^\s*(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")


def _port_type(annotation: ast.expr | None, name: str) -> str:
    if annotation is None:
        return "str"
    text = ast.unparse(annotation)
    base = text.split("[")[0].split("|")[0].strip().removeprefix("typing.")
    if base in ("Optional", "Union"):
        inner = text.split("[", 1)[1].rsplit("]", 1)[0].split(",")[0]
        base = inner.split("[")[0].strip()
    if base in _PATH_TYPES:
        return next((t for hint, t in _ARTIFACT_HINTS if hint in name.lower()), "file")
    return _SIMPLE.get(base, "str")


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


def manifest_from_code(folder: Path, target: str, name: str, namespace: str) -> Manifest:
    file_part, sep, func_name = target.partition(":")
    path = folder / file_part
    if not sep or not file_part.endswith(".py") or not func_name:
        raise InvalidInput(f"--from-code {target!r}: expected FILE.py:CALLABLE")
    if not path.is_file():
        raise InvalidInput(f"--from-code: {path} does not exist")
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
    args = func.args.args
    defaults = dict(zip([a.arg for a in args[len(args) - len(func.args.defaults):]],
                        func.args.defaults, strict=True))
    inputs = []
    for arg in args:
        port: dict[str, Any] = {"name": arg.arg, "type": _port_type(arg.annotation, arg.arg),
                                "description": sections.get("args", {}).get(arg.arg, (None, ""))[1]}
        if arg.arg in defaults:
            port["default"] = _literal(defaults[arg.arg])
        inputs.append(port)
    outputs = [{"name": out_name, "type": out_type if out_type in _SIMPLE.values()
                or out_type in ("dataset", "model", "file", "dir", "metrics") else "str",
                "description": text}
               for out_name, (out_type, text) in sections.get("returns", {}).items()]
    if not outputs and func.returns is not None and ast.unparse(func.returns) != "None":
        outputs = [{"name": "result", "type": _port_type(func.returns, "result")}]
    summary = doc.strip().splitlines()[0] if doc.strip() else ""
    return parse_manifest({
        "apiVersion": "fnhub/v1", "kind": "Function",
        "metadata": {"name": name, "namespace": namespace, "version": "0.1.0",
                     "description": summary},
        "spec": {"kind": "job", "entrypoint": target, "inputs": inputs, "outputs": outputs},
    }, source=target)


def starter_manifest(folder: Path, name: str, namespace: str) -> Manifest:
    """A minimal manifest pointing at the folder's only Python file, if it has exactly one."""
    sources = sorted(p.name for p in folder.glob("*.py") if not p.name.startswith("test_"))
    entry = f"{sources[0]}:main" if len(sources) == 1 else "main.py:main"
    return parse_manifest({
        "apiVersion": "fnhub/v1", "kind": "Function",
        "metadata": {"name": name, "namespace": namespace, "version": "0.1.0"},
        "spec": {"kind": "job", "entrypoint": entry},
    }, source=str(folder))
