"""Package READMEs as safe HTML: read from the stored archive, rendered once per digest.

A README is written by whoever published the package, so it is untrusted: Markdown is
rendered with raw HTML disabled, and the result is sanitised again by an allowlist
(nh3) that keeps only plain document tags and links to `http`, `https` and `mailto`.
Links that point into the package (relative paths) are dropped: the page cannot serve them.

The README is read from the package on demand rather than copied into the database at
publish time: a package is immutable and addressed by its digest, so the rendered HTML is
cached per digest in a small LRU and a page view after the first costs no storage read.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt

from fnhub.core.errors import FnhubError, NotFound, UnsafePackage
from fnhub.core.packaging import read_member
from fnhub.hub.storage import BlobStore

README_FILE = "README.md"
MAX_README_BYTES = 512 * 1024
CACHE_BYTES = 32 * 1024 * 1024  # of rendered HTML, across all cached READMEs
README_HEADING_OFFSET = 2  # the README sits under the page's h1 and its "Readme" h2

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
    ["table", "strikethrough"]
)
_TAGS = {
    "a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "img", "li", "ol", "p", "pre", "s", "strong", "table", "tbody", "td", "th", "thead", "tr",
    "ul",
}
_SCHEMES = {"http", "https", "mailto"}


def _keep_url(tag: str, attribute: str, value: str) -> str | None:
    """Absolute http(s)/mailto URLs and in-page anchors stay; paths into the package go."""
    if attribute not in ("href", "src"):
        return value
    if value.startswith("#") and tag == "a":
        return value
    scheme = urlsplit(value).scheme.lower()
    return value if scheme in _SCHEMES else None


_cleaner = nh3.Cleaner(
    tags=_TAGS,
    clean_content_tags={"script", "style"},
    attributes={"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}},
    attribute_filter=_keep_url,
    url_schemes=_SCHEMES,
    link_rel="nofollow noopener noreferrer",
    strip_comments=True,
)


def render_markdown(text: str, *, heading_offset: int = 0) -> str:
    """Markdown from an untrusted author as HTML that can be inserted into a page as is.

    `heading_offset` demotes headings (`# Title` becomes `<h3>` with 2), so a README nests
    under the page's own headings.
    """
    tokens = _markdown.parse(text)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1:]) + heading_offset)}"
    return _cleaner.clean(_markdown.renderer.render(tokens, _markdown.options, {}))


@dataclass(frozen=True)
class Readme:
    """A package's README as it will be shown: its HTML, or why there is none."""

    html: str | None
    problem: str | None = None  # set when the package has a README that cannot be shown


class _ChunkReader(io.RawIOBase):
    """A forward-only file over the blob store's chunks (what the archive reader needs)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        """Release the blob now (the archive reader may stop before the last chunk)."""
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        super().close()

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


class ReadmeCache:
    """Rendered READMEs by package digest; an LRU bounded in bytes, shared by all threads.

    Keyed by digest alone, it is right for any hub in the process: equal digests are equal
    packages. Only answers that depend on the package's bytes are kept (its README, or that
    it has none); a blob that cannot be read right now is asked for again next time.
    """

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._items: OrderedDict[str, Readme] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _size(readme: Readme) -> int:
        return len(readme.html or "") + len(readme.problem or "") + 100

    def get(self, store: BlobStore, digest: str) -> Readme:
        with self._lock:
            if digest in self._items:
                self._items.move_to_end(digest)
                return self._items[digest]
        readme, cacheable = _load(store, digest)
        if cacheable:
            with self._lock:
                if digest not in self._items:
                    self._items[digest] = readme
                    self._bytes += self._size(readme)
                while self._bytes > self._max_bytes and self._items:
                    _, dropped = self._items.popitem(last=False)
                    self._bytes -= self._size(dropped)
        return readme

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


def _load(store: BlobStore, digest: str) -> tuple[Readme, bool]:
    """The package's README and whether that answer may be cached."""
    try:
        chunks = store.open(digest)
    except NotFound:
        return Readme(None, "The package is not in this hub's storage."), False
    with io.BufferedReader(_ChunkReader(chunks)) as raw:
        try:
            data = read_member(raw, README_FILE, max_size=MAX_README_BYTES)
        except NotFound:
            return Readme(None), True
        except UnsafePackage as exc:
            return Readme(None, f"The README cannot be shown: {exc.message}"), True
        except (FnhubError, OSError) as exc:
            return Readme(None, f"The package could not be read: {exc}"), False
    text = data.decode("utf-8", errors="replace")
    return Readme(render_markdown(text, heading_offset=README_HEADING_OFFSET)), True


readmes = ReadmeCache()
