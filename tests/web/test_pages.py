"""The web catalog's pages, rendered in-process: what they show, their URLs, their errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from sqlmodel import select

from fnhub.core.manifest import load_manifest
from fnhub.core.publishing import catalog_folders
from fnhub.hub.app import create_app
from fnhub.hub.context import Hub
from fnhub.hub.models import Version
from fnhub.hub.settings import ServerSettings
from tests.helpers import ROOT
from tests.hub.factories import Publisher, auth, make_client
from tests.web.conftest import browser_client
from tests.web.factories import EVIL_README, publish_with_readme, start_tags
from tests.web.population import Population

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

DESCRIBE = load_manifest(ROOT / "catalog" / "describe").metadata.version  # the seeded version
SEEDED = len(catalog_folders(ROOT / "catalog"))  # functions and feature sets alike


def _results(html: str) -> list[str]:
    """The `namespace/name` of each search result on a page, in order."""
    return re.findall(r'<h3><a href="/[^"]+">([^<]+)</a></h3>', html)


# --------------------------------------------------------------------------- home


def test_home_lists_the_catalog_with_labelled_filters(catalog: TestClient) -> None:
    page = catalog.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert len(_results(html)) == SEEDED and f"{SEEDED} functions" in html
    assert html.count('class="badge ok"') == SEEDED  # every catalog package verifies
    for field in ("q", "category", "kind", "sort"):
        assert f'<label for="{field}">' in html and f'id="{field}"' in html
    assert '<option value="data-analysis">data-analysis (1)</option>' in html
    assert '<option value="model-training">model-training (2)</option>' in html
    for sort in ("Best match", "Most downloaded", "Recently updated"):
        assert sort in html


def test_search_category_kind_and_sort(catalog: TestClient) -> None:
    drift = _results(catalog.get("/", params={"q": "drift"}).text)
    assert drift[0] == "library/drift-detect" and "library/describe" not in drift
    assert _results(catalog.get("/", params={"category": "model-training"}).text) == [
        "library/train", "library/tune"]
    assert _results(catalog.get("/", params={"kind": "serving"}).text) == [
        "library/model-server"]
    assert _results(catalog.get("/", params={"kind": "feature-set"}).text) == [
        "library/customer-features"]
    by_name = _results(catalog.get("/", params={"sort": "name"}).text)
    assert by_name == sorted(by_name) and len(by_name) == SEEDED
    nothing = catalog.get("/", params={"q": "zzzqqq"}).text
    assert _results(nothing) == [] and "No function matches" in nothing
    assert 'value="drift"' in catalog.get("/", params={"q": "drift"}).text  # the box keeps it


def test_results_are_paginated(app: FastAPI, client: TestClient, tmp_path: Path) -> None:
    Population(app.state.hub, tmp_path).add(functions=45, namespaces=3)
    first = client.get("/", params={"sort": "name"}).text
    assert len(_results(first)) == 20 and "Page 1 of 3" in first
    assert 'rel="next" href="/?sort=name&amp;page=2"' in first and 'rel="prev"' not in first
    third = client.get("/", params={"sort": "name", "page": 3}).text
    assert len(_results(third)) == 5 and 'rel="prev"' in third and 'rel="next"' not in third
    names = _results(first) + _results(client.get("/?sort=name&page=2").text) + _results(third)
    assert len(set(names)) == 45
    beyond = client.get("/", params={"page": 9}).text
    assert _results(beyond) == [] and "Page 9 of 3" in beyond


def test_bad_parameters_get_an_html_400(catalog: TestClient) -> None:
    for params, problem in (({"sort": "bogus"}, "unknown sort"), ({"page": 0}, "page"),
                            ({"page": "two"}, "page"), ({"kind": "batch"}, "unknown kind"),
                            ({"q": "x" * 300}, "q")):
        page = catalog.get("/", params=params)
        assert page.status_code == 400, params
        assert page.headers["content-type"].startswith("text/html")
        assert "<h1>Bad request</h1>" in page.text and problem in page.text.lower()


# --------------------------------------------------------------------------- function pages


def test_function_page_shows_the_whole_card(catalog: TestClient) -> None:
    version = catalog.get(f"/api/v1/functions/library/describe/versions/{DESCRIBE}").json()
    [key] = catalog.get("/api/v1/keys", params={"namespace": "library"}).json()
    html = catalog.get("/library/describe").text
    assert "<h1><span class=\"ns\">library/</span>describe" in html
    # inputs and outputs with types and defaults
    assert re.search(r"<code>table</code></th><td><span class=\"type artifact\">dataset</span>"
                     r"</td><td><em>required</em>", html)
    assert "<code>bins</code></th><td><span class=\"type\">int</span></td><td><code>20</code>" \
        in html
    assert "<code>label_column</code></th><td><span class=\"type\">str</span></td><td>" \
        "<code>None</code>" in html
    assert "<code>n_rows</code>" in html and "<code>plots</code>" in html
    # snippets, from the manifest's example
    assert '<code id="snippet-install">hub install hub://describe</code>' in html
    assert "fnhub.import_function(&#34;hub://describe:^1.1&#34;)" in html
    assert (f"hub run hub://describe:{DESCRIBE} -i table=iris.csv -p label_column=target "
            "-p bins=15") in html
    assert 'data-copy="snippet-install"' in html
    # provenance and trust
    assert version["package"]["digest"] in html
    assert f">{key['keyid']}</code> (hub library)" in html
    assert "signed by a key registered to &#39;library&#39;" in html
    assert "<code>pandas&gt;=2.0</code>" in html and "CPU 1, memory 2Gi, GPU 0" in html
    assert "Apache-2.0" in html and "fnhub maintainers" in html
    assert "none built; runs from <code>python:3.11-slim</code>" in html
    # the README, rendered and nested under the page's headings
    assert "<h3>describe</h3>" in html and "<h4>Inputs</h4>" in html
    assert "<td><code>table</code></td>" in html
    # the versions list
    current = rf'<a href="/library/describe/{re.escape(DESCRIBE)}" aria-current="page">'
    assert re.search(rf"{current}{re.escape(DESCRIBE)}</a>", html)


def test_version_page_pins_its_snippets(catalog: TestClient) -> None:
    html = catalog.get(f"/library/describe/{DESCRIBE}").text
    assert f'<code id="snippet-install">hub install hub://describe:{DESCRIBE}</code>' in html
    assert f"fnhub.import_function(&#34;hub://describe:{DESCRIBE}&#34;)" in html
    assert f'aria-current="page">{DESCRIBE}</a></li>' in html  # the breadcrumb ends at the version


def test_tags_and_ranges_redirect_to_the_exact_version(catalog: TestClient) -> None:
    for spec in ("latest", "^1", "1", ">=1,<2"):
        response = catalog.get(f"/library/describe/{spec}", follow_redirects=False)
        assert response.status_code == 302, spec
        assert response.headers["location"] == f"/library/describe/{DESCRIBE}"
    picker = catalog.get("/library/describe", params={"version": DESCRIBE},
                         follow_redirects=False)
    assert picker.status_code == 303
    assert picker.headers["location"] == f"/library/describe/{DESCRIBE}"


def test_not_found_pages_suggest_close_names(catalog: TestClient) -> None:
    def links(path: str) -> list[str]:
        page = catalog.get(path)
        assert page.status_code == 404, path
        assert page.headers["content-type"].startswith("text/html")
        return re.findall(r'<li><a href="([^"]+)">', page.text)

    assert links("/library/describ")[0] == "/library/describe"
    assert links("/library/load_dataset")[0] == "/library/load-dataset"  # _ and - differ
    assert "/library/describe" in links("/alice/describe")  # the same name elsewhere
    assert links("/librar")[0] == "/library"
    assert links("/Library")[0] == "/library"
    assert links("/library/describe/9.9.9")[0] == f"/library/describe/{DESCRIBE}"
    assert links("/library/describe/^9")[0] == f"/library/describe/{DESCRIBE}"
    assert "/?q=describ" in links("/library/describ")
    page = catalog.get("/library/describe/9.9.9").text
    assert "Version 9.9.9 of library/describe does not exist." in page


def test_api_paths_keep_their_json_errors(catalog: TestClient) -> None:
    for path in ("/api/v1/nope", "/api/v1/functions/library/nope/x"):
        response = catalog.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json", path
        assert response.json()["error"]["code"] in ("not_found", "invalid_input")
    assert not catalog.get("/v2/library/describe").headers["content-type"].startswith(
        "text/html")


def test_pages_carry_security_and_timing_headers(catalog: TestClient) -> None:
    for path in ("/", "/library", "/library/describe", "/nope/nope"):
        response = catalog.get(path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "object-src 'none'" in csp, path
        assert re.fullmatch(r"app;dur=\d+\.\d", response.headers["server-timing"]), path
    html = catalog.get("/").text
    css = re.search(r'href="(/-/static/site\.css\?v=[0-9a-f]{12})"', html)
    assert css is not None
    asset = catalog.get(css.group(1))
    assert asset.status_code == 200 and asset.headers["content-type"].startswith("text/css")
    assert "immutable" in asset.headers["cache-control"]
    again = catalog.get(css.group(1), headers={"If-None-Match": asset.headers["etag"]})
    assert again.status_code == 304
    assert catalog.get("/-/static/nope.css").status_code == 404


def test_namespace_page_lists_owners_keys_and_functions(catalog: TestClient) -> None:
    [key] = catalog.get("/api/v1/keys", params={"namespace": "library"}).json()
    owners = catalog.get("/api/v1/namespaces/library").json()["owners"]
    html = catalog.get("/library").text
    assert "<h1>library</h1>" in html and f"{SEEDED} functions" in html
    assert f"<dd>{', '.join(owners)}</dd>" in html
    assert f">{key['keyid']}</code> (hub library)" in html
    assert len(_results(html)) == SEEDED


# --------------------------------------------------------------------------- changes show


def test_yanked_versions_are_marked(client: TestClient, alice: Publisher,
                                    admin_token: str) -> None:
    publish_with_readme(alice, "scale", "1.0.0", "# scale\n")
    publish_with_readme(alice, "scale", "1.1.0", "# scale\n")
    response = client.post("/api/v1/functions/alice/scale/versions/1.1.0/yank",
                           json={"reason": "rounds every value to zero"},
                           headers=auth(alice.token))
    assert response.status_code == 200, response.text

    card = client.get("/alice/scale").text
    assert '<span class="version">1.0.0</span>' in card  # latest skips the yanked version
    row = re.search(r'<tr class="is-yanked">.*?</tr>', card, re.S)
    assert row is not None and ">1.1.0</a>" in row.group(0)
    assert "yanked</span> <span class=\"reason\">rounds every value to zero" in row.group(0)
    assert ">1.1.0 (yanked)</option>" in card

    yanked = client.get("/alice/scale/1.1.0").text
    assert '<span class="badge yanked">yanked</span>' in yanked
    assert "This version was yanked</strong>: rounds every value to zero" in yanked
    assert 'The latest version is <a href="/alice/scale/1.0.0">1.0.0</a>' in yanked
    assert "hub install hub://alice/scale:1.1.0" in yanked  # only an exact pin gets it


def test_tags_are_shown(client: TestClient, alice: Publisher) -> None:
    alice.publish("scale", "1.0.0")
    alice.publish("scale", "2.0.0")
    response = client.put("/api/v1/functions/alice/scale/tags/stable",
                          json={"version": "1.0.0"}, headers=auth(alice.token))
    assert response.status_code == 200, response.text
    html = client.get("/alice/scale").text
    assert '<a class="chip" href="/alice/scale/1.0.0">stable → 1.0.0</a>' in html
    assert '<span class="badge tag">stable</span>' in html
    assert client.get("/alice/scale/stable", follow_redirects=False).headers["location"] == \
        "/alice/scale/1.0.0"


def test_deleted_versions_are_gone(client: TestClient, alice: Publisher) -> None:
    alice.publish("scale", "1.0.0")
    alice.publish("scale", "1.1.0")
    response = client.delete("/api/v1/functions/alice/scale/versions/1.0.0",
                             headers=auth(alice.token))
    assert response.status_code == 204
    page = client.get("/alice/scale/1.0.0")
    assert page.status_code == 404 and "was deleted" in page.text
    assert ">1.0.0<" not in client.get("/alice/scale").text


def test_signature_status_is_checked_on_every_view(hub: Hub, client: TestClient,
                                                   alice: Publisher) -> None:
    alice.publish("scale", "1.0.0")
    assert '<span class="badge ok"' in client.get("/alice/scale").text
    with hub.db.write() as session:
        row = session.exec(select(Version)).one()
        envelope = dict(row.envelope)
        envelope["payload"] = envelope["payload"][::-1]
        row.envelope = envelope
        session.add(row)
    card = client.get("/alice/scale").text
    assert '<span class="badge bad"' in card and '<span class="badge ok"' not in card
    assert ">not hub-verified</span>" in card
    assert "does not verify" in card or "not valid" in card
    assert '<span class="badge bad"' in client.get("/", params={"q": "scale"}).text


def test_the_badge_says_the_hub_checked_not_that_the_viewer_trusts(
        client: TestClient, alice: Publisher) -> None:
    """"verified" alone read as "safe for me"; it only means this hub checked the signature
    against the namespace's registered keys, and the badge and the card say exactly that."""
    alice.publish("scale", "1.0.0")
    for html in (client.get("/alice/scale").text, client.get("/", params={"q": "scale"}).text):
        badges = re.findall(r'<span class="badge ok" title="([^"]+)">([^<]+)</span>', html)
        assert badges, html
        for title, text in badges:
            assert text == "hub-verified"
            assert "This hub checked the signature against a key registered to the " \
                   "namespace alice" in title
            assert "Whether your client trusts that key is up to its trust settings" in title
    card = client.get("/alice/scale").text
    assert "Your client checks again, against the keys it trusts, when it installs" in card
    assert "<code>hub verify hub://alice/scale:1.0.0</code>" in card


def test_unregistered_key_is_no_longer_verified(client: TestClient, alice: Publisher) -> None:
    alice.publish("scale", "1.0.0")
    [key] = client.get("/api/v1/keys", params={"namespace": "alice"}).json()
    response = client.delete(f"/api/v1/keys/{key['keyid']}", params={"namespace": "alice"},
                             headers=auth(alice.token))
    assert response.status_code == 204, response.text
    card = client.get("/alice/scale").text
    assert "which is not trusted" in card and "<em>not registered</em>" in card


def test_untrusted_text_is_escaped(client: TestClient, alice: Publisher) -> None:
    alice.publish("scale", "1.0.0", description="<script>alert(1)</script> & more",
                  labels={"note": "<b>bold</b>"}, categories=["<i>cat</i>"])
    for path in ("/", "/alice", "/alice/scale", "/alice/scale/1.0.0"):
        html = client.get(path).text
        assert "<script>alert" not in html and "<b>bold" not in html and "<i>cat" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html, path


def test_readme_is_sanitised(client: TestClient, alice: Publisher) -> None:
    publish_with_readme(alice, "evil", "1.0.0", EVIL_README)
    html = client.get("/alice/evil").text
    start = html.index('<div class="readme">')
    readme = html[start:html.index("</section>", start)]
    tags = start_tags(readme)
    assert {name for name, _ in tags} == {"div", "h3", "p", "a"}, tags
    attributes = {attr for _, attrs in tags for attr, _ in attrs}
    assert attributes == {"class", "href", "rel"}, attributes
    urls = [value for _, attrs in tags for attr, value in attrs if attr in ("href", "src")]
    assert urls == ["https://example.org/docs"], urls
    assert "&lt;script&gt;window.__pwned" in readme  # shown as text, harmless


def test_readme_missing_or_unreadable(hub: Hub, client: TestClient, alice: Publisher) -> None:
    alice.publish("scale", "1.0.0")
    assert "This package has no README.md." in client.get("/alice/scale").text
    publish_with_readme(alice, "lost", "1.0.0", "# lost\n")
    digest = client.get("/api/v1/functions/alice/lost/versions/1.0.0").json()["package"]["digest"]
    hub.store.delete(digest)
    page = client.get("/alice/lost")
    assert page.status_code == 200 and "The package is not in this hub&#39;s storage." in page.text


def test_other_clients_get_json_errors(catalog_app: FastAPI) -> None:
    """`curl` and scripts asking for a page get the API's error body, not HTML."""
    client = make_client(catalog_app)  # Accept: */*
    missing = client.get("/library/describ")
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": "not_found",
                                        "message": "there is no function library/describ on "
                                                   "this hub",
                                        "hint": "did you mean library/describe?"}}
    bad = client.get("/", params={"page": 0})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_input"
    assert client.get("/library/describe").headers["content-type"].startswith("text/html")


def test_pages_never_shadow_other_routes(app: FastAPI, client: TestClient) -> None:
    """The catalog is the app's fallback: a route added later still answers its own path."""
    app.add_api_route("/later/{thing}", lambda thing: {"thing": thing})
    assert client.get("/later/one").json() == {"thing": "one"}
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.post("/library/describe").status_code == 405


def test_private_hub_pages_ask_for_a_token(tmp_path: Path) -> None:
    app = create_app(ServerSettings(data_dir=tmp_path / "data", private=True))
    try:
        client = browser_client(app)
        page = client.get("/")
        assert page.status_code == 401 and "<h1>Sign-in needed</h1>" in page.text
        assert "this hub is private" in page.text.lower()
        css = re.search(r'href="(/-/static/site\.css[^"]*)"', page.text)
        assert css is not None and client.get(css.group(1)).status_code == 200
    finally:
        app.state.hub.close()
