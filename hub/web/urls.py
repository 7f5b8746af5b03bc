"""The catalog's clean URLs (`/library`, `/library/describe/1.2.0`), for views and templates."""

from __future__ import annotations

from urllib.parse import quote

# First path segments that belong to the APIs: no catalog page ever starts with one.
API_SEGMENTS = ("api", "v2")


def function_url(namespace: str, name: str, version: str | None = None) -> str:
    path = f"/{quote(namespace, safe='')}/{quote(name, safe='')}"
    return path + (f"/{quote(version, safe='')}" if version else "")


def namespace_url(namespace: str) -> str:
    return f"/{quote(namespace, safe='')}"
