"""Visiting one page of a served site in Chromium, and accounting for every request it makes.

Shared by the crawl in conftest.py and by test_crawl_network.py, which drives the same code against a
tiny server whose timing it controls. Playwright is imported lazily: this module is imported by
conftest.py, which must load (and skip the browser tests with the reason) where Playwright is missing.

Why the request accounting is more than a listener per visit: a page keeps issuing requests after its
`load` event (Chromium asks for the favicon only once the page has loaded), and when the crawl moves on
Chromium cancels what is still in flight with `net::ERR_ABORTED`. With listeners swapped per visit such
an abort was reported as a failure, and of the *next* page. So a `NetworkLedger` listens for the whole
crawl, gives each request to the page (visit) whose document issued it, waits for a page's requests to
settle before the crawl navigates on, and `classify` ignores only the aborts that the crawl's own
navigation caused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Frame, Page, Request, Response

# What Chromium reports for a request it cancelled (a navigation away, a removed element, a stop).
NAVIGATION_ABORT = "net::ERR_ABORTED"

# How long a page's requests may take to settle before the crawl fails instead of hanging.
SETTLE_TIMEOUT_S = 15.0

# True once every formula is typeset and every Mermaid block has become an SVG.
RENDERED = """
(expectedDiagrams) => {
  const formulas = [...document.querySelectorAll(".arithmatex")];
  const typeset = formulas.every((el) => el.querySelector("mjx-container"));
  const diagrams = [...document.querySelectorAll("div.mermaid")].filter(
    (el) => el.shadowRoot && el.shadowRoot.querySelector("svg"));
  return typeset && diagrams.length >= expectedDiagrams;
}
"""

# What a page holds after rendering: references to check, ids for fragments, formulas, diagrams.
INSPECT = """
() => {
  const refs = [];
  const add = (kind, el, url) => { if (url) refs.push([kind, el.getAttribute(kind === "a" || kind === "link" ? "href" : "src"), url]); };
  document.querySelectorAll("a[href]").forEach((el) => add("a", el, el.href));
  document.querySelectorAll("link[href]").forEach((el) => add("link", el, el.href));
  document.querySelectorAll("img[src]").forEach((el) => add("img", el, el.src));
  document.querySelectorAll("script[src]").forEach((el) => add("script", el, el.src));
  document.querySelectorAll("source[src], iframe[src]").forEach((el) => add("source", el, el.src));
  const ids = [...document.querySelectorAll("[id]")].map((el) => el.id)
    .concat([...document.querySelectorAll("a[name]")].map((el) => el.getAttribute("name")));
  const formulas = [...document.querySelectorAll(".arithmatex")];
  const raw = formulas.filter((el) => !el.querySelector("mjx-container"))
    .map((el) => el.textContent.trim().slice(0, 120));
  const diagrams = [...document.querySelectorAll("div.mermaid, pre.mermaid")].map((el) => {
    const svg = el.shadowRoot && el.shadowRoot.querySelector("svg");
    const labels = svg ? [...svg.querySelectorAll(".nodeLabel, .edgeLabel, text")].map((l) => l.textContent) : [];
    const text = (svg ? labels.join(" | ") : el.textContent).replace(/\\s+/g, " ").trim();
    const box = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
    return { svg: Boolean(svg), text: text.slice(0, 2000), width: box.width, height: box.height,
             error: Boolean(svg) && /Syntax error|Parse error/i.test(svg.textContent) };
  });
  return {
    title: document.title,
    refs, ids,
    formulas: formulas.length,
    typeset: formulas.length - raw.length,
    math_errors: [...document.querySelectorAll("mjx-merror")].map((el) => el.textContent.slice(0, 120)),
    untypeset: raw,
    diagrams,
  };
}
"""

Verdict = Literal["ok", "ignored", "failed"]


def classify(*, failure: str | None = None, status: int | None = None, page_left: bool = False) -> Verdict:
    """What the crawl makes of a request's end: `failure` is Playwright's `request.failure` (None when
    it got a response), `status` the HTTP status of its response, `page_left` whether the crawl had
    already navigated away from the page that issued it.

    Only an abort of a request whose page the crawl had left is the crawl's own doing; an abort while
    the page is still the crawl's is the page cancelling its own request, and an HTTP error is the
    site's fault whenever it arrives.
    """
    if status is not None and status >= 400:
        return "failed"
    if failure is None:
        return "ok"
    if failure == NAVIGATION_ABORT and page_left:
        return "ignored"
    return "failed"


class CrawlError(AssertionError):
    """The crawl could not account for a page's requests (they never settled)."""


@dataclass
class VisitRequests:
    """The requests one visit's document issued: failures ("URL (reason)"), aborts the crawl caused,
    and requests to other hosts."""

    url: str
    failed: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    third_party: list[str] = field(default_factory=list)


class NetworkLedger:
    """Every request of a page (a Playwright tab) over a whole crawl, each owned by the visit whose
    document issued it, so that a request that ends after the crawl moved on is still judged, and
    reported, as its own page's."""

    def __init__(self, page: Page, origin: str) -> None:
        self.page = page
        self.origin = origin.rstrip("/")
        self.visits: list[VisitRequests] = []
        # The visit whose document the main frame shows, and that document's URL (no fragment): until
        # the next visit's document commits, requests come from the previous page, not the next one.
        self.committed = -1
        self.committed_url = ""
        self.in_flight: dict[Request, int] = {}  # request -> owning visit
        page.on("framenavigated", self._on_navigated)
        page.on("request", self._on_request)
        page.on("response", self._on_response)
        page.on("requestfinished", self._on_finished)
        page.on("requestfailed", self._on_failed)

    def close(self) -> None:
        """Stop listening (before the context closes: closing aborts requests, and that is no finding)."""
        self.page.remove_listener("framenavigated", self._on_navigated)
        self.page.remove_listener("request", self._on_request)
        self.page.remove_listener("response", self._on_response)
        self.page.remove_listener("requestfinished", self._on_finished)
        self.page.remove_listener("requestfailed", self._on_failed)

    @property
    def current(self) -> int:
        """The visit the crawl is on (or navigating to)."""
        return len(self.visits) - 1

    def begin(self, url: str) -> int:
        """Record that the crawl is about to navigate to `url`: from now on the previous page is left."""
        self.visits.append(VisitRequests(url))
        return self.current

    def _owner(self, request: Request) -> int:
        try:
            navigation = request.is_navigation_request() and request.frame == self.page.main_frame
        except Exception:  # a service worker's request has no frame: it belongs to the page shown
            navigation = False
        if navigation:  # the crawl's goto: the document it fetches is the new visit's
            return self.current
        return self.committed if self.committed >= 0 else self.current

    def _on_navigated(self, frame: Frame) -> None:
        if frame != self.page.main_frame or self.committed == self.current:
            return
        document = frame.url.split("#", 1)[0]
        # a fragment change of the old page (Material's toc.follow) is no new document
        if document != self.committed_url:
            self.committed, self.committed_url = self.current, document

    def _on_request(self, request: Request) -> None:
        owner = self._owner(request)
        self.in_flight[request] = owner
        if not request.url.startswith(self.origin) and not request.url.startswith(("data:", "blob:")):
            self.visits[owner].third_party.append(request.url)

    def _on_finished(self, request: Request) -> None:
        self.in_flight.pop(request, None)

    def _on_response(self, response: Response) -> None:
        # the request is still in flight: `requestfinished` follows the response
        owner = self.in_flight.get(response.request, self.committed)
        verdict = classify(status=response.status)
        if verdict != "ok":
            self._record(owner, response.url, f"HTTP {response.status}", verdict, owner < self.current)

    def _on_failed(self, request: Request) -> None:
        owner = self.in_flight.pop(request, self.committed)
        if not request.url.startswith(self.origin):
            return  # another host: reported as a third-party request, and refused by design
        failure = request.failure or "failed without a reason"
        left = owner < self.current
        self._record(owner, request.url, failure, classify(failure=failure, page_left=left), left)

    def _record(self, owner: int, url: str, reason: str, verdict: Verdict, left: bool = False) -> None:
        requests = self.visits[owner]
        note = f"{url} ({reason}{', after the crawl had left the page' if left else ''})"
        if verdict == "ignored":
            requests.ignored.append(note)
        elif verdict == "failed":
            requests.failed.append(note)

    def pending(self, visit: int | None = None) -> list[str]:
        """URLs still in flight, of one visit or (None) of every visit."""
        return [request.url for request, owner in self.in_flight.items() if visit is None or owner == visit]

    def settle(self, visit: int | None = None, timeout_s: float = SETTLE_TIMEOUT_S) -> None:
        """Return once every request of `visit` (of every visit, when None) has finished or failed;
        raise CrawlError naming them after `timeout_s` rather than hang."""
        # No quiet window (networkidle would add half a second a page): a request the page starts
        # after this returns (the favicon, at times) and that the next navigation aborts is ignored
        # by `classify` as the crawl's own doing, and one that fails otherwise still lands on its page.
        deadline = time.monotonic() + timeout_s
        while pending := self.pending(visit):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                whose = self.visits[visit].url if visit is not None else "the crawl"
                raise CrawlError(f"{whose}: requests still in flight after {timeout_s:g} s: {pending}")
            # a wait on the page is what lets Playwright deliver the events that end the requests
            self.page.wait_for_timeout(min(25.0, remaining * 1000))


@dataclass
class PageVisit:
    url: str
    status: int
    title: str = ""
    console: list[str] = field(default_factory=list)  # "type: text"
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)  # "URL (reason)"
    ignored_requests: list[str] = field(default_factory=list)  # aborted by the crawl navigating on
    third_party_requests: list[str] = field(default_factory=list)
    rendered: bool = True  # formulas typeset and diagrams drawn before the timeout
    formulas: int = 0
    typeset: int = 0
    untypeset: list[str] = field(default_factory=list)
    math_errors: list[str] = field(default_factory=list)
    diagrams: list[dict] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    refs: list[list[str]] = field(default_factory=list)  # [kind, attribute as written, absolute URL]


def visit(page: Page, url: str, ledger: NetworkLedger) -> PageVisit:
    """Open `url`, wait until it has rendered and its requests have settled, and record what it did."""
    number = ledger.begin(url)
    console: list[str] = []
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        console.append(f"{message.type}: {message.text}")

    def on_error(error: Exception) -> None:
        errors.append(str(error))

    page.on("console", on_console)
    page.on("pageerror", on_error)
    try:
        response = page.goto(url, wait_until="load")
        status = response.status if response else 0
        body = response.text() if response and status == 200 else ""
        expected_diagrams = body.count('<pre class="mermaid">')
        rendered = True
        try:
            page.wait_for_function(RENDERED, arg=expected_diagrams, timeout=15_000)
        except Exception:  # recorded below: the tests report what did not render
            rendered = False
        state = page.evaluate(INSPECT)
        ledger.settle(number)  # before the crawl navigates on and Chromium cancels what is left
        page.wait_for_timeout(50)  # let late console messages arrive
    finally:
        page.remove_listener("console", on_console)
        page.remove_listener("pageerror", on_error)
    requests = ledger.visits[number]
    return PageVisit(
        url=url,
        status=status,
        title=state["title"],
        console=console,
        page_errors=errors,
        # the ledger's own lists, not copies: a request that ends after the crawl has moved on
        # (a late HTTP error) still lands on the page that issued it
        failed_requests=requests.failed,
        ignored_requests=requests.ignored,
        third_party_requests=requests.third_party,
        rendered=rendered,
        formulas=state["formulas"],
        typeset=state["typeset"],
        untypeset=state["untypeset"],
        math_errors=state["math_errors"],
        diagrams=state["diagrams"],
        ids=state["ids"],
        refs=state["refs"],
    )
