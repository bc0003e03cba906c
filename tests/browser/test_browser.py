"""The built site in headless Chromium: diagrams, formulas, console, search, dark mode, links, screenshots.

Fixtures (the served site, the browser, the crawl of every reachable page) are in conftest.py.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urldefrag

import pytest

NAV_PAGES = [
    "",
    *(f"draft-000/{p}" for p in ("", "background/", "algorithms/", "math/", "project/", "applications/",
                                 "summary/", "appendix/")),
    *(f"draft-001/{p}" for p in ("", "concepts/", "algorithm/", "math/", "project/", "applications/",
                                 "outlook/", "resources/", "summary/", "faq/")),
    "results/",
    "errata/",
]


def test_crawl_reaches_every_page_in_the_nav(crawl) -> None:
    visited = {crawl.relative(url) for url in crawl.pages}
    assert set(NAV_PAGES) <= visited, sorted(set(NAV_PAGES) - visited)
    # the generated pages: one per runner, plus the run report and the drift page
    assert {"results/activations/", "results/cnn/", "results/report/", "results/drift/"} <= visited


def test_mermaid_block_in_the_article_becomes_svg(crawl) -> None:
    concepts = crawl.page("draft-001/concepts/")
    assert concepts.rendered, "the diagram was not drawn within 15 s"
    assert len(concepts.diagrams) == 1
    diagram = concepts.diagrams[0]
    assert diagram["svg"] and not diagram["error"], diagram
    assert diagram["width"] > 100 and diagram["height"] > 100, diagram
    for label in ("数据层", "模型层", "推理层", "模型执行"):
        assert label in diagram["text"], (label, diagram["text"])


def test_generated_architecture_diagram_becomes_svg(crawl) -> None:
    project = crawl.page("draft-000/project/")
    assert project.rendered, "the diagram was not drawn within 15 s"
    assert len(project.diagrams) == 1
    diagram = project.diagrams[0]
    assert diagram["svg"] and not diagram["error"], diagram
    assert diagram["width"] > 100 and diagram["height"] > 100, diagram
    for label in ("conv1: Conv2d", "fc2: Linear", "1×10"):
        assert label in diagram["text"], (label, diagram["text"])


def test_every_diagram_on_the_site_becomes_svg(crawl) -> None:
    problems = [
        f"{crawl.relative(url)}: {diagram['text'][:80]!r}"
        for url, visit in crawl.pages.items()
        for diagram in visit.diagrams
        if not diagram["svg"] or diagram["error"]
    ]
    assert not problems, problems
    assert sum(len(visit.diagrams) for visit in crawl.pages.values()) >= 2


def test_formulas_are_typeset(crawl) -> None:
    math = crawl.page("draft-000/math/")
    assert math.rendered, f"formulas still untypeset after 15 s: {math.untypeset[:5]}"
    assert math.formulas >= 10 and math.typeset == math.formulas
    problems = [
        f"{crawl.relative(url)}: {len(visit.untypeset)} untypeset {visit.untypeset[:3]}, "
        f"TeX errors {visit.math_errors[:3]}"
        for url, visit in crawl.pages.items()
        if visit.untypeset or visit.math_errors
    ]
    assert not problems, problems


def test_formulas_show_no_raw_tex(goto) -> None:
    page = goto("draft-000/math/")
    visible = page.locator("article").inner_text()
    for raw in ("\\frac", "\\(", "\\[", "\\sum", "\\sigma"):
        assert raw not in visible, f"raw TeX {raw!r} visible on draft-000/math/"
    box = page.locator(".arithmatex mjx-container").first.bounding_box()
    assert box and box["width"] > 5 and box["height"] > 5  # drawn with the vendored fonts, not empty


def test_no_console_errors_on_any_page(crawl) -> None:
    problems = {
        crawl.relative(url): [m for m in visit.console if m.startswith("error")] + visit.page_errors
        for url, visit in crawl.pages.items()
    }
    problems = {page: found for page, found in problems.items() if found}
    assert not problems, problems


def test_no_failed_or_third_party_requests(crawl) -> None:
    # MathJax, Mermaid, fonts and search are served by the site itself: it works offline
    failed = {crawl.relative(url): visit.failed_requests for url, visit in crawl.pages.items() if visit.failed_requests}
    assert not failed, failed
    third = sorted({request for visit in crawl.pages.values() for request in visit.third_party_requests})
    assert not third, third


def test_no_broken_internal_link(crawl) -> None:
    broken = [crawl.relative(url) for url, visit in crawl.pages.items() if visit.status != 200]
    broken += [f"{crawl.relative(url)} (HTTP {status})" for url, status in crawl.resources.items() if status != 200]
    referrers = {
        crawl.relative(urldefrag(absolute)[0]): crawl.relative(url)
        for url, visit in crawl.pages.items()
        for _kind, _written, absolute in visit.refs
    }
    assert not broken, [f"{target} (linked from {referrers.get(target.split(' ')[0], '?')})" for target in broken]
    assert len(crawl.resources) >= 10  # stylesheets, scripts, figures: the check saw them
    assert any(url.endswith(".png") for url in crawl.resources)  # a runner's figure


def test_no_link_to_a_missing_anchor(crawl) -> None:
    ids = {url: set(visit.ids) for url, visit in crawl.pages.items()}
    broken = set()
    checked = 0
    for url, visit in crawl.pages.items():
        for kind, written, absolute in visit.refs:
            target, fragment = urldefrag(absolute)
            if kind != "a" or not fragment or target not in ids:
                continue
            checked += 1
            if unquote(fragment) not in ids[target]:
                broken.add(f"{crawl.relative(url)}: {written}")
    assert not broken, sorted(broken)
    assert checked >= 50  # table-of-contents entries, claims linking to the errata


def test_external_links_summary(crawl, artifacts: Path) -> None:
    """External links are listed, not fetched (the tests run offline)."""
    lines = [f"{host}: {len(urls)} link(s), e.g. {urls[0]}" for host, urls in sorted(crawl.external_links.items())]
    (artifacts / "external-links.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    assert "arxiv.org" in crawl.external_links  # the errata cites its sources


def test_chinese_search_finds_the_right_page(page) -> None:
    page.goto("")
    query = page.locator("input.md-search__input")
    query.click()
    query.press_sequentially("反向传播", delay=20)
    # Playwright inserts CJK text without key events; a real keyboard (IME) ends with a keyup, which
    # is what Material's search listens to
    query.press("End")
    results = page.locator(".md-search-result__list a.md-search-result__link")
    target = page.locator(".md-search-result__list a.md-search-result__link[href*='draft-001/math/']")
    target.first.wait_for(state="attached")
    meta = page.locator(".md-search-result__meta").inner_text()
    assert "没有找到" not in meta, meta
    hrefs = [results.nth(i).get_attribute("href") for i in range(results.count())]
    assert any("draft-001/math/" in href for href in hrefs), hrefs
    target.first.click()
    page.wait_for_url("**/draft-001/math/**")
    assert "反向传播" in page.locator("article").inner_text()


def test_dark_mode_toggle(page) -> None:
    page.goto("")
    body = page.locator("body")
    assert body.get_attribute("data-md-color-scheme") == "default"
    light = page.evaluate("getComputedStyle(document.body).backgroundColor")

    page.locator("label[for='__palette_1']").click()
    page.wait_for_function("document.body.dataset.mdColorScheme === 'slate'")
    dark = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert dark != light and luminance(dark) < 0.2 < luminance(light), (light, dark)

    page.reload()  # the choice is remembered
    assert body.get_attribute("data-md-color-scheme") == "slate"

    page.locator("label[for='__palette_0']").click()
    page.wait_for_function("document.body.dataset.mdColorScheme === 'default'")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == light


def luminance(css_color: str) -> float:
    red, green, blue = (int(part) for part in css_color[css_color.index("(") + 1 : -1].split(",")[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


@pytest.mark.parametrize(
    ("name", "path"), [("home", ""), ("draft-000-math", "draft-000/math/"), ("draft-001-concepts", "draft-001/concepts/")]
)
def test_screenshot(page, goto, artifacts: Path, name: str, path: str) -> None:
    # tall enough for the whole navigation: Material's sidebar is sticky, so a full-page screenshot
    # shows only one viewport's height of it
    page.set_viewport_size({"width": 1280, "height": 2000})
    goto(path)
    out = artifacts / f"{name}.png"
    out.unlink(missing_ok=True)
    page.screenshot(path=str(out), full_page=True)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000, len(data)
