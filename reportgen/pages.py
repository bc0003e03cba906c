"""Generated pages: one per runner, the results overview, and the errata page.

They exist only in the build (added as generated files), so hand-written pages in docs/ are
never overwritten.
"""

from __future__ import annotations

from collections import Counter
from urllib.parse import quote

from reportgen import markdown as md
from reportgen.facts import Fact
from reportgen.i18n import DEFAULT, VERDICT_ICONS, Texts, texts_for
from reportgen.notebooks import download_uri, notebook_uri
from reportgen.render import (
    ERRATA_PAGE,
    RESULTS_DIR,
    VERDICTS,
    RunnerView,
    claims_table,
    diagram_block,
    figure_block,
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
        result = view.result
        parts += [f"## {t('page.claims')}", "", claims_table(view, False), ""]
        metrics = result.get("metrics", {})
        if metrics:
            rows = [[k, metrics[k]] for k in sorted(metrics)]
            parts += [f"## {t('page.metrics')}", "", md.table([t("col.name"), t("col.value")], rows, t), ""]
        for section, key, block in (
            ("tables", "page.table", table_block),
            ("graphs", "page.graph", diagram_block),
            ("figures", "page.figure", figure_block),
            ("texts", "page.text", text_block),
        ):
            for name in sorted(result.get(section, {})):
                parts += [f"## {t(key, name=md.text(name))}", "", block(view, name, page), ""]
    parts += [f"## {t('page.provenance')}", "", provenance_table(view), ""]
    for stream in ("stdout", "stderr"):
        content = record.get(stream) or ""
        if content.strip():
            parts += [md.admonition("abstract", t(f"page.{stream}"), md.code_block(content, "text"), collapsible=True), ""]
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


def errata_page(views: list[RunnerView], facts: dict[str, Fact], language: str = DEFAULT) -> str:
    page, t = ERRATA_PAGE, texts_for(language)
    counts: Counter[str] = Counter()
    for view in views:
        counts.update(c["verdict"] for c in view.claims())
    fact_counts = Counter(f.verdict for f in facts.values())
    totals: list[list[object]] = [[t.verdict(v), counts[v]] for v in VERDICTS]
    totals.append([t("errata.total_checks"), sum(counts.values())])
    totals.append([t("errata.facts_agree"), fact_counts["agrees"]])
    totals.append([t("errata.facts_differ"), fact_counts["differs"]])
    table = md.table([t("col.verdict"), t("col.count")], totals, t)
    parts = [f"# {t('errata.title')}", "", t("errata.intro"), "", f"## {t('errata.totals')}", "", table, ""]
    parts += _not_counted(views, t)
    for view in views:
        if view.claims():
            link = f"[{md.text(view.title)}]({md.relative(page, view.page)})"
            parts += [f"## {t.paren(link, md.text(view.source))}", "", claims_table(view, True), ""]
    if facts:
        facts_table = _facts_table(list(facts.values()), t)
        parts += [f"## {t('errata.facts')}", "", t("errata.facts_intro"), "", facts_table, ""]
    return "\n".join(parts)
