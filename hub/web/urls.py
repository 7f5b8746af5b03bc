"""The catalog's clean URLs (`/library`, `/library/describe/1.2.0`), for views and templates."""

from __future__ import annotations

from urllib.parse import quote


def function_url(namespace: str, name: str, version: str | None = None) -> str:
    path = f"/{quote(namespace, safe='')}/{quote(name, safe='')}"
    return path + (f"/{quote(version, safe='')}" if version else "")


def namespace_url(namespace: str) -> str:
    return f"/{quote(namespace, safe='')}"
