"""The built site, served on 127.0.0.1 and opened in headless Chromium (Playwright driving the system browser).

The browser is found in this order: `$LIVING_CHROMIUM`, then `chromium`, `chromium-browser`,
`google-chrome` and `google-chrome-stable` on PATH, then a browser that `playwright install` put in
Playwright's own cache. Without Playwright or a browser every test here is skipped with the reason,
unless `LIVING_REQUIRE_BROWSER=1` (set by .ci/run), where they fail instead.

Every page reachable from the home page is visited once (`crawl`, shared by the tests): console
messages, page errors, failed and third-party requests, links, and the state of formulas and
diagrams are recorded, and written to `crawl.json` next to the screenshots in `$LIVING_TEST_ARTIFACTS`
(default `.living/test-artifacts/`). Visiting a page and judging its requests is `browser_crawl.py`:
the crawl waits for a page's requests to settle before it moves on, and ignores only the aborts its
own navigation caused (tested in test_crawl_network.py).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urldefrag, urlsplit

import pytest
from browser_crawl import RENDERED, NetworkLedger, PageVisit, visit

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",  # no update, sync or safe-browsing traffic on a closed network
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    # Only the local server resolves: the site must work offline, and a third-party request fails at once
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]

# Material renders Mermaid into a closed shadow root; open it so the tests can see the SVG.
OPEN_SHADOW_ROOTS = """
const attachShadow = Element.prototype.attachShadow;
Element.prototype.attachShadow = function (init) { return attachShadow.call(this, { ...init, mode: "open" }); };
"""

def locate_chromium() -> tuple[str | None, str]:
    """(executable, "") when a browser and Playwright are usable, else (None, why not)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return None, 'Playwright is not installed (python -m pip install -e ".[test]")'
    explicit = os.environ.get("LIVING_CHROMIUM")
    if explicit:
        if Path(explicit).is_file() and os.access(explicit, os.X_OK):
            return explicit, ""
        return None, f"LIVING_CHROMIUM={explicit} is not an executable file"
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found, ""
    cache = Path(os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or Path.home() / ".cache" / "ms-playwright")
    for candidate in sorted(cache.glob("chromium-*/chrome-linux*/chrome"), reverse=True):
        if os.access(candidate, os.X_OK):
            return str(candidate), ""
    return None, (
        "no Chromium found (install Debian's `chromium` package, or set LIVING_CHROMIUM to a Chromium "
        "or Chrome executable)"
    )


CHROMIUM, MISSING = locate_chromium()
REQUIRED = os.environ.get("LIVING_REQUIRE_BROWSER", "") not in ("", "0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CHROMIUM or REQUIRED:
        return
    skip = pytest.mark.skip(reason=f"browser tests skipped: {MISSING}")
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    out = Path(os.environ.get("LIVING_TEST_ARTIFACTS") or REPO / ".living" / "test-artifacts")
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM:
        pytest.fail(f"LIVING_REQUIRE_BROWSER is set but {MISSING}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def site_url(built_site: Path) -> Iterator[str]:
    """The built site served over HTTP on the loopback interface (a free port)."""
    handler = functools.partial(_QuietHandler, directory=str(built_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def new_context(browser: Browser, site_url: str) -> BrowserContext:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, color_scheme="light", locale="zh-CN", base_url=site_url
    )
    context.add_init_script(OPEN_SHADOW_ROOTS)
    context.set_default_timeout(15_000)
    return context


@pytest.fixture
def goto(page: Page) -> Callable[[str], Page]:
    """Open a path of the site and wait until its formulas are typeset and its diagrams drawn."""

    def open_rendered(path: str) -> Page:
        response = page.goto(path)
        assert response is not None and response.status == 200, (path, response and response.status)
        page.wait_for_function(RENDERED, arg=response.text().count('<pre class="mermaid">'))
        page.evaluate("document.fonts.ready.then(() => true)")
        return page

    return open_rendered


@pytest.fixture
def page(browser: Browser, site_url: str) -> Iterator[Page]:
    """A fresh page (own context, so no palette choice leaks between tests); fails on page errors."""
    context = new_context(browser, site_url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors during the test: {errors}"


@dataclass
class Crawl:
    base: str
    pages: dict[str, PageVisit] = field(default_factory=dict)  # by URL without fragment
    resources: dict[str, int] = field(default_factory=dict)  # other same-origin URLs -> HTTP status
    external_links: dict[str, list[str]] = field(default_factory=dict)  # host -> URLs linked to

    def page(self, path: str) -> PageVisit:
        return self.pages[self.base + path]

    def relative(self, url: str) -> str:
        return url[len(self.base) :] if url.startswith(self.base) else url


def is_page(url: str) -> bool:
    path = urlsplit(url).path
    return path.endswith("/") or path.endswith(".html")


@pytest.fixture(scope="session")
def crawl(browser: Browser, site_url: str, artifacts: Path) -> Crawl:
    """Visit every page reachable from the home page once; check every other same-origin URL they use."""
    started = time.monotonic()
    result = Crawl(base=site_url)
    context = new_context(browser, site_url)
    page = context.new_page()
    ledger = NetworkLedger(page, site_url)
    queue = [site_url]
    others: set[str] = set()
    try:
        while queue and len(result.pages) < 300:
            url = queue.pop(0)
            if url in result.pages:
                continue
            visit_ = visit(page, url, ledger)
            result.pages[url] = visit_
            for kind, _written, absolute in visit_.refs:
                target, _fragment = urldefrag(absolute)
                scheme = urlsplit(target).scheme
                if scheme not in ("http", "https"):
                    continue
                if not target.startswith(site_url):
                    if kind == "a":
                        host = urlsplit(target).hostname or "?"
                        links = result.external_links.setdefault(host, [])
                        if target not in links:
                            links.append(target)
                    continue
                if kind == "a" and is_page(target):
                    if target not in result.pages and target not in queue:
                        queue.append(target)
                else:
                    others.add(target)
        ledger.settle()  # every request of every page has ended, and been judged, before the context closes
        for url in sorted(others - set(result.pages)):
            result.resources[url] = context.request.get(url).status
    finally:
        ledger.close()
        context.close()
    report = {"seconds": round(time.monotonic() - started, 1), **asdict(result)}
    for visit_ in report["pages"].values():
        visit_.pop("ids")
        visit_.pop("refs")
    (artifacts / "crawl.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    return result
