"""The copyable commands on a function page: install, import from Python, run.

They are built from the manifest so they run as shown: required inputs get the values of
the manifest's first example when it has one, else a placeholder (`PATH`, `VALUE`) to fill
in. Artifacts are `-i NAME=PATH`, parameters `-p NAME=VALUE` (lists and dicts as JSON).
"""

from __future__ import annotations

import json
import keyword
import re
import shlex
from dataclasses import dataclass
from typing import Any

from fnhub.core.manifest import ARTIFACT_TYPES
from fnhub.core.names import DEFAULT_NAMESPACE
from fnhub.core.uri import SCHEME


@dataclass(frozen=True)
class Snippet:
    id: str  # the element id its copy button points at
    title: str
    code: str


def function_uri(namespace: str, name: str, version: str | None = None) -> str:
    """`hub://describe:1.2.0`, `hub://alice/clean`: the namespace is left out for `library`."""
    ref = name if namespace == DEFAULT_NAMESPACE else f"{namespace}/{name}"
    return f"{SCHEME}{ref}" + (f":{version}" if version else "")


def compatible_range(version: str) -> str:
    """`^MAJOR.MINOR` of a version: what a user importing it today can keep depending on."""
    major, minor = version.split(".")[:2]
    return f"^{major}.{minor}"


def python_name(name: str) -> str:
    """A variable name for the function in Python snippets (`load-dataset` -> `load_dataset`)."""
    ident = re.sub(r"\W", "_", name)
    if ident[0].isdigit():
        ident = f"fn_{ident}"
    return f"{ident}_" if keyword.iskeyword(ident) else ident


def _cli_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _python_value(value: Any) -> str:
    """A Python literal; strings in double quotes, like the rest of the snippet."""
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _arguments(spec: dict[str, Any]) -> list[tuple[dict[str, Any], Any]]:
    """(input port, value) for each input the snippets pass: the example's, then required ones."""
    examples = spec.get("examples") or []
    example: dict[str, Any] = examples[0].get("inputs", {}) if examples else {}
    out = []
    for port in spec.get("inputs", []):
        if port["name"] in example:
            out.append((port, example[port["name"]]))
        elif "default" not in port:
            out.append((port, "PATH" if port["type"] in ARTIFACT_TYPES else "VALUE"))
    return out


def featureset_snippets(name: str, manifest: dict[str, Any], uri: str) -> list[Snippet]:
    """Apply a feature set, ingest into it, read training data and online values (§10)."""
    spec = manifest.get("spec", {})
    keys = ", ".join(f'"{e["name"]}": VALUE' for e in spec.get("entities", []))
    features = ", ".join(f'"{name}:{f["name"]}"' for f in spec.get("features", []))
    python = (f"import fnhub\n\nstore = fnhub.FeatureStore()\n"
              f"store.apply({_python_value(uri)})\n"
              f"store.ingest({_python_value(name)}, source=\"table.parquet\")\n"
              f"train = store.get_historical_features(entity_df, [{features}])\n"
              f"store.get_online_features([{features}], [{{{keys}}}])")
    return [
        Snippet("snippet-apply", "Apply",
                f"hub features apply {uri}\nhub features ingest {name} --source PATH"),
        Snippet("snippet-python", "Python", python),
    ]


def snippets(namespace: str, name: str, version: str, manifest: dict[str, Any], *,
             pinned: bool) -> list[Snippet]:
    """The three snippets for a version. `pinned` uses the exact version everywhere (for a
    version other than `latest`); else install takes `latest` and Python a compatible range."""
    if manifest.get("kind") == "FeatureSet":
        return featureset_snippets(name, manifest, function_uri(
            namespace, name, version if pinned else compatible_range(version)))
    spec = manifest.get("spec", {})
    arguments = _arguments(spec)
    exact = function_uri(namespace, name, version)
    run = [f"hub run {exact}"]
    for port, value in arguments:
        flag = "-i" if port["type"] in ARTIFACT_TYPES else "-p"
        run.append(f"{flag} {shlex.quote(port['name'] + '=' + _cli_value(value))}")
    variable = python_name(name)
    call = ", ".join(f"{port['name']}={_python_value(value)}" for port, value in arguments)
    python_uri = exact if pinned else function_uri(namespace, name, compatible_range(version))
    install_uri = exact if pinned else function_uri(namespace, name)
    return [
        Snippet("snippet-install", "Install", f"hub install {install_uri}"),
        Snippet("snippet-python", "Python",
                f"import fnhub\n\n{variable} = fnhub.import_function({_python_value(python_uri)})\n"
                f"out = {variable}({call})"),
        Snippet("snippet-run", "Run", " ".join(run)),
    ]
