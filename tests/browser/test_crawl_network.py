"""The crawl's request accounting (browser_crawl.py), without races: a tiny server on 127.0.0.1 holds
an image back until the test lets it go, so the crawl navigates away while that request is in flight
every time, and serves a page whose image is missing (a real 404).

The order of events is fixed by a `threading.Event`, a `threading.Condition` and Playwright's own waits, never by sleeping.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
from browser_crawl import NAVIGATION_ABORT, CrawlError, NetworkLedger, Verdict, classify, visit

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# `data:,` as the icon: otherwise Chromium asks this server for /favicon.ico, a 404 of no interest here
HELD_PAGE = b'<!doctype html><link rel="icon" href="data:,"><title>held</title><img src="/held.png">'
BROKEN_PAGE = b'<!doctype html><link rel="icon" href="data:,"><title>broken</title><img src="/missing.png">'
PNG = b"\x89PNG\r\n\x1a\n"  # never shown: the browser has aborted the request when the server sends it
BOUND_S = 10  # no wait in this file lasts longer, whatever the browser does


@dataclass
class HeldServer:
    base: str = ""
    release: threading.Event = field(default_factory=threading.Event)  # the test lets held images go
    asked: set[str] = field(default_factory=set)  # paths of held images the browser asked for
    changed: threading.Condition = field(default_factory=threading.Condition)

    def wait_asked(self, path: str) -> bool:
        """True once the browser has asked for `path` (and the server holds it)."""
        with self.changed:
            return self.changed.wait_for(lambda: path in self.asked, timeout=BOUND_S)


@pytest.fixture
def server() -> Iterator[HeldServer]:
    held = HeldServer()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.startswith("/held") and self.path.endswith(".png"):
                with held.changed:
                    held.asked.add(self.path)
                    held.changed.notify_all()
                held.release.wait(BOUND_S)  # bounded: a server thread never outlives the test by much
                self.reply(PNG, "image/png")
            elif self.path == "/held/":
                self.reply(HELD_PAGE, "text/html")
            elif self.path == "/broken/":
                self.reply(BROKEN_PAGE, "text/html")
            else:
                self.send_error(404)

        def reply(self, body: bytes, content_type: str) -> None:
            try:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the browser gave up on the request (the abort under test)
                pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    held.base = f"http://127.0.0.1:{httpd.server_address[1]}/"
    thread = threading.Thread(target=httpd.serve_forever, name="held-server", daemon=True)
    thread.start()
    try:
        yield held
    finally:
        held.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=BOUND_S)


@pytest.fixture
def tab(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(BOUND_S * 1000)
    try:
        yield context.new_page()
    finally:
        context.close()


def open_held_page(page: Page, ledger: NetworkLedger, server: HeldServer) -> int:
    """Begin a visit of /held/ and return once its image request is in flight (held by the server)."""
    number = ledger.begin(server.base + "held/")
    page.goto(server.base + "held/", wait_until="domcontentloaded")  # `load` would wait for held.png
    assert server.wait_asked("/held.png"), "the browser never asked for held.png"
    return number


def test_crawl_ignores_its_own_navigation_abort_but_fails_on_a_real_404(tab: Page, server: HeldServer) -> None:
    ledger = NetworkLedger(tab, server.base)
    try:
        held = open_held_page(tab, ledger, server)
        # the crawl navigates on while held.png is still held: Chromium aborts it when /broken/ commits
        broken = visit(tab, server.base + "broken/", ledger)
        server.release.set()
        ledger.settle()  # every request of both visits has ended
    finally:
        ledger.close()

    # the abort is the held page's (not the next page's, where it arrived), and ignored
    assert ledger.visits[held].ignored == [
        f"{server.base}held.png ({NAVIGATION_ABORT}, after the crawl had left the page)"
    ]
    assert ledger.visits[held].failed == []
    # the missing image is a failure of the page that referenced it, and nothing else is
    assert broken.failed_requests == [f"{server.base}missing.png (HTTP 404)"]
    assert broken.ignored_requests == []
    assert broken.status == 200 and broken.title == "broken"


def test_a_request_belongs_to_the_document_that_issued_it(tab: Page, server: HeldServer) -> None:
    """A request the old page starts after the crawl has begun to leave it (before the next page's
    document commits) is still the old page's: its abort is ignored, not blamed on the next page."""
    ledger = NetworkLedger(tab, server.base)
    try:
        held = open_held_page(tab, ledger, server)
        broken = ledger.begin(server.base + "broken/")  # the crawl has decided to move on ...
        tab.evaluate("() => { window.late = new Image(); window.late.src = '/held-late.png'; }")
        assert server.wait_asked("/held-late.png"), "the browser never asked for held-late.png"
        tab.goto(server.base + "broken/", wait_until="load")  # ... and does
        server.release.set()
        ledger.settle()
    finally:
        ledger.close()

    assert sorted(ledger.visits[held].ignored) == [
        f"{server.base}{name} ({NAVIGATION_ABORT}, after the crawl had left the page)"
        for name in ("held-late.png", "held.png")
    ]
    assert ledger.visits[held].failed == []
    assert ledger.visits[broken].failed == [f"{server.base}missing.png (HTTP 404)"]
    assert ledger.visits[broken].ignored == []


def test_settle_names_the_requests_in_flight_instead_of_hanging(tab: Page, server: HeldServer) -> None:
    ledger = NetworkLedger(tab, server.base)
    try:
        held = open_held_page(tab, ledger, server)
        with pytest.raises(CrawlError, match=r"held/: requests still in flight after 1 s: .*held\.png"):
            ledger.settle(held, timeout_s=1)
    finally:
        server.release.set()
        ledger.close()


@pytest.mark.parametrize(
    ("failure", "status", "page_left", "verdict"),
    [
        (NAVIGATION_ABORT, None, True, "ignored"),  # the crawl navigated on: its own doing
        (NAVIGATION_ABORT, None, False, "failed"),  # the page cancelled its own request
        ("net::ERR_CONNECTION_REFUSED", None, True, "failed"),  # not an abort, whenever it ends
        ("net::ERR_FILE_NOT_FOUND", None, False, "failed"),
        (None, 404, True, "failed"),  # a real 404 is the site's fault, even after the crawl moved on
        (None, 500, False, "failed"),
        (None, 200, True, "ok"),
        (None, 304, False, "ok"),
    ],
)
def test_classify(failure: str | None, status: int | None, page_left: bool, verdict: Verdict) -> None:
    assert classify(failure=failure, status=status, page_left=page_left) == verdict
