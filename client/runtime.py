"""Call a function by its calling convention (design §3). Standard library only.

The same code runs a function in-process, in a venv (`python runtime.py REQUEST RESULT`, where
fnhub itself is not installed) and in a container (`python -m fnhub.runtime`), so it imports
nothing outside the standard library.

REQUEST is JSON: {"folder", "entrypoint", "inputs": {name: value}, "artifacts": [names whose
value is a path], "outputs": [{"name", "type"}], "output_dir"}. RESULT receives
{"ok": true, "outputs": {name: {"value": v} | {"path": p}}} or {"ok": false, "error", "traceback"}.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
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
        allowed = _PYTHON_TYPES[kind]
        if value is not None and (not isinstance(value, allowed)
                                  or (kind != "bool" and isinstance(value, bool))):
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


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m fnhub.runtime REQUEST.json RESULT.json", file=sys.stderr)
        return 2
    request = json.loads(Path(args[0]).read_text())
    os.environ["FNHUB_OUTPUT_DIR"] = request["output_dir"]
    try:
        result: dict[str, Any] = {"ok": True, "outputs": call(request)}
    except BaseException as exc:  # the parent reports it; the child must always answer
        traceback.print_exc()
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc()}
    Path(args[1]).write_text(json.dumps(result, default=str))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
