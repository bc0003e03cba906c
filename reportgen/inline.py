"""Replace `{{ kind: ref | format }}` placeholders in a hand-written page with computed content.

    {{ value: runner.metric | .4f }}   a computed number inside the article's sentence
    {{ claim: runner.claim_id }}       the article's value, ours, and the verdict
    {{ fact: fact_id }}                a checked fact with its correction and citations
    {{ result: runner }}               status box linking to the runner's page
    {{ figure: runner.name }}  {{ table: runner.name }}  {{ text: runner.name }}  ({{ text: runner.name | prose }} as a paragraph)
    {{ diagram: runner.name }}         an architecture (Result.graph) drawn as a Mermaid diagram
    {{ claims: runner }}               all of a runner's claims as a table
    {{ provenance: runner }}           where and how the numbers were computed

Placeholders inside code (fenced blocks or `inline code`) are left alone, so pages can show
the syntax. A reference to something that does not exist renders a visible marker and is
returned as a problem (MkDocs turns it into a warning; `--strict` fails the build).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from reportgen import markdown as md
from reportgen.facts import Fact
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
_FENCE = re.compile(r"^(?P<indent> {0,3}|\s*)(?P<fence>`{3,}|~{3,})")


@dataclass
class PageContext:
    page_uri: str  # the page's path inside docs/, e.g. "draft-000/math.md"
    runners: dict[str, RunnerView]
    facts: dict[str, Fact]
    problems: list[str] = field(default_factory=list)
    used: set[str] = field(default_factory=set)  # runners this page shows


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
        return fact_inline(ctx.facts[ref], ctx.page_uri)
    if kind not in RUNNER_KINDS:
        raise RefError(f"unknown placeholder kind {kind!r}; use one of: fact, {', '.join(RUNNER_KINDS)}")
    needs_key, renderer = RUNNER_KINDS[kind]
    runner, key = _split_ref(ref, needs_key)
    if runner not in ctx.runners:
        raise RefError(f"no runner {runner!r}; known: {', '.join(sorted(ctx.runners))}")
    ctx.used.add(runner)
    return renderer(ctx.runners[runner], key, spec or "", ctx.page_uri)


Render = Callable[[str, str, str, PageContext], str]
_COMBINED = re.compile(f"{_CODE_SPAN.pattern}|{PLACEHOLDER.pattern}", re.S)


def _substitute_text(segment: str, ctx: PageContext, render: Render) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0).startswith("`"):
            return match.group(0)
        try:
            return render(match["kind"], match["ref"].strip(), match["spec"] or "", ctx)
        except RefError as exc:
            ctx.problems.append(f"{ctx.page_uri}: {match.group(0)}: {exc}")
            return f'<span class="living-missing">⚠ {md.text(match.group(0))}：{md.text(str(exc))}</span>'

    return _COMBINED.sub(replace, segment)


def substitute(markdown_text: str, ctx: PageContext, render: Render = render_placeholder) -> str:
    """The page with every placeholder outside code replaced."""
    if "{{" not in markdown_text:  # no placeholder: nothing to do (most generated pages)
        return markdown_text
    out: list[str] = []
    prose: list[str] = []
    fence: str | None = None
    for line in markdown_text.splitlines(keepends=True):
        match = _FENCE.match(line)
        if fence is None and match:
            out.append(_substitute_text("".join(prose), ctx, render))
            prose = []
            fence = match["fence"]
            out.append(line)
        elif fence is not None:
            out.append(line)
            stripped = line.strip()
            if stripped.startswith(fence[0] * len(fence)) and set(stripped) == {fence[0]}:
                fence = None
        else:
            prose.append(line)
    out.append(_substitute_text("".join(prose), ctx, render))
    return "".join(out)


def references(markdown_text: str) -> list[tuple[str, str]]:
    """(kind, ref) of every placeholder outside code, for checks and tests."""
    found: list[tuple[str, str]] = []

    def collect(kind: str, ref: str, spec: str, _ctx: PageContext) -> str:
        found.append((kind, ref))
        return ""

    substitute(markdown_text, PageContext("", {}, {}), collect)
    return found
