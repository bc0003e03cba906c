"""reportgen.inline: placeholder substitution in hand-written pages."""

from __future__ import annotations

from reportgen.api import Result
from reportgen.facts import Citation, Fact
from reportgen.inline import PageContext, references, substitute
from reportgen.render import RunnerView

PAGE = "draft-000/math.md"
SQUARE = '<span class="living-value" title="由运行器 alpha 计算">4.00</span>'
RAW = "{{ value: alpha.square | .2f }}"


def make_ctx(page: str = PAGE) -> PageContext:
    r = Result()
    r.metric("square", 4.0)
    r.metric("sneaky", "{{ value: alpha.square }}")
    r.check("square", source="toy §1", statement="x² = 4", article="4", computed=4.0)
    r.text("log", "see {{ value: alpha.square }}")
    record = {
        "runner": "alpha",
        "status": "ok",
        "result": r.to_json(),
        "provenance": {},
        "config": {},
        "key": "k",
    }
    fact = Fact(
        id="jia_phd",
        source="000 §1.2",
        statement="清华博士",
        verdict="differs",
        correction="博士学位获得于 <UC Berkeley>",
        citations=(
            Citation("Caffe & co", "https://arxiv.org/abs/1408.5093"),
            Citation("Wiki", "http://w.org/x"),
        ),
    )
    views = {"alpha": RunnerView("alpha", "阿尔法", "toy §1", record, "ran")}
    return PageContext(page, views, {"jia_phd": fact})


def test_prose_placeholders_are_replaced() -> None:
    ctx = make_ctx()
    out = substitute(f"平方是 {RAW}，文章说 4 {{{{claim: alpha.square}}}}。\n", ctx)
    claim = (
        '[<span class="living-claim living-agrees" title="相符">文章：4 · 本机：4.0 · ✓ 相符</span>]'
        "(../errata.md#claim-alpha-square)"
    )
    assert out == f"平方是 {SQUARE}，文章说 4 {claim}。\n"
    assert ctx.problems == []
    assert ctx.used == {"alpha"}


def test_code_is_left_alone() -> None:
    ctx = make_ctx()
    page = (
        f"a `{RAW}` b ``x {RAW} y``\n"
        f"```python\n{RAW}\n```\n"
        f"~~~\n{RAW}\n```\n~~~\n"
        f"````md\n```\n{RAW}\n```\n````\n"
        f"after {RAW}\n"
    )
    out = substitute(page, ctx)
    assert out == page.replace(f"after {RAW}", f"after {SQUARE}")
    assert ctx.problems == []


def test_indented_fence_in_a_list_is_code() -> None:
    page = f"- item\n\n    ```\n    {RAW}\n    ```\n\n{RAW}\n"
    assert substitute(page, make_ctx()) == page.replace(f"\n{RAW}\n", f"\n{SQUARE}\n")


def test_bad_references_are_visible_and_reported() -> None:
    ctx = make_ctx()
    page = (
        "A {{ value: nobody.x }} B {{ bogus: alpha.square }} C {{ value: alpha }} D {{ result: alpha.x }}\n"
    )
    out = substitute(page, ctx)
    assert out.count('<span class="living-missing">⚠ ') == 4
    assert "{{" not in out  # the marker shows the placeholder escaped, never live
    assert "&#123;&#123; value: nobody.x &#125;&#125;" in out
    assert len(ctx.problems) == 4
    assert all(p.startswith(f"{PAGE}: {{{{ ") for p in ctx.problems)
    assert "no runner 'nobody'" in ctx.problems[0]
    assert "unknown placeholder kind 'bogus'" in ctx.problems[1]
    assert "'alpha' needs the form runner.name" in ctx.problems[2]
    assert "'alpha.x' takes a runner name only" in ctx.problems[3]


def test_unknown_metric_is_reported_with_page() -> None:
    ctx = make_ctx("index.md")
    out = substitute("{{ value: alpha.nope }}", ctx)
    assert out.startswith('<span class="living-missing">')
    assert ctx.problems == [
        "index.md: {{ value: alpha.nope }}: runner alpha has no metric 'nope'; it has: sneaky, square"
    ]


def test_references_lists_kind_and_ref_outside_code() -> None:
    page = f"{RAW} {{{{ claim: alpha.square }}}}\n`{{{{ fact: hidden }}}}`\n```\n{{{{ table: a.b }}}}\n```\n{{{{ fact: jia_phd }}}}\n"
    assert references(page) == [("value", "alpha.square"), ("claim", "alpha.square"), ("fact", "jia_phd")]
    assert references("no placeholders here") == []


def test_fact_renders_correction_and_citations() -> None:
    ctx = make_ctx()
    out = substitute("清华博士 {{ fact: jia_phd }}。", ctx)
    assert out == (
        '清华博士 <span class="living-fact living-differs">✗ 史实有误：博士学位获得于 &lt;UC Berkeley&gt; '
        '<a href="https://arxiv.org/abs/1408.5093" title="Caffe &amp; co">[1]</a> '
        '<a href="http://w.org/x" title="Wiki">[2]</a></span>。'
    )
    substitute("{{ fact: nope }}", ctx)
    assert ctx.problems == [f"{PAGE}: {{{{ fact: nope }}}}: no fact 'nope' in the facts file"]


def test_inserted_content_is_not_substituted_again() -> None:
    ctx = make_ctx()
    value = substitute("{{ value: alpha.sneaky }}", ctx)
    assert (
        value
        == '<span class="living-value" title="由运行器 alpha 计算">&#123;&#123; value: alpha.square &#125;&#125;</span>'
    )
    text = substitute("{{ text: alpha.log }}\n", ctx)
    assert text == '```text title="log"\nsee {{ value: alpha.square }}\n```\n'
    assert ctx.problems == []


def test_custom_render_sees_spec() -> None:
    seen: list[tuple[str, str, str]] = []

    def render(kind: str, ref: str, spec: str, _ctx: PageContext) -> str:
        seen.append((kind, ref, spec))
        return "X"

    assert substitute("a {{value:r.m|.3e}} b {{ claims: r }}", make_ctx(), render) == "a X b X"
    assert seen == [("value", "r.m", ".3e"), ("claims", "r", "")]


def test_lone_backtick_does_not_hide_later_placeholders() -> None:
    ctx = make_ctx()
    out = substitute(f"A lone ` backtick.\n\n{RAW}\n\nThen `code`.\n", ctx)
    assert out == f"A lone ` backtick.\n\n{SQUARE}\n\nThen `code`.\n"


def test_indented_code_is_left_alone() -> None:
    ctx = make_ctx()
    page = (
        f"    {RAW}\n\n"  # code at the start of the page
        f"text\n\n    {RAW}\n    more\n\n"  # code after a blank line
        f"- item\n\n        {RAW}\n\n"  # 4 past the list item's content
        f'!!! note "t"\n\n    body\n\n        {RAW}\n\n'  # 4 past the admonition's body
        f"after {RAW}\n"
    )
    out = substitute(page, ctx)
    assert out == page.replace(f"after {RAW}", f"after {SQUARE}")
    assert ctx.problems == []


def test_container_bodies_are_prose() -> None:
    ctx = make_ctx()
    page = (
        f'!!! note "t"\n\n    a {RAW}\n\n'
        f'???+ note "t"\n    b {RAW}\n\n'
        f'=== "Tab"\n\n    c {RAW}\n\n'
        f"- item {RAW}\n\n    d {RAW}\n\n"
        f"1. item\n\n      e {RAW}\n\n"  # a list item holds 4 columns past its marker, as Python-Markdown reads it
        f"- x\n    - y\n\n        f {RAW}\n\n"
        f"text\n    g {RAW}\n"  # a lazy continuation of a paragraph is not code
    )
    out = substitute(page, ctx)
    assert out == page.replace(RAW, SQUARE)
    assert out.count(SQUARE) == 8
    assert ctx.problems == []


def test_fence_inside_an_admonition_is_code() -> None:
    fenced = f'!!! note "t"\n\n    ```\n    {RAW}\n    ```\n\n'
    assert substitute(f"{fenced}    {RAW}\n", make_ctx()) == f"{fenced}    {SQUARE}\n"


def test_html_comments_and_raw_code_are_left_alone() -> None:
    ctx = make_ctx()
    page = (
        "<!-- {{ value: nobody.x }} -->\n"
        f"a <!-- {RAW} --> b <code>{RAW}</code> c <pre>{RAW}</pre> {RAW}\n\n"
        "<!-- a comment\n\n{{ bogus: alpha.square }}\n\n-->\n"
        f"<pre>\n{RAW}\n\n</pre> {RAW}\n\n"
        f"!!! note\n\n    <!-- {RAW}\n    {RAW} -->\n"
    )
    out = substitute(page, ctx)
    assert out == page.replace(f"</pre> {RAW}\n", f"</pre> {SQUARE}\n", 2)
    assert ctx.problems == []
    assert references(page) == [("value", "alpha.square")] * 2


def test_unclosed_comment_is_text() -> None:
    # Python-Markdown shows an unclosed "<!--" as text, so what follows is still substituted
    assert substitute(f"<!-- no end\n\n{RAW}\n", make_ctx()) == f"<!-- no end\n\n{SQUARE}\n"


def test_placeholder_across_lines_is_a_one_line_problem() -> None:
    ctx = make_ctx()
    out = substitute("A {{ value:\n   nobody.x\n   | .2f }} B\n", ctx)
    assert out.startswith('A <span class="living-missing">')
    assert ctx.problems == [f"{PAGE}: {{{{ value: nobody.x | .2f }}}}: no runner 'nobody'; known: alpha"]
