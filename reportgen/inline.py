"""Replace `{{ kind: ref | format }}` placeholders in a hand-written page with computed content.

    {{ value: runner.metric | .4f }}   a computed number inside the article's sentence
    {{ claim: runner.claim_id }}       the article's value, ours, and the verdict
    {{ fact: fact_id }}                a checked fact with its correction and citations
    {{ result: runner }}               status box linking to the runner's page
    {{ figure: runner.name }}  {{ table: runner.name }}  {{ text: runner.name }}  ({{ text: runner.name | prose }} as a paragraph)
    {{ diagram: runner.name }}         an architecture (Result.graph) drawn as a Mermaid diagram
    {{ claims: runner }}               all of a runner's claims as a table
    {{ provenance: runner }}           where and how the numbers were computed

Placeholders inside code (fenced or indented code blocks, `inline code`, raw <code>/<pre>) and
inside HTML comments are left alone, so pages can show the syntax. A reference to something
that does not exist renders a visible marker and is returned as a problem, one line naming the
page, the placeholder and what exists (MkDocs turns it into a warning; `--strict` fails the build).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from reportgen import markdown as md
from reportgen.facts import Fact
from reportgen.i18n import DEFAULT, texts_for
from reportgen.render import (
    RefError,
    RunnerView,
    claim_inline,
    claims_table,
    diagram_block,
    fact_inline,
    figure_block,
    provenance_table,
    status_block,
    table_block,
    text_block,
    value_inline,
)

PLACEHOLDER = re.compile(r"\{\{\s*(?P<kind>[a-z_]+)\s*:\s*(?P<ref>[^|{}]+?)\s*(?:\|\s*(?P<spec>[^{}]*?)\s*)?\}\}")
# An inline code span may wrap lines but never crosses a blank line (a paragraph break).
_CODE_SPAN = re.compile(r"(?P<ticks>`+)(?:(?!\n[ \t]*\n).)+?(?P=ticks)", re.S)
# An HTML comment or raw <code>/<pre> element inside a paragraph: left alone like a code span.
_INLINE_HTML = re.compile(
    r"<!--(?:(?!\n[ \t]*\n).)*?-->"
    r"|(?i:<(?P<tag>code|pre)(?=[\s>])[^>]*>)(?:(?!\n[ \t]*\n).)*?(?i:</(?P=tag)\s*>)",
    re.S,
)

# Which lines are code, read the way Python-Markdown (what MkDocs uses) reads the block structure,
# just far enough for that. Open containers are kept as a stack of content indents: a list item
# (`-` `*` `+` `1.` `1)`), a definition (`:`) or a footnote (`[^n]:`) holds the lines indented 4
# columns past its marker (Python-Markdown's tab_length: `- a`, a blank line, then 6 spaces is
# still the item's paragraph, not CommonMark's code), and so do an admonition or details block
# (`!!!`, `???`, `???+`) and a content tab (`===`). A less indented line closes containers,
# unless it lazily continues a paragraph. A line indented 4 or more past the innermost container
# is indented code, unless it continues a paragraph. A fence (``` or ~~~) is recognised at any
# indent, as pymdownx.superfences does, and runs to its closing fence. At the top level an HTML
# comment or <pre>/<script>/<style>/<textarea> element that starts a line and ends on a later
# one is left alone, blank lines and all; elsewhere _INLINE_HTML covers those that cross no
# blank line (Python-Markdown reads the rest as text). Not modelled: block quotes (code inside
# `>` is substituted), other raw HTML blocks (<div>…</div> is substituted, as its inline HTML
# would be), a fence that a closing container would end in CommonMark (it runs on to its
# closing fence), tabs other than in the leading indent (a leading tab counts 4 columns).
_FENCE = re.compile(r"^[ \t]*(?P<fence>`{3,}(?!.*`)|~{3,})")  # a backtick fence's info has no backtick
_LIST_ITEM = re.compile(r"(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$)")
_CONTAINER = re.compile(r"""(?:!!!|\?\?\?\+?)[ \t]+\S|===[+!]{0,2}[ \t]+"|:[ \t]|\[\^[^\]\s]+\]:""")
_BREAK = re.compile(r"(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,}|=+[ \t]*|#{1,6}(?:[ \t].*)?)$")
_HTML_BLOCK = re.compile(r"<!--|<(?P<tag>pre|script|style|textarea)(?=[\s>]|$)", re.I)


@dataclass
class PageContext:
    page_uri: str  # the page's path inside docs/, e.g. "draft-000/math.md"
    runners: dict[str, RunnerView]
    facts: dict[str, Fact]
    problems: list[str] = field(default_factory=list)
    used: set[str] = field(default_factory=set)  # runners this page shows
    language: str = DEFAULT  # of the words placeholders put on the page (theme.language)


def _split_ref(ref: str, needs_key: bool) -> tuple[str, str]:
    runner, _, key = ref.partition(".")
    if needs_key and not key:
        raise RefError(f"{ref!r} needs the form runner.name")
    if not needs_key and key:
        raise RefError(f"{ref!r} takes a runner name only")
    return runner, key


Renderer = Callable[[RunnerView, str, str, str], str]

# kind → (needs a key after the runner name, renderer(view, key, spec, page_uri))
RUNNER_KINDS: dict[str, tuple[bool, Renderer]] = {
    "value": (True, lambda v, k, s, p: value_inline(v, k, s, p)),
    "claim": (True, lambda v, k, s, p: claim_inline(v, k, p)),
    "figure": (True, lambda v, k, s, p: figure_block(v, k, p)),
    "table": (True, lambda v, k, s, p: table_block(v, k, p)),
    "text": (True, lambda v, k, s, p: text_block(v, k, p, s)),
    "diagram": (True, lambda v, k, s, p: diagram_block(v, k, p)),
    "result": (False, lambda v, k, s, p: status_block(v, p)),
    "claims": (False, lambda v, k, s, p: claims_table(v, False)),
    "provenance": (False, lambda v, k, s, p: provenance_table(v)),
}


def render_placeholder(kind: str, ref: str, spec: str, ctx: PageContext) -> str:
    if kind == "fact":
        if ref not in ctx.facts:
            raise RefError(f"no fact {ref!r} in the facts file")
        return fact_inline(ctx.facts[ref], ctx.page_uri, ctx.language)
    if kind not in RUNNER_KINDS:
        raise RefError(f"unknown placeholder kind {kind!r}; use one of: fact, {', '.join(RUNNER_KINDS)}")
    needs_key, renderer = RUNNER_KINDS[kind]
    runner, key = _split_ref(ref, needs_key)
    if runner not in ctx.runners:
        raise RefError(f"no runner {runner!r}; known: {', '.join(sorted(ctx.runners))}")
    ctx.used.add(runner)
    return renderer(ctx.runners[runner], key, spec or "", ctx.page_uri)


Render = Callable[[str, str, str, PageContext], str]
_COMBINED = re.compile(f"{_CODE_SPAN.pattern}|{_INLINE_HTML.pattern}|{PLACEHOLDER.pattern}", re.S)


def _substitute_text(segment: str, ctx: PageContext, render: Render) -> str:
    def replace(match: re.Match[str]) -> str:
        if match["kind"] is None:  # a code span, an HTML comment, a raw <code>/<pre>
            return match.group(0)
        try:
            return render(match["kind"], match["ref"].strip(), match["spec"] or "", ctx)
        except RefError as exc:
            ctx.problems.append(_one_line(f"{ctx.page_uri}: {match.group(0)}: {exc}"))
            marker = texts_for(ctx.language)("marker.problem", placeholder=md.text(match.group(0)), problem=md.text(str(exc)))
            return f'<span class="living-missing">{marker}</span>'

    return _COMBINED.sub(replace, segment)


def _one_line(message: str) -> str:
    """A problem as one line: a placeholder written across lines is reported on one."""
    return " ".join(message.split())


def _segments(text: str) -> list[tuple[bool, str]]:
    """The page cut into (prose, text) pieces: prose is substituted, the rest is code or a comment."""
    pieces: list[tuple[bool, list[str]]] = []

    def add(prose: bool, chunk: str) -> None:
        if not chunk:
            return
        if pieces and pieces[-1][0] == prose:
            pieces[-1][1].append(chunk)
        else:
            pieces.append((prose, [chunk]))

    stack: list[tuple[int, bool]] = []  # (content indent, is a list item) of the open containers
    fence = ""  # the open fence's marker
    html_end: re.Pattern[str] | None = None  # how the open multi-line HTML block ends
    blank = True  # the previous line was blank, or there was none
    para = False  # the previous line was paragraph text, which the next line may continue lazily
    offset = 0
    for line in text.splitlines(keepends=True):
        offset += len(line)
        if fence:
            add(False, line)
            stripped = line.strip()
            if stripped.startswith(fence) and set(stripped) == {fence[0]}:
                fence, blank, para = "", False, False
            continue
        if html_end is not None:
            end = html_end.search(line)
            if end is None:
                add(False, line)
                continue
            add(False, line[: end.end()])
            add(True, line[end.end() :])  # Python-Markdown reads what follows on that line as text
            html_end, blank, para = None, False, bool(line[end.end() :].strip())
            continue
        if not line.strip():
            add(True, line)
            blank, para = True, False
            continue
        body = line.lstrip(" \t")
        indent = len(line[: len(line) - len(body)].expandtabs(4))
        lazy = para and not blank  # a line right after paragraph text continues it unless it starts a block
        in_list = bool(stack) and stack[-1][1]
        starts_block = bool(
            _FENCE.match(body)
            or _HTML_BLOCK.match(body)
            or _BREAK.match(body)
            or _CONTAINER.match(body)
            or (in_list and _LIST_ITEM.match(body))  # elsewhere a list needs a blank line before it
        )
        if lazy and not starts_block:
            add(True, line)
            blank = False
            continue
        while stack and indent < stack[-1][0]:
            stack.pop()
        blank, para = False, False
        if indent - (stack[-1][0] if stack else 0) >= 4:
            add(False, line)  # indented code
        elif match := _FENCE.match(body):
            fence = match["fence"]
            add(False, line)
        elif (html := _HTML_BLOCK.match(body)) and not stack and indent < 4:
            end = re.compile(r"-->" if html["tag"] is None else rf"</{html['tag']}\s*>", re.I)
            if end.search(body, html.end()) is None and end.search(text, offset) is not None:
                html_end = end
                add(False, line)
            else:  # it ends on this line (the inline rule covers it) or never (it is text)
                add(True, line)
                para = True
        elif _BREAK.match(body):
            add(True, line)
        elif container := _CONTAINER.match(body) or _LIST_ITEM.match(body):
            is_item = not container.group(0).startswith(("!!!", "???", "==="))
            stack.append((indent + 4, is_item))
            add(True, line)
            para = is_item and bool(body[container.end() :].strip())
        else:
            add(True, line)
            para = True
    return [(prose, "".join(chunks)) for prose, chunks in pieces]


def substitute(markdown_text: str, ctx: PageContext, render: Render = render_placeholder) -> str:
    """The page with every placeholder outside code replaced."""
    if "{{" not in markdown_text:  # no placeholder: nothing to do (most generated pages)
        return markdown_text
    return "".join(
        _substitute_text(text, ctx, render) if prose else text for prose, text in _segments(markdown_text)
    )


def references(markdown_text: str) -> list[tuple[str, str]]:
    """(kind, ref) of every placeholder outside code, for checks and tests."""
    found: list[tuple[str, str]] = []

    def collect(kind: str, ref: str, spec: str, _ctx: PageContext) -> str:
        found.append((kind, ref))
        return ""

    substitute(markdown_text, PageContext("", {}, {}), collect)
    return found
