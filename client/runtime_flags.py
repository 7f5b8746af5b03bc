"""The command line of `fnhub.runtime`'s flag form, as the exporters and the container runner
write it (see `fnhub.runtime` for what each flag means)."""

from __future__ import annotations

import json
from typing import Any


def text_value(value: Any) -> str:
    """A parameter value as a workflow engine passes it: a string as is, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def value_flag(port_type: str) -> str:
    """The runtime flag of a parameter input: `--text` for strings, `--param` (JSON) else."""
    return "--text" if port_type == "str" else "--param"


def artifact_arg(name: str, port_type: str, path: object) -> list[str]:
    """The flags of an input artifact the engine places at `path` (a path, or the engine's
    placeholder for one); typed, so the runtime applies its folder rule."""
    return ["--artifact", f"{name}:{port_type}={path}"]


def output_arg(name: str, port_type: str, path: object, *, artifact: bool) -> list[str]:
    """The flags of an output the engine collects from `path` (a path or a placeholder); an
    artifact in the folder form `PATH/`, so it keeps its file's own name."""
    return ["--output", f"{name}:{port_type}={path}{'/' if artifact else ''}"]


def fixed_args(name: str, port_type: str, value: Any, *, artifact: bool) -> list[str]:
    """The flags of an input whose value is known when exporting (a default, or a None)."""
    if value is None:
        return ["--param", f"{name}=null"]
    if artifact:
        return ["--artifact", f"{name}={value}"]
    return [value_flag(port_type), f"{name}={text_value(value)}"]
