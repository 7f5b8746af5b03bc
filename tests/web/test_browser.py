"""Acceptance 1 and 2, in a real browser: Debian's headless Chromium driven by Playwright
against a real `hub serve --seed-catalog` process.

Besides the catalog, the hub holds `library/describe` 1.2.0 (the catalog's 1.1.x is yanked
with a reason) and `mallory/evil`, whose README tries scripts and `javascript:` links.
Screenshots of each step are written to the test's temp dir (`<tmp>/screenshots/*.png`) for
inspection.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from fnhub.core.manifest import load_manifest
from fnhub.core.packaging import pack
from fnhub.core.publishing import catalog_folders
from fnhub.core.signing import load_private_key
from tests.helpers import ROOT, HubProcess, require_file, start_hub
from tests.hub.factories import Upload, auth, envelope_for, make_publisher
from tests.web.factories import EVIL_README, publish_with_readme

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
YANK_REASON = "histograms used the wrong bins"
PHONE = {"width": 375, "height": 800}
TIMEOUT_MS = 20_000  # generous: CI machines may be busy
DESCRIBE = load_manifest(ROOT / "catalog" / "describe").metadata.version  # the seeded version
SEEDED = len(catalog_folders(ROOT / "catalog"))


def _publish_describe_1_2(hub: HubProcess, work: Path) -> None:
    """A second version of the catalog's `describe`, signed with the hub's library key."""
    folder = work / "describe"
    shutil.copytree(ROOT / "catalog" / "describe", folder,
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    manifest = folder / "function.yaml"
    manifest.write_text(manifest.read_text().replace(f"version: {DESCRIBE}", "version: 1.2.0", 1))
    packed = pack(folder, work / "describe.tar.gz")
    key = load_private_key(hub.data_dir / "keys" / "library.key")
    upload = Upload("library", "describe", manifest.read_text(),
                    (work / "describe.tar.gz").read_bytes(),
                    envelope_for("library/describe@1.2.0", packed.digest, key))
    response = httpx.post(hub.url + upload.path, files=upload.files(),
                          headers=auth(hub.admin_token), timeout=30)
    assert response.status_code == 201, response.text


@pytest.fixture(scope="module")
def live_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    root = tmp_path_factory.mktemp("browser")
    hub = start_hub(root / "hub", seed=True)
    try:
        _publish_describe_1_2(hub, root)
        yank = f"{hub.url}/api/v1/functions/library/describe/versions/{DESCRIBE}/yank"
        response = httpx.post(yank, json={"reason": YANK_REASON}, headers=auth(hub.admin_token))
        assert response.status_code == 200, response.text
        with httpx.Client(base_url=hub.url, timeout=30) as client:
            mallory = make_publisher(client, hub.admin_token, "mallory", root / "work")
            publish_with_readme(mallory, "evil", "1.0.0", EVIL_README)
        yield hub
    finally:
        hub.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_file(CHROMIUM, "Debian's chromium")
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Tab:
    """One browser page on the hub that records console errors and takes numbered shots."""

    def __init__(self, context: BrowserContext, shots: Path) -> None:
        self.context = context
        context.set_default_timeout(TIMEOUT_MS)
        self.page: Page = context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.shots = shots
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                     else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def shot(self, name: str) -> None:
        self.shots.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)

    def results(self) -> list[str]:
        return self.page.locator(".result h3 a").all_inner_texts()


@pytest.fixture
def tab(browser: Browser, live_hub: HubProcess, tmp_path: Path) -> Iterator[Tab]:
    context = browser.new_context(base_url=live_hub.url)
    tab = Tab(context, tmp_path / "screenshots")
    yield tab
    context.close()


def test_search_filter_open_switch_versions_and_copy(tab: Tab, live_hub: HubProcess) -> None:
    """Acceptance 1: the whole way from the home page to a copied install command."""
    page = tab.page
    page.goto("/")
    # the seeded catalog (functions and feature sets) and the one function the fixture adds
    expect(page.locator("#results h2")).to_have_text(f"{SEEDED + 1} functions")
    tab.shot("1-home")

    page.fill("#q", "dataset")  # search as you type: no submit needed
    page.wait_for_function("() => location.search === '?q=dataset'")
    found = tab.results()
    assert "library/load-dataset" in found and "library/describe" in found and len(found) < 13
    tab.shot("2-search")

    page.fill("#q", "")
    page.wait_for_function("() => location.search === ''")
    page.select_option("#category", "data-analysis")
    page.wait_for_function("() => location.search === '?category=data-analysis'")
    assert tab.results() == ["library/describe"]
    tab.shot("3-category")

    page.get_by_role("link", name="library/describe").click()
    page.wait_for_url("**/library/describe")
    expect(page.locator("h1")).to_have_text("library/describe 1.2.0")
    yanked = page.locator("tr.is-yanked")
    expect(yanked).to_have_count(1)
    expect(yanked).to_contain_text(DESCRIBE)
    expect(yanked.locator(".badge.yanked")).to_have_text("yanked")
    expect(yanked).to_contain_text(YANK_REASON)
    tab.shot("4-function")

    page.select_option("#version-select", DESCRIBE)
    page.wait_for_url(f"**/library/describe/{DESCRIBE}")
    expect(page.locator("h1")).to_have_text(f"library/describe {DESCRIBE}")
    expect(page.locator("#yanked-notice")).to_contain_text(f"This version was yanked: "
                                                           f"{YANK_REASON}")
    tab.shot("5-yanked-version")

    tab.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_hub.url)
    copy = page.locator("button[data-copy='snippet-install']")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == f"hub install hub://describe:{DESCRIBE}"
    tab.shot("6-copied")
    assert tab.errors == []
    assert sorted(p.name for p in tab.shots.iterdir()) == [
        "1-home.png", "2-search.png", "3-category.png", "4-function.png",
        "5-yanked-version.png", "6-copied.png"]


def test_readme_scripts_and_javascript_links_do_nothing(tab: Tab) -> None:
    """Acceptance 2: a README's `<script>` and `javascript:` links neither run nor link."""
    page = tab.page
    page.goto("/mallory/evil")
    expect(page.locator("button[data-copy]").first).to_be_visible()  # the page's own JS ran
    readme = page.locator(".readme")
    expect(readme).to_contain_text("<script>window.__pwned")  # shown as text
    assert readme.locator("script, iframe, img, [onerror]").count() == 0
    hrefs = readme.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert hrefs == ["https://example.org/docs"]
    for text in ("click me", "raw link", "shouting"):
        page.get_by_text(text).click()
    assert page.url.endswith("/mallory/evil")
    assert page.evaluate("window.__pwned") is None
    assert page.title() != "pwned" and tab.dialogs == []
    tab.shot("evil-readme")
    assert tab.errors == []


def test_keyboard_only_from_search_to_copy(tab: Tab) -> None:
    page = tab.page
    page.goto("/")

    def tab_to(predicate: str, limit: int = 40) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate(f"() => {{ const e = document.activeElement; return {predicate}; }}"):
                return
        raise AssertionError(f"no focusable element where {predicate}")

    tab_to("e.classList.contains('skip')")
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#main"
    tab_to("e.id === 'q'")
    page.keyboard.type("drift")
    page.wait_for_function("() => location.search === '?q=drift'")
    tab_to("e.textContent === 'library/drift-detect'")
    page.keyboard.press("Enter")
    page.wait_for_url("**/library/drift-detect")
    tab_to("e.dataset.copy === 'snippet-install'")
    page.keyboard.press("Enter")
    expect(page.locator("button[data-copy='snippet-install']")).to_have_text("Copied")
    tab.shot("keyboard")


def test_api_docs_render_from_the_hub_alone(tab: Tab, live_hub: HubProcess) -> None:
    """/docs on an air-gapped hub: Swagger UI renders the API while every request the page
    makes, scripts and styles included, goes to the hub itself."""
    requested: list[str] = []
    tab.page.on("request", lambda request: requested.append(request.url))
    tab.page.route(lambda url: not url.startswith(live_hub.url), lambda route: route.abort())
    tab.page.goto("/docs")
    expect(tab.page.locator(".swagger-ui .info .title")).to_contain_text("fnhub")
    expect(tab.page.locator(".opblock-summary-path",
                            has_text="/api/v1/functions/{ns}/{name}/resolve")).to_be_visible()
    tab.shot("api-docs")
    elsewhere = [url for url in requested if not url.startswith(live_hub.url)]
    assert elsewhere == [] and tab.errors == [], (elsewhere, tab.errors)
    assert any(url.endswith("/-/docs/swagger-ui-bundle.js") for url in requested)


def test_phone_width_and_labels(browser: Browser, live_hub: HubProcess, tmp_path: Path) -> None:
    context = browser.new_context(base_url=live_hub.url, viewport=PHONE, is_mobile=True)
    tab = Tab(context, tmp_path / "screenshots")
    try:
        for path, name in (("/", "home"), ("/?q=data&category=data-preparation", "filtered"),
                           ("/library/describe", "function"), (f"/library/describe/{DESCRIBE}",
                                                              "version"),
                           ("/library", "namespace"), ("/library/nope", "not-found")):
            tab.page.goto(path)
            width = tab.page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], (path, width)
            unlabelled = tab.page.evaluate(
                "[...document.querySelectorAll('input, select, textarea')]"
                ".filter(e => e.type !== 'hidden' && e.labels.length === 0).map(e => e.name)")
            assert unlabelled == [], path
            nameless = tab.page.evaluate(
                "[...document.querySelectorAll('a[href], button:not([hidden])')]"
                ".filter(e => !e.textContent.trim() && !e.getAttribute('aria-label')).length")
            assert nameless == 0, path
            tab.shot(f"phone-{name}")
    finally:
        context.close()
