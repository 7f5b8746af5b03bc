"""Publishing test functions with a README through the real API, and reading HTML back."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx

from tests.hub.factories import Publisher, Upload, build, envelope_for, write_function

EVIL_README = """# Evil

<script>window.__pwned = "script"; document.title = "pwned";</script>

<img src="x" onerror="window.__pwned = 'onerror'">

[click me](javascript:window.__pwned='markdown-link')

<a href="javascript:window.__pwned='html-link'">raw link</a>

[shouting](JAVASCRIPT:window.__pwned='upper')

[data link](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)

<iframe src="javascript:window.__pwned='iframe'"></iframe>

[a real link](https://example.org/docs)
"""


def publish_with_readme(publisher: Publisher, name: str, version: str, readme: str | None,
                        **manifest: Any) -> httpx.Response:
    """Publish `publisher.namespace/name@version` whose package carries `readme` (or none)."""
    folder = write_function(publisher.root, name, version, namespace=publisher.namespace,
                            **manifest)
    if readme is not None:
        (folder / "README.md").write_text(readme)
    archive, packed = build(folder)
    envelope = envelope_for(f"{publisher.namespace}/{name}@{version}", packed.digest,
                            publisher.key)
    upload = Upload(publisher.namespace, name, (folder / "function.yaml").read_text(),
                    Path(archive).read_bytes(), envelope)
    response = publisher.send(upload)
    assert response.status_code == 201, response.text
    return response


Tag = tuple[str, list[tuple[str, str | None]]]


class _StartTags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[Tag] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def start_tags(html: str) -> list[Tag]:
    """Every element `html` opens, with its attributes (escaped text is not an element)."""
    parser = _StartTags()
    parser.feed(html)
    return parser.tags
