"""What a reader sees: results pages that read as a report, figures in the site's language, an
errata page read by verdict, and accessibility (axe-core) of every page type, in light and dark mode.

axe-core is vendored (tests/browser/vendor/axe-core/axe.min.js, 4.10.3, MPL-2.0): CI has no
internet, and the file is injected into the page under test, never served by the site.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"

PAGE_TYPES = {"home": "", "chapter": "draft-000/math/", "results": "results/cnn/", "errata": "errata/",
              "notebook": "notebooks/cnn/"}

# Violations of the theme's own markup (Material for MkDocs), not of ours: (rule, selector of the
# node, why it is accepted). Anything else serious or critical fails the test.
THEME_OWN = [
    ("aria-dialog-name", ".md-search",
     "Material's search overlay is a role=dialog without an accessible name; its input has a label"),
    ("color-contrast", ".md-copyright",
     "Material's footer line ('Made with Material for MkDocs'): #7f7f7f on #171717 is 4.47:1, just under 4.5:1"),
]


def _own(violation: dict[str, Any]) -> list[str]:
    """The nodes of a violation that are ours (not covered by THEME_OWN)."""
    ours = []
    for node in violation["nodes"]:
        target = " ".join(str(t) for t in node["target"])
        if not any(violation["id"] == rule and selector in target for rule, selector, _ in THEME_OWN):
            ours.append(f"{target}: {node['html'][:160]} | {(node.get('failureSummary') or '')[:240]}")
    return ours


# Material's navigation sidebar is the same on every page, theme markup only, and the largest part
# of each page: left out of the scan to keep the suite fast (the header, footer and search are kept)
PAGE_CONTEXT = "{exclude: [['.md-sidebar--primary']]}"


def run_axe(page, context: str = PAGE_CONTEXT, rules: str = "") -> list[dict[str, Any]]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    options = f"{{resultTypes: ['violations']{', runOnly: ' + rules if rules else ''}}}"
    result = page.evaluate(f"axe.run({context}, {options})")
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]


def set_scheme(page, scheme: str) -> None:
    """What Material's palette toggle does: the scheme is an attribute of <body> that its CSS follows."""
    value = "slate" if scheme == "dark" else "default"
    # Material fades colours over 125 ms; axe must see the final ones, not a mix of the two schemes
    page.add_style_tag(content="*, *::before, *::after { transition: none !important; }")
    page.evaluate(f"document.body.setAttribute('data-md-color-scheme', '{value}')")
    page.evaluate("new Promise(requestAnimationFrame)")


UNREACHABLE_SCROLLERS = """() => [...document.querySelectorAll('article *')].filter(e => {
    const style = getComputedStyle(e);
    const scrolls = (e.scrollWidth > e.clientWidth + 1 && /(auto|scroll)/.test(style.overflowX))
                 || (e.scrollHeight > e.clientHeight + 1 && /(auto|scroll)/.test(style.overflowY));
    return scrolls && e.tabIndex < 0 && !e.querySelector('a[href], button, input, [tabindex]');
}).map(e => e.className || e.tagName)"""

TEXT_LINK_DECORATIONS = """() => [...document.querySelectorAll('article p a:not(.headerlink), article td a')]
    .filter(a => a.textContent.trim() && !a.querySelector('.living-claim, .living-missing'))
    .map(a => getComputedStyle(a).textDecorationLine)"""


@pytest.mark.parametrize("kind", list(PAGE_TYPES))
def test_axe_finds_no_serious_violation_of_our_markup(page, goto, artifacts: Path, kind: str) -> None:
    """axe in both schemes; and, on the same page, what axe only hints at: every region that scrolls is
    reachable by Tab and labelled, and links in text are underlined (not told apart by colour only)."""
    goto(PAGE_TYPES[kind])
    found = {}
    for scheme in ("light", "dark"):
        set_scheme(page, scheme)
        violations = run_axe(page)
        report = {v["id"]: [" ".join(map(str, n["target"])) for n in v["nodes"]] for v in violations}
        (artifacts / f"axe-{kind}-{scheme}.json").write_text(json.dumps(report, indent=2, ensure_ascii=False),
                                                             encoding="utf-8")
        ours = {v["id"]: _own(v) for v in violations}
        found |= {f"{scheme}: {rule}": nodes for rule, nodes in ours.items() if nodes}
    assert not found, json.dumps(found, indent=2, ensure_ascii=False)
    assert not page.evaluate(UNREACHABLE_SCROLLERS)
    labelled = page.locator("[data-living-scroll]")
    assert all(labelled.nth(i).get_attribute("aria-label") for i in range(labelled.count()))
    decorations = page.evaluate(TEXT_LINK_DECORATIONS)
    if kind in ("home", "results", "errata"):  # the pages with links inside text
        assert decorations
    assert all("underline" in d for d in decorations), decorations


def test_axe_runs_and_would_see_a_violation(page, goto) -> None:
    """The check can fail: badges given the old colours (3.8:1 and 4.3:1 on white, 3.8:1 on slate) are reported."""
    goto("draft-000/math/")
    page.add_style_tag(content=".living-claim.living-contradictory { color: #e65100 !important; }"
                               ".living-value { color: #526cfe !important; }")
    for scheme in ("light", "dark"):
        set_scheme(page, scheme)
        found = run_axe(page, "{include: [['.living-claim'], ['.living-value']]}", "['color-contrast']")
        assert [v["id"] for v in found if _own(v)] == ["color-contrast"], (scheme, found)


def test_tab_reaches_a_scrolling_table(page, goto) -> None:
    """On a narrow screen the errata's tables scroll sideways; Tab stops on them (living-article.js)."""
    page.set_viewport_size({"width": 560, "height": 900})
    goto("errata/")
    assert page.locator("[data-living-scroll]").count() >= 1
    assert not page.evaluate(UNREACHABLE_SCROLLERS)
    page.focus("h2#verdict-differs a.headerlink")  # from the first verdict's heading, Tab goes on into its tables
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.hasAttribute('data-living-scroll')"):
            break
    else:
        pytest.fail("Tab never reached a scrollable region on errata/")
    page.keyboard.press("ArrowRight")  # and the arrow keys scroll it (smoothly: wait for the first pixels)
    page.wait_for_function("document.activeElement.scrollLeft > 0", timeout=5_000)


def test_results_page_reads_as_a_report(goto) -> None:
    page = goto("results/cnn/")
    headings = page.locator("article h2").all_inner_texts()
    headings = [h.strip().rstrip("¶").strip() for h in headings]
    assert headings[0] == "文章中的数值与核对", headings
    # the main figure and the key metrics come right after the claims
    assert headings[1:3] == ["训练过程：损失与准确率", "主要指标"], headings
    for heading in headings:  # readers' titles, not identifiers
        assert not heading.startswith(("表：", "图：", "输出：", "结构图：")), heading
    key_metrics = page.locator("article h2:has-text('主要指标')").locator("xpath=following-sibling::*[1]").inner_text()
    assert "测试准确率" in key_metrics and "test_accuracy" not in key_metrics
    # machine and implementation details: one collapsed block at the end
    details = page.locator("article details:has(> summary:has-text('运行细节'))")
    assert details.count() == 1
    assert details.get_attribute("open") is None
    assert not details.locator("text=缓存键").first.is_visible()
    for machine in ("内存分配器设置", "CUDA 图", "卷积 → 池化 → ReLU 的本机内核"):
        assert details.locator(f"strong:text-is('{machine}')").count() == 1, machine
    details.locator("summary").first.click()
    assert details.locator("text=缓存键").first.is_visible()


def test_figure_text_in_the_site_language(goto) -> None:
    page = goto("results/cnn/")
    figure = page.locator("article img[src$='confusion.png']")
    alt = figure.get_attribute("alt")
    assert alt == "测试集混淆矩阵：行为真实数字，列为预测数字，格中为图片张数。"
    caption = page.locator("article p.living-caption", has_text=alt)
    assert caption.count() == 1 and caption.first.is_visible()
    assert page.locator("article h2", has_text="哪些数字被认错：混淆矩阵").count() == 1
    # the figure loads lazily (loading=lazy), when it nears the viewport: after the page's load event, so
    # bring it into view and wait for it; a broken image never gets a width and times out here
    figure.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 100", arg=figure.element_handle())
    # the runner drew its Chinese text with a CJK font: matplotlib warns of no missing glyph
    details = page.locator("article details:has(> summary:has-text('运行细节'))")
    assert "missing from font" not in (details.text_content() or "")
    font = details.locator("tr:has(td:text-is('图中文字的字体')) td:nth-child(2)")  # in the provenance and the key
    assert font.count() == 1 and font.text_content() not in ("", "none"), font.all_text_contents()


def test_errata_rows_name_what_they_check(goto) -> None:
    page = goto("errata/")
    lstm_sections = page.locator("article h3", has_text="LSTM")
    assert lstm_sections.count() >= 1
    weights = page.locator("article p.living-statement", has_text="输入门的权重矩阵为")
    # quoted once per group (a group is one verdict's rows of one statement), never once per row
    assert 1 <= weights.count() <= 2
    parts: list[str] = []
    for i in range(weights.count()):
        table = weights.nth(i).locator("xpath=following-sibling::*[1]").locator("table").first
        if not table.count():
            table = weights.nth(i).locator("xpath=following-sibling::table[1]")
        parts += [cell.strip() for cell in table.locator("tbody tr td:first-child").all_inner_texts()]
    assert len(parts) == 4, parts
    assert len(set(parts)) == 4, parts  # four gates, four different rows
    for gate in ("输入门", "遗忘门", "隐藏状态", "输出门"):
        assert sum(gate in p for p in parts) == 1, (gate, parts)


def test_errata_reads_by_verdict_without_javascript(browser, site_url: str) -> None:
    context = browser.new_context(java_script_enabled=False, base_url=site_url, locale="zh-CN")
    try:
        page = context.new_page()
        page.goto("errata/")
        headings = [h.strip().rstrip("¶").strip() for h in page.locator("article h2").all_inner_texts()]
        verdicts = [h for h in headings if h.startswith(("✗", "⚠", "?", "✓"))]
        assert verdicts and verdicts[0].startswith("✗ 不符"), headings
        order = [v.split(" ")[0] for v in verdicts]
        assert order == sorted(order, key="✗⚠?✓".index), order
        first_table = page.locator("article h2#verdict-differs ~ table").first
        assert first_table.is_visible() and first_table.locator("tbody tr").count() >= 1
        assert page.locator("article td a[href='#verdict-differs']").count() == 1  # the totals link to the sections
    finally:
        context.close()


@pytest.mark.parametrize(("name", "path"), [("results-cnn", "results/cnn/"), ("errata", "errata/")])
def test_report_screenshots(page, goto, artifacts: Path, name: str, path: str) -> None:
    page.set_viewport_size({"width": 1280, "height": 1800})
    goto(path)
    for scheme in ("light", "dark"):
        set_scheme(page, scheme)
        out = artifacts / f"{name}-{scheme}.png"
        out.unlink(missing_ok=True)
        page.screenshot(path=str(out), full_page=True)
        data = out.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000, (scheme, len(data))
