"""A small renderer for the subset of Helm's Go templates the fnhub chart uses.

`helm` is not installable from this machine's registries, so the chart test renders the
templates itself. Supported: `{{ }}` with `{{-`/`-}}` trimming; `define`, `if`/`else`/`end`;
values `.Values.a.b`, `.Release.*`, `.Chart.*`, `.`, string and number literals,
parenthesised pipelines; pipes `|`; functions `include`, `quote`, `default`, `not`,
`nindent`, `toYaml`. Anything else raises, so the chart cannot drift beyond what is checked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.DOTALL)


@dataclass
class Node:
    kind: str  # text, action, if, define
    value: str = ""
    body: list[Node] = field(default_factory=list)
    orelse: list[Node] = field(default_factory=list)


def _tokens(source: str) -> list[tuple[str, str]]:
    """("text", ...) and ("action", ...) pieces, with the trim markers applied."""
    out: list[tuple[str, str]] = []
    pos = 0
    for match in _ACTION.finditer(source):
        text = source[pos:match.start()]
        if match.group(1):
            text = text.rstrip()
        out.append(("text", text))
        out.append(("action", match.group(2)))
        pos = match.end()
        if match.group(3):
            rest = source[pos:]
            pos += len(rest) - len(rest.lstrip())
    out.append(("text", source[pos:]))
    return out


def _parse(tokens: list[tuple[str, str]], i: int = 0) -> tuple[list[Node], int, str]:
    """Nodes up to an `end`/`else` (returned as the stop word) or the end of input."""
    nodes: list[Node] = []
    while i < len(tokens):
        kind, value = tokens[i]
        i += 1
        if kind == "text":
            nodes.append(Node("text", value))
        elif value in ("end", "else"):
            return nodes, i, value
        elif value.startswith(("if ", "define ")):
            word, _, rest = value.partition(" ")
            body, i, stop = _parse(tokens, i)
            orelse: list[Node] = []
            if stop == "else":
                orelse, i, stop = _parse(tokens, i)
            assert stop == "end", f"{word} without end"
            nodes.append(Node(word, rest.strip(), body, orelse))
        else:
            nodes.append(Node("action", value))
    return nodes, i, ""


def _go(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _truthy(value: Any) -> bool:
    return bool(value) if not isinstance(value, str) else value != ""


class Chart:
    def __init__(self, root: Path, values: dict[str, Any] | None = None,
                 release: str = "demo") -> None:
        meta = yaml.safe_load((root / "Chart.yaml").read_text())
        defaults = yaml.safe_load((root / "values.yaml").read_text())
        self.context = {
            "Values": _merge(defaults, values or {}),
            "Release": {"Name": release, "Namespace": "default", "Service": "Helm"},
            "Chart": {"Name": meta["name"], "Version": meta["version"],
                      "AppVersion": meta["appVersion"]},
        }
        self.defines: dict[str, list[Node]] = {}
        self.templates: dict[str, list[Node]] = {}
        for path in sorted((root / "templates").iterdir()):
            nodes, _, _ = _parse(_tokens(path.read_text()))
            for node in nodes:
                if node.kind == "define":
                    self.defines[json.loads(node.value)] = node.body
            if path.suffix == ".yaml":
                self.templates[path.name] = nodes

    def render(self) -> dict[str, list[dict[str, Any]]]:
        """Each template's YAML documents (empty ones dropped)."""
        out = {}
        for name, nodes in self.templates.items():
            docs = [d for d in yaml.safe_load_all(self._run(nodes, self.context)) if d]
            out[name] = docs
        return out

    def _run(self, nodes: list[Node], dot: Any) -> str:
        parts = []
        for node in nodes:
            if node.kind == "text":
                parts.append(node.value)
            elif node.kind == "action":
                parts.append(_go(self._pipeline(node.value, dot)))
            elif node.kind == "if":
                branch = node.body if _truthy(self._pipeline(node.value, dot)) else node.orelse
                parts.append(self._run(branch, dot))
        return "".join(parts)

    def _pipeline(self, text: str, dot: Any) -> Any:
        value: Any = None
        for i, command in enumerate(_split_pipes(text)):
            words = _words(command)
            value = self._command(words, dot, value, has_piped=i > 0)
        return value

    def _term(self, word: str, dot: Any) -> Any:
        if word.startswith("("):
            return self._pipeline(word[1:-1], dot)
        if word.startswith('"'):
            return json.loads(word)
        if re.fullmatch(r"-?\d+", word):
            return int(word)
        if word == ".":
            return dot
        if word.startswith("."):
            value = dot
            for key in word[1:].split("."):
                value = value.get(key) if isinstance(value, dict) else None
            return value
        raise ValueError(f"unsupported term {word!r}")

    def _command(self, words: list[str], dot: Any, piped: Any, *, has_piped: bool) -> Any:
        name, args = words[0], words[1:]
        if name not in _FUNCTIONS:
            assert not args and not has_piped, f"unsupported command {' '.join(words)!r}"
            return self._term(name, dot)
        values = [self._term(arg, dot) for arg in args] + ([piped] if has_piped else [])
        if name == "include":
            template, data = values
            return self._run(self.defines[template], data)
        if name == "quote":
            return json.dumps(_go(values[0]))
        if name == "default":
            fallback, value = values
            return value if _truthy(value) else fallback
        if name == "not":
            return not _truthy(values[0])
        if name == "nindent":
            width, text = values
            return "\n" + "\n".join(" " * width + line for line in _go(text).split("\n"))
        return yaml.safe_dump(values[0], default_flow_style=False).rstrip("\n")  # toYaml


_FUNCTIONS = ("include", "quote", "default", "not", "nindent", "toYaml")


def _split_pipes(text: str) -> list[str]:
    parts, depth, quoted, current = [], 0, False, ""
    for char in text:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "()":
            depth += 1 if char == "(" else -1
        elif char == "|" and not quoted and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        current += char
    parts.append(current.strip())
    return parts


def _words(command: str) -> list[str]:
    """A command's words; a parenthesised group or a quoted string is one word."""
    words, depth, current, quoted = [], 0, "", False
    for char in command:
        if char == '"' and depth == 0:
            quoted = not quoted
        if char == "(" and not quoted:
            depth += 1
        if char == ")" and not quoted:
            depth -= 1
        if char.isspace() and depth == 0 and not quoted:
            if current:
                words.append(current)
            current = ""
            continue
        current += char
    if current:
        words.append(current)
    return words


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(
            out.get(key), dict) else value
    return out

