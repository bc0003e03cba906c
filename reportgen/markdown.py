"""Markdown primitives with escaping: whatever a runner produced is shown as text, never as markup."""

from __future__ import annotations

import html
import math
import posixpath
import re
from typing import Any

from reportgen.i18n import DEFAULT_TEXTS, Texts

# Characters that Markdown, arithmatex ($) or our placeholders ({{ }}) would interpret anywhere
# in a line. They become numeric entities, which Markdown passes through and the browser shows
# as the character. (Line-start markers such as "-" or "#" cannot occur: escaped text is always
# placed after other content or inside a table cell.)
_ACTIVE = {c: f"&#{ord(c)};" for c in "\\`*_{}[]|$~^#"}
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;", **_ACTIVE}


def text(value: Any) -> str:
    """Escape any value for inline use in Markdown or HTML (attribute-safe), in one pass."""
    escaped = "".join(_ENTITIES.get(c, c) for c in str(value).replace("\r\n", "\n").replace("\r", "\n"))
    return escaped.replace("\n", "<br>")


def number(value: Any, spec: str = "", texts: Texts = DEFAULT_TEXTS) -> str:
    """Format a result value deterministically (a format spec such as ".4f" wins); a boolean is a
    word of the page's language."""
    if isinstance(value, bool):
        return texts.yes_no(value)
    if isinstance(value, (int, float)) and spec:
        return format(value, spec)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value == 0:
            return "0"
        return format(value, ".6g")
    if value is None:
        return "—"
    return str(value)


def cell(value: Any, spec: str = "", texts: Texts = DEFAULT_TEXTS) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return number(value, spec)
    return text(number(value, texts=texts))


def markup_table(header: list[str], rows: list[list[str]]) -> str:
    """A pipe table of cells that are Markdown already (the caller escaped what needs it)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def table(columns: list[str], rows: list[list[Any]], texts: Texts = DEFAULT_TEXTS) -> str:
    """A pipe table with every cell escaped (booleans in the page's language)."""
    if not columns:
        return ""
    padded = [(list(row) + [None] * (len(columns) - len(row)))[: len(columns)] for row in rows]
    return markup_table([text(c) for c in columns], [[cell(v, texts=texts) for v in row] for row in padded])


def code_block(content: str, language: str = "text", title: str = "") -> str:
    """A fenced block whose fence is longer than any backtick run inside, so content cannot close it."""
    longest = max((len(m) for m in re.findall(r"`+", content)), default=0)
    fence = "`" * max(3, longest + 1)
    attrs = f' title="{html.escape(title, quote=True)}"' if title else ""
    body = content if content.endswith("\n") else content + "\n"
    return f"{fence}{language}{attrs}\n{body}{fence}"


def indent(block: str, spaces: int = 4) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line.strip() else "" for line in block.splitlines())


def admonition(kind: str, title: str, body: str, collapsible: bool = False) -> str:
    marker = "???" if collapsible else "!!!"
    return f'{marker} {kind} "{text(title)}"\n\n{indent(body)}\n'


def relative(from_src_uri: str, to_src_uri: str) -> str:
    """Path from one docs file to another, as Markdown links expect (MkDocs checks and rewrites them)."""
    start = posixpath.dirname(from_src_uri) or "."
    return posixpath.relpath(to_src_uri, start)


def slug(*parts: str) -> str:
    return "-".join(re.sub(r"[^a-z0-9]+", "-", p.lower()).strip("-") for p in parts)


_MERMAID_ENTITIES = {'"': "#quot;", "<": "#lt;", ">": "#gt;", "#": "#35;", "&": "#amp;", "`": "#96;"}


def mermaid_label(value: Any) -> str:
    """Text for a quoted Mermaid label: quotes, markup and entity starts are encoded."""
    lines = str(value).replace("\r\n", "\n").split("\n")
    return "<br>".join("".join(_MERMAID_ENTITIES.get(c, c) for c in line) for line in lines)


def mermaid_id(value: Any) -> str:
    return "n_" + re.sub(r"[^A-Za-z0-9_]", "_", str(value))


def mermaid_graph(nodes: list[dict[str, Any]], edges: list[list[str]], direction: str = "TD") -> str:
    """A Mermaid flowchart fence from nodes ({id, label, detail}) and edges."""
    lines = [f"graph {direction}"]
    for node in nodes:
        label = mermaid_label(node.get("label", node["id"]))
        if node.get("detail"):
            label += "<br>" + mermaid_label(node["detail"])
        lines.append(f'    {mermaid_id(node["id"])}["{label}"]')
    lines += [f"    {mermaid_id(a)} --> {mermaid_id(b)}" for a, b in edges]
    return code_block("\n".join(lines), "mermaid")
