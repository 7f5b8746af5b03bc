"""README rendering: Markdown in, only safe HTML out, whatever the package author wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from fnhub.core.packaging import pack
from fnhub.hub.storage import FileBlobStore
from fnhub.hub.web.readme import ReadmeCache, render_markdown
from tests.helpers import blob_digests
from tests.web.factories import start_tags


@pytest.mark.parametrize("markdown", [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD4=)",
    "![x](javascript:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    "<iframe src=https://example.org></iframe>",
    "<style>body{display:none}</style>",
    '<div style="position:fixed">x</div>',
    "[x](<javascript:alert(1)>)",
])
def test_nothing_executable_survives(markdown: str) -> None:
    html = render_markdown(markdown)
    tags = start_tags(html)
    assert {name for name, _ in tags} <= {"p", "a"}, html
    for _, attributes in tags:
        for name, value in attributes:
            assert name in ("href", "rel"), html
            assert name != "href" or (value or "").startswith(("http:", "https:")), html


def test_plain_markdown_renders() -> None:
    html = render_markdown(
        "# Title\n\nSome *emphasis* and `code`.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "```python\nx = 1 < 2\n```\n\n[docs](https://example.org) [mail](mailto:a@b.org) "
        "[top](#title) [file](docs/usage.md) ![badge](https://example.org/b.svg)\n",
        heading_offset=2,
    )
    assert "<h3>Title</h3>" in html and "<em>emphasis</em>" in html
    assert "<table>" in html and "<td>1</td>" in html
    assert "<pre><code>x = 1 &lt; 2\n</code></pre>" in html
    assert '<a href="https://example.org" rel="nofollow noopener noreferrer">docs</a>' in html
    assert 'href="mailto:a@b.org"' in html and 'href="#top"' not in html
    assert 'href="#title"' in html
    assert '<a rel="nofollow noopener noreferrer">file</a>' in html  # paths into the package go
    assert '<img src="https://example.org/b.svg" alt="badge">' in html


def test_headings_never_pass_h6() -> None:
    assert render_markdown("##### deep", heading_offset=2) == "<h6>deep</h6>\n"


def _stored(store: FileBlobStore, root: Path, readme: str) -> str:
    folder = root / str(len(blob_digests(store)))
    folder.mkdir(parents=True)
    (folder / "README.md").write_text(readme)
    (folder / "function.yaml").write_text("kind: Function\n")  # pack wants one; not parsed
    archive = root / f"{folder.name}.tar.gz"
    pack(folder, archive)
    with archive.open("rb") as fh:
        staged = store.stage(iter(lambda: fh.read(4096), b""))
    store.commit(staged)
    return staged.digest


def test_cache_reads_a_package_once_and_stays_within_its_bytes(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    digests = [_stored(store, tmp_path / "src", f"# n{n}\n\n" + "word " * 400) for n in range(3)]
    cache = ReadmeCache(max_bytes=5_000)
    first = cache.get(store, digests[0])
    assert first.html is not None and "<h3>n0</h3>" in first.html
    store.delete(digests[0])
    assert cache.get(store, digests[0]) == first  # served from the cache, storage untouched
    cache.get(store, digests[1])
    cache.get(store, digests[2])  # past 5,000 bytes: the least recently used goes
    gone = cache.get(store, digests[0])
    assert gone.html is None and gone.problem == "The package is not in this hub's storage."
    assert cache.get(store, digests[2]).html is not None
