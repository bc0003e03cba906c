"""reportgen.markdown: escaping and the Markdown primitives every page is built from."""

from __future__ import annotations

import html

import pytest

from reportgen import markdown as md


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("<script>", "&lt;script&gt;"),
        ('"><img onerror=x>', "&quot;&gt;&lt;img onerror=x&gt;"),
        ("{{ value: a.b }}", "&#123;&#123; value: a.b &#125;&#125;"),
        ("$x$", "&#36;x&#36;"),
        ("*bold*", "&#42;bold&#42;"),
        ("|", "&#124;"),
        ("a\nb", "a<br>b"),
        ("a\r\nb", "a<br>b"),
        ("a & b", "a &amp; b"),
        ("[x](y)", "&#91;x&#93;(y)"),
        (3, "3"),
    ],
)
def test_text_escapes(raw: object, escaped: str) -> None:
    assert md.text(raw) == escaped


def test_text_round_trips_through_html_unescape() -> None:
    raw = '<a href="x">{{ value: a.b }}</a> $1 | *2* _3_ #4 `5`'
    assert html.unescape(md.text(raw)) == raw


def test_text_escapes_apostrophe_once() -> None:
    # not "&#x27;" re-escaped to "&&#35;x27;", which a browser shows literally
    assert md.text("it's #1") == "it&#39;s &#35;1"
    assert html.unescape(md.text("it's")) == "it's"


@pytest.mark.parametrize(
    ("value", "spec", "shown"),
    [
        (0.1192029, "", "0.119203"),
        (0.1192029, ".2f", "0.12"),
        (2, ".2f", "2.00"),
        (3, "", "3"),
        (0.0, "", "0"),
        (1e-7, "", "1e-07"),
        (12345678.0, "", "1.23457e+07"),
        (True, "", "是"),
        (False, "", "否"),
        (True, ".2f", "是"),
        (None, "", "—"),
        (float("nan"), "", "nan"),
        (float("-inf"), "", "-inf"),
        ("128x156", "", "128x156"),
    ],
)
def test_number(value: object, spec: str, shown: str) -> None:
    assert md.number(value, spec) == shown


def test_number_rejects_a_spec_that_does_not_fit() -> None:
    with pytest.raises(ValueError):
        md.number(1.5, ".2q")


def test_table_escapes_every_cell() -> None:
    out = md.table(["a", "b|c"], [[1, "x|y"], [2.5, None]])
    assert out == "| a | b&#124;c |\n|---|---|\n| 1 | x&#124;y |\n| 2.5 | — |"


def test_table_pads_short_rows_and_drops_extra_cells() -> None:
    assert md.table(["a", "b"], [[1], [1, 2, 3]]) == "| a | b |\n|---|---|\n| 1 | — |\n| 1 | 2 |"
    assert md.table([], [[1]]) == ""


def test_code_block_simple() -> None:
    assert md.code_block("print(1)", "python") == "```python\nprint(1)\n```"
    assert md.code_block("x\n") == "```text\nx\n```"


def test_code_block_fence_outruns_backticks_inside() -> None:
    content = "a\n```\nb ````` c"
    assert md.code_block(content, "text") == "``````text\na\n```\nb ````` c\n``````"


def test_code_block_escapes_title() -> None:
    out = md.code_block("a\n```\nb", "python", title='x"<y>')
    assert out == '````python title="x&quot;&lt;y&gt;"\na\n```\nb\n````'


@pytest.mark.parametrize(
    ("page", "target", "link"),
    [
        ("draft-000/math.md", "results/a/x.png", "../results/a/x.png"),
        ("index.md", "errata.md", "errata.md"),
        ("draft-000/math.md", "errata.md", "../errata.md"),
        ("results/alpha.md", "results/alpha/plot.png", "alpha/plot.png"),
    ],
)
def test_relative(page: str, target: str, link: str) -> None:
    assert md.relative(page, target) == link


def test_admonition_indents_and_escapes_title() -> None:
    out = md.admonition("note", 'T "1"', "line 1\n\nline 2", collapsible=True)
    assert out == '??? note "T &quot;1&quot;"\n\n    line 1\n\n    line 2\n'


def test_slug() -> None:
    assert md.slug("claim", "alpha", "Square Root_2") == "claim-alpha-square-root-2"


def test_markup_table_keeps_cells_as_they_are() -> None:
    assert md.markup_table(["a", "b"], [["[x](y)", "*z*"]]) == "| a | b |\n|---|---|\n| [x](y) | *z* |"
    assert md.markup_table(["a"], []) == "| a |\n|---|"
