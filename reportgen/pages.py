"""Generated pages: one per runner, the results overview, and the errata page.

They exist only in the build (added as generated files), so hand-written pages in docs/ are
never overwritten.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import quote

from reportgen import markdown as md
from reportgen.facts import Fact
from reportgen.i18n import DEFAULT, VERDICT_ICONS, Texts, texts_for
from reportgen.notebooks import download_uri, notebook_uri
from reportgen.render import (
    ERRATA_PAGE,
    RESULTS_DIR,
    SECTIONS,
    VERDICTS,
    RunnerView,
    claims_groups_table,
    claims_table,
    diagram_block,
    figure_block,
    item_role,
    item_title,
    metric_role,
    metrics_table,
    provenance_table,
    source_line,
    status_block,
    table_block,
    text_block,
)

RESULTS_INDEX = f"{RESULTS_DIR}/index.md"


def notebook_line(view: RunnerView) -> str:
    """Links to the runner's executed notebook: its page, and the .ipynb file to download."""
    page, name = view.page, view.name
    nb = quote(md.relative(page, notebook_uri(name)), safe="/.-_~")
    download = quote(md.relative(page, download_uri(name)), safe="/.-_~")
    return view.texts("page.notebook", page=nb, name=md.text(name), download=download)


def _needs_line(view: RunnerView) -> list[str]:
    links = ", ".join(f"[{md.text(n)}]({md.relative(view.page, f'{RESULTS_DIR}/{n}.md')})" for n in view.needs)
    return [view.texts("page.needs", links=links), ""] if view.needs else []


_BLOCKS = {"tables": table_block, "graphs": diagram_block, "figures": figure_block, "texts": text_block}
# the page reads as a report: what the example shows first (its claims, main figure, key metrics),
# then the rest, and the machine and implementation details last, in one collapsed block
VERDICT_ORDER = ("differs", "contradictory", "not_computable", "agrees")  # the errata's sections, 不符 first


def _items(view: RunnerView, role: str, sections: tuple[str, ...] = SECTIONS) -> list[tuple[str, str]]:
    """(section, name) of the items with that role, section by section, each in the order declared."""
    return [(section, name) for section in sections for name in view.result.get(section, {})
            if item_role(view, section, name) == role]


def _item_parts(view: RunnerView, items: list[tuple[str, str]], heading: str = "## ") -> list[str]:
    parts: list[str] = []
    for section, name in items:
        parts += [f"{heading}{item_title(view, section, name)}", "", _BLOCKS[section](view, name, view.page), ""]
    return parts


def _details(view: RunnerView, record: dict[str, Any]) -> str:
    """One collapsed block: detail items and metrics, the provenance, and the runner's own output."""
    t = view.texts
    body = [t("page.details_intro"), ""]
    if view.ok:
        for section, name in _items(view, "detail"):
            body += [f"**{item_title(view, section, name)}**", "", _BLOCKS[section](view, name, view.page), ""]
        metrics = [n for n in view.result.get("metrics", {}) if metric_role(view, n) == "detail"]
        if metrics:
            body += [f"**{t('page.metrics')}**", "", metrics_table(view, metrics), ""]
    body += [f"**{t('page.provenance')}**", "", provenance_table(view), ""]
    for stream in ("stdout", "stderr"):
        content = record.get(stream) or ""
        if content.strip():
            body += [md.admonition("abstract", t(f"page.{stream}"), md.code_block(content, "text"), collapsible=True), ""]
    return md.admonition("info", t("page.details"), "\n".join(body).rstrip() + "\n", collapsible=True)


def runner_page(view: RunnerView, notebook: bool = False) -> str:
    page, t = view.page, view.texts
    parts = [f"# {md.text(view.title)}", "", source_line(view), "", *_needs_line(view)]
    parts += [status_block(view, page), ""]
    if notebook:
        parts += [notebook_line(view), ""]
    record = view.record or {}
    if view.record is not None and not view.ok:
        error = record.get("error") or {}
        trace = error.get("traceback") or f"{error.get('type')}: {error.get('message')}"
        parts += [f"## {t('page.error')}", "", md.code_block(trace, "text"), ""]
    if view.ok:
        metrics = list(view.result.get("metrics", {}))
        key_metrics = [n for n in metrics if metric_role(view, n) == "main"]
        other_metrics = [n for n in metrics if metric_role(view, n) == "body"]
        parts += [f"## {t('page.claims')}", "", claims_table(view, False), ""]
        parts += _item_parts(view, _items(view, "main", ("figures",)))
        if key_metrics:
            parts += [f"## {t('page.key_metrics')}", "", metrics_table(view, key_metrics), ""]
        parts += _item_parts(view, _items(view, "main", ("tables", "graphs", "texts")))
        parts += _item_parts(view, _items(view, "body"))
        if other_metrics:
            heading = t("page.more_metrics") if key_metrics else t("page.metrics")
            parts += [f"## {heading}", "", metrics_table(view, other_metrics), ""]
    parts += [_details(view, record)]
    return "\n".join(parts)


def _state(view: RunnerView) -> str:
    t = view.texts
    if view.blocked:
        return t("state.blocked")
    if view.pending:
        return t("state.pending")
    if view.record is None:
        return t("state.missing")
    return t("state.ok") if view.ok else t("state.failed", type=(view.record.get("error") or {}).get("type", "?"))


def pipeline_diagram(views: list[RunnerView]) -> str:
    """The declared dependencies as a Mermaid flowchart (upstream → reader), labelled by title;
    only the runners in some dependency, and "" when there is none."""
    known = {v.name for v in views}
    edges = [[need, v.name] for v in views for need in v.needs if need in known]
    linked = {name for edge in edges for name in edge}
    nodes = [{"id": v.name, "label": v.title} for v in views if v.name in linked]
    return md.mermaid_graph(nodes, edges, "LR") if edges else ""


def results_index(views: list[RunnerView], language: str = DEFAULT) -> str:
    t, rows = texts_for(language), []
    for view in views:
        prov = (view.record or {}).get("provenance", {})
        counts = Counter(c["verdict"] for c in view.claims())
        summary = " ".join(f"{VERDICT_ICONS[v]}{counts[v]}" for v in VERDICTS if counts[v])
        rows.append(
            [
                f"[{md.text(view.title)}]({md.relative(RESULTS_INDEX, view.page)})",
                md.text(view.source),
                md.text(_state(view)),
                md.text(t.origin(view.origin)),
                md.text(prov.get("device_name") or "—"),
                md.text(prov.get("wall_time_s", "—")),
                summary or "—",
            ]
        )
    header = [t(k) for k in ("col.example", "col.in_article", "col.status", "col.origin", "col.device")]
    table = md.markup_table([*header, t("col.wall_time"), t("col.checks")], rows)
    parts = [f"# {t('index.title')}", "", t("index.intro"), "", table, ""]
    diagram = pipeline_diagram(views)
    if diagram:
        parts += [f"## {t('index.pipeline')}", "", t("index.pipeline_intro"), "", diagram, ""]
    return "\n".join(parts)


def _facts_table(facts: list[Fact], t: Texts) -> str:
    rows = []
    for fact in facts:
        cites = "<br>".join(f'<a href="{md.text(c.url)}">{md.text(c.title)}</a>' for c in fact.citations)
        anchor = f'<a id="{md.slug("fact", fact.id)}"></a>'
        verdict = t("fact." + fact.verdict)
        rows.append([anchor + md.text(fact.source), md.text(fact.statement), verdict, md.text(fact.correction), cites])
    header = [t(k) for k in ("col.source", "col.statement", "col.verdict", "col.correction", "col.citations")]
    return md.markup_table(header, rows)


def _not_counted(views: list[RunnerView], t: Texts) -> list[str]:
    """Warnings naming the runners whose checks are missing from the totals (and, if not run, why)."""
    parts = []
    failed = [v for v in views if v.record is not None and not v.ok]
    missing = [v for v in views if v.record is None and not v.blocked]
    if failed or missing:
        names = md.text(", ".join(v.name for v in failed + missing))
        parts += [md.admonition("warning", t("errata.no_results.title"), t("errata.no_results.body", names=names)), ""]
    blocked = [v for v in views if v.blocked]
    if blocked:
        items = [f"- {t('errata.blocked.item', name=v.name, reasons=md.text(t.join(v.reasons)))}" for v in blocked]
        body = "\n".join([t("errata.blocked.body"), "", *items])
        parts += [md.admonition("warning", t("errata.blocked.title"), body), ""]
    return parts


def _verdict_anchor(verdict: str) -> str:
    return md.slug("verdict", verdict)


def errata_page(views: list[RunnerView], facts: dict[str, Fact], language: str = DEFAULT) -> str:
    """Every claim, read by verdict (不符 first): a section per verdict, in it a part per runner, in
    that each statement quoted once with one row per part it checks. Plain headings and tables: the
    content needs no JavaScript."""
    page, t = ERRATA_PAGE, texts_for(language)
    counts: Counter[str] = Counter()
    for view in views:
        counts.update(c["verdict"] for c in view.claims())
    fact_counts = Counter(f.verdict for f in facts.values())
    totals: list[list[str]] = []
    for verdict in VERDICT_ORDER:
        label = md.text(t.verdict(verdict))
        totals.append([f"[{label}](#{_verdict_anchor(verdict)})" if counts[verdict] else label, str(counts[verdict])])
    totals.append([md.text(t("errata.total_checks")), str(sum(counts.values()))])
    totals.append([md.text(t("errata.facts_agree")), str(fact_counts["agrees"])])
    totals.append([md.text(t("errata.facts_differ")), str(fact_counts["differs"])])
    table = md.markup_table([t("col.verdict"), t("col.count")], totals)
    parts = [f"# {t('errata.title')}", "", t("errata.intro"), "", f"## {t('errata.totals')}", "", table, ""]
    parts += _not_counted(views, t)
    for verdict in VERDICT_ORDER:
        if not counts[verdict]:
            continue
        heading = t("errata.verdict_section", verdict=md.text(t.verdict(verdict)), count=counts[verdict])
        parts += [f"## {heading} {{ #{_verdict_anchor(verdict)} }}", ""]
        for view in views:
            claims = [c for c in view.claims() if c["verdict"] == verdict]
            if claims:
                link = f"[{md.text(view.title)}]({md.relative(page, view.page)})"
                parts += [f"### {t.paren(link, md.text(view.source))}", ""]
                parts += [claims_groups_table(view, claims, with_anchors=True, with_verdict=False), ""]
    if facts:
        facts_table = _facts_table(list(facts.values()), t)
        parts += [f"## {t('errata.facts')}", "", t("errata.facts_intro"), "", facts_table, ""]
    return "\n".join(parts)
