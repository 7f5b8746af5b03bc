"""Templates and static assets of the web catalog, both shipped as package data.

Static files are read once at import and served with a content hash in their URL
(`/-/static/site.css?v=1a2b3c4d`), so browsers may cache them forever and still see a
new release at once. Pages carry a strict Content-Security-Policy: scripts and styles
only from the hub itself, so even a README that slipped past sanitising could not run code.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import PurePath
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from fnhub.hub.web.urls import function_url, namespace_url

STATIC_PREFIX = "/-/static/"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https: "
       "http:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
_MEDIA_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    version: str  # the first hex digits of the content's sha256

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


def _load_assets() -> dict[str, Asset]:
    folder = resources.files("fnhub.hub.web") / "static"
    assets = {}
    for entry in folder.iterdir():
        suffix = PurePath(entry.name).suffix
        if entry.is_file() and suffix in _MEDIA_TYPES:
            body = entry.read_bytes()
            assets[entry.name] = Asset(body, _MEDIA_TYPES[suffix],
                                       hashlib.sha256(body).hexdigest()[:12])
    return assets


ASSETS = _load_assets()


def static_url(name: str) -> str:
    return f"{STATIC_PREFIX}{name}?v={ASSETS[name].version}"


def filesize(size: int) -> str:
    """`1.4 MiB`, `823 bytes`."""
    value, unit = float(size), 0
    units = ("bytes", "KiB", "MiB", "GiB", "TiB")
    while value >= 1024 and unit < len(units) - 1:
        value /= 1024
        unit += 1
    return f"{size} bytes" if unit == 0 else f"{value:.1f} {units[unit]}"


def day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def iso(moment: datetime) -> str:
    """A `<time datetime>` value (HTML allows at most milliseconds)."""
    return moment.isoformat(timespec="seconds")


def number(value: int) -> str:
    return f"{value:,}"


def sentence(text: str) -> str:
    """An error message as a sentence: capital first letter, closing full stop."""
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


_env = Environment(
    loader=PackageLoader("fnhub.hub.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(filesize=filesize, day=day, iso=iso, number=number, sentence=sentence)
_env.globals.update(static=static_url, function_url=function_url, namespace_url=namespace_url)
for _name in _env.list_templates():  # compile now, not on the first visitor's request
    _env.get_template(_name)


def render(template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """A page from `template`, with the security headers every page carries."""
    html = _env.get_template(template).render(context)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
