"""Results → Markdown: inline values and claims, status boxes, blocks and tables of one runner.

Pure functions over plain data (records as loaded from result.json); deterministic output. Every
word comes from the view's language table (reportgen.i18n).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from reportgen import markdown as md
from reportgen.facts import Fact
from reportgen.i18n import DEFAULT, DEFAULT_TEXTS, VERDICT_ICONS, Texts, texts_for

VERDICTS = tuple(VERDICT_ICONS)  # in the order pages list them
RESULTS_DIR = "results"
ERRATA_PAGE = "errata.md"


class RefError(LookupError):
    """A placeholder names something that does not exist (a typo, or a runner that lost a key)."""


@dataclass
class RunnerView:
    name: str
    title: str
    source: str
    record: dict[str, Any] | None
    origin: str
    reasons: list[str] = field(default_factory=list)
    needs: tuple[str, ...] = ()  # the runners whose results this one builds on
    language: str = DEFAULT  # of the words on its pages (theme.language)

    @property
    def texts(self) -> Texts:
        return texts_for(self.language)

    @property
    def blocked(self) -> bool:
        return self.origin == "blocked"

    @property
    def pending(self) -> bool:
        """Being computed in the background by `mkdocs serve`: the page shows that, then reloads."""
        return self.origin == "pending"

    @property
    def page(self) -> str:
        return f"{RESULTS_DIR}/{self.name}.md"

    def file_uri(self, rel: str) -> str:
        return f"{RESULTS_DIR}/{self.name}/{rel}"

    @property
    def ok(self) -> bool:
        return self.record is not None and self.record.get("status") == "ok"

    @property
    def result(self) -> dict[str, Any]:
        return (self.record or {}).get("result") or {}

    def claims(self) -> list[dict[str, Any]]:
        return list(self.result.get("claims", []))


def source_line(view: RunnerView) -> str:
    """Where the article gives the example and which runner computes it (pages and notebooks)."""
    return view.texts("page.source", source=md.text(view.source), name=view.name)


def _link(page_uri: str, target: str, label_html: str) -> str:
    return f"[{label_html}]({md.relative(page_uri, target)})"


def unavailable(view: RunnerView, page_uri: str) -> str:
    t = view.texts
    why = t("marker.blocked" if view.blocked else "marker.pending" if view.pending
            else "marker.failed" if view.record is not None else "marker.missing")
    # a runner that was not run (or is running) says why where the reader points at it
    title = f' title="{md.text(t.join(view.reasons))}"' if (view.blocked or view.pending) and view.reasons else ""
    marker = f'<span class="living-missing"{title}>⚠ {t.paren(why, md.text(view.name))}</span>'
    return _link(page_uri, view.page, marker)


def _stale_mark(view: RunnerView) -> str:
    if view.origin != "stale":
        return ""
    t = view.texts
    return f'<sup class="living-stale" title="{md.text(t("stale.mark_title"))}">{md.text(t("stale.mark"))}</sup>'


def value_inline(view: RunnerView, metric: str, spec: str, page_uri: str) -> str:
    if not view.ok:
        return unavailable(view, page_uri)
    metrics = view.result.get("metrics", {})
    if metric not in metrics:
        raise RefError(f"runner {view.name} has no metric {metric!r}; it has: {', '.join(sorted(metrics))}")
    try:
        shown = md.number(metrics[metric], spec, view.texts)
    except ValueError as exc:
        raise RefError(f"format {spec!r} does not apply to {view.name}.{metric}: {exc}") from exc
    title = view.texts("value.title", name=view.name)
    return f'<span class="living-value" title="{md.text(title)}">{md.text(shown)}</span>{_stale_mark(view)}'


def computed_text(claim: dict[str, Any], texts: Texts = DEFAULT_TEXTS) -> str:
    """The computed value, shown to one more digit than the article stated ("—" when there is none)."""
    value, tol = claim.get("computed"), claim.get("tolerance")
    if isinstance(value, float) and tol:
        decimals = 0
        while 0.5 * 10.0**-decimals > tol * 1.0000001 and decimals < 12:
            decimals += 1
        return format(value, f".{decimals + 1}f")
    return md.number(value, texts=texts)


def _find_claim(view: RunnerView, claim_id: str) -> dict[str, Any]:
    for claim in view.claims():
        if claim["id"] == claim_id:
            return claim
    known = ", ".join(c["id"] for c in view.claims())
    raise RefError(f"runner {view.name} has no claim {claim_id!r}; it has: {known}")


def claim_anchor(runner: str, claim_id: str) -> str:
    return md.slug("claim", runner, claim_id)


def claim_inline(view: RunnerView, claim_id: str, page_uri: str) -> str:
    if not view.ok:
        return unavailable(view, page_uri)
    claim, t = _find_claim(view, claim_id), view.texts
    label = t("verdict." + claim["verdict"])
    words = t("claim.badge", article=md.text(claim["article"]), computed=md.text(computed_text(claim, t)),
              verdict=md.text(t.verdict(claim["verdict"])))
    reason = md.text(claim.get("reason") or label)
    badge = f'<span class="living-claim living-{claim["verdict"]}" title="{reason}">{words}</span>'
    target = f"{ERRATA_PAGE}#{claim_anchor(view.name, claim_id)}"
    return _link(page_uri, target, badge) + _stale_mark(view)


def fact_inline(fact: Fact, page_uri: str, language: str = DEFAULT) -> str:
    t = texts_for(language)
    cites = " ".join(f'<a href="{md.text(c.url)}" title="{md.text(c.title)}">[{n}]</a>' for n, c in enumerate(fact.citations, 1))
    words = t("fact.badge", verdict=t("fact." + fact.verdict), correction=md.text(fact.correction), cites=cites)
    return f'<span class="living-fact living-{fact.verdict}">{words}</span>'


def status_block(view: RunnerView, page_uri: str) -> str:
    t, link, name, title = view.texts, md.relative(page_uri, view.page), view.name, view.title
    if view.blocked:
        body = t("status.blocked.body", name=name, reasons=md.text(t.join(view.reasons)), link=link)
        return md.admonition("warning", t("status.blocked.title", title=title), body)
    if view.pending:
        body = t("status.pending.body", reasons=md.text(t.join(view.reasons)), link=link)
        return md.admonition("info", t("status.pending.title", title=title), body)
    if view.record is None:
        return md.admonition("warning", t("status.missing.title", title=title), t("status.missing.body", name=name, link=link))
    prov = view.record.get("provenance", {})
    if not view.ok:
        error = view.record.get("error") or {}
        kind, message = md.text(error.get("type", "?")), md.text(error.get("message", ""))
        body = t("status.failed.body", name=name, type=kind, message=message, link=link)
        return md.admonition("failure", t("status.failed.title", title=title), body)
    where = md.text(prov.get("device_name") or prov.get("device") or "?")
    when = md.text(t.date(prov.get("finished_at"), "?"))
    body = t("status.ok.body", name=name, when=when, where=where, origin=t.origin(view.origin), link=link)
    if view.origin == "stale":
        body += "\n\n" + t("status.stale.reasons", reasons=md.text(t.join(view.reasons)))
        return md.admonition("warning", t("status.stale.title", title=title), body)
    kind = "info" if view.origin == "frozen" else "success"
    return md.admonition(kind, t("status.ok.title", title=title), body)


def _require(view: RunnerView, section: str, name: str) -> Any:
    items = view.result.get(section, {})
    if name not in items:
        raise RefError(f"runner {view.name} has no {section[:-1]} {name!r}; it has: {', '.join(sorted(items))}")
    return items[name]


SECTIONS = ("figures", "tables", "graphs", "texts")  # what a runner declares with a title, caption and role
_TITLE_KEYS = {"tables": "page.table", "graphs": "page.graph", "figures": "page.figure", "texts": "page.text"}


def item_info(view: RunnerView, section: str, name: str) -> dict[str, Any]:
    """The title, caption and role a runner declared for an item (a text's are kept apart from it)."""
    if section == "texts":
        info = (view.result.get("text_info") or {}).get(name)
    else:
        info = (view.result.get(section) or {}).get(name)
    return info if isinstance(info, dict) else {}


def item_title(view: RunnerView, section: str, name: str) -> str:
    """The reader's heading of an item (escaped); an item declared without one is named by its key."""
    title = item_info(view, section, name).get("title")
    return md.text(title) if title else view.texts(_TITLE_KEYS[section], name=md.text(name))


def item_role(view: RunnerView, section: str, name: str) -> str:
    return str(item_info(view, section, name).get("role") or "body")


def metric_label(view: RunnerView, name: str) -> str:
    info = (view.result.get("metric_info") or {}).get(name) or {}
    return md.text(info.get("label") or name)


def metric_role(view: RunnerView, name: str) -> str:
    info = (view.result.get("metric_info") or {}).get(name) or {}
    return str(info.get("role") or "body")


def metric_value(view: RunnerView, name: str) -> str:
    """The metric's value with its unit (escaped), as its row shows it."""
    info = (view.result.get("metric_info") or {}).get(name) or {}
    shown = md.cell(view.result.get("metrics", {}).get(name), texts=view.texts)
    unit = info.get("unit")
    return view.texts("metric.unit", value=shown, unit=md.text(unit)) if unit else shown


def metrics_table(view: RunnerView, names: list[str]) -> str:
    t = view.texts
    rows = [[metric_label(view, n), metric_value(view, n)] for n in names]
    return md.markup_table([t("col.metric"), t("col.value")], rows)


def figure_block(view: RunnerView, name: str, page_uri: str) -> str:
    if not view.ok:
        return unavailable(view, page_uri)
    figure = _require(view, "figures", name)
    caption = md.text(figure.get("caption") or name)
    src = quote(md.relative(page_uri, view.file_uri(figure["path"])), safe="/.-_~")
    return f'![{caption}]({src}){{ loading=lazy }}\n\n<p class="living-caption">{caption}</p>'


def table_block(view: RunnerView, name: str, page_uri: str) -> str:
    if not view.ok:
        return unavailable(view, page_uri)
    tab = _require(view, "tables", name)
    caption = f'<p class="living-caption">{md.text(tab["caption"])}</p>\n\n' if tab.get("caption") else ""
    return caption + md.table(tab["columns"], tab["rows"], view.texts)


def text_block(view: RunnerView, name: str, page_uri: str, spec: str = "") -> str:
    """A captured text as a code block, or with `| prose` as an escaped paragraph."""
    if not view.ok:
        return unavailable(view, page_uri)
    content = _require(view, "texts", name)
    if spec == "prose":
        return md.text(content.strip())
    if spec:
        raise RefError(f"text {view.name}.{name}: unknown option {spec!r} (use `| prose` or nothing)")
    language = "python" if name.endswith("_script") else "diff" if name.endswith("_diff") else "text"
    info = item_info(view, "texts", name)
    caption = f'<p class="living-caption">{md.text(info["caption"])}</p>\n\n' if info.get("caption") else ""
    return caption + md.code_block(content, language, title=str(info.get("title") or name))


def diagram_block(view: RunnerView, name: str, page_uri: str) -> str:
    if not view.ok:
        return unavailable(view, page_uri)
    graph = _require(view, "graphs", name)
    caption = f'\n\n<p class="living-caption">{md.text(graph["caption"])}</p>' if graph.get("caption") else ""
    return md.mermaid_graph(graph["nodes"], graph["edges"]) + caption


CLAIM_COLUMNS = ("col.source", "col.statement", "col.article", "col.computed", "col.verdict", "col.reason")
# the columns of a group of claims drawn from one statement (the statement is quoted above them)
GROUP_COLUMNS = ("col.part", "col.article", "col.computed", "col.verdict", "col.reason")


def claim_cells(claim: dict[str, Any], texts: Texts) -> list[Any]:
    """One claim's row (unescaped), as the claims tables of pages and notebooks show it."""
    verdict = texts.verdict(claim["verdict"])
    computed = computed_text(claim, texts)
    return [claim["source"], claim["statement"], claim["article"], computed, verdict, claim.get("reason", "")]


def claim_groups(claims: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Claims drawn from one statement (same source and sentence) together, in order of first appearance."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for claim in claims:
        groups.setdefault((str(claim.get("source", "")), str(claim.get("statement", ""))), []).append(claim)
    return list(groups.values())


def _group_row(view: RunnerView, claim: dict[str, Any], with_anchor: bool, with_verdict: bool) -> list[str]:
    t = view.texts
    anchor = f'<a id="{claim_anchor(view.name, claim["id"])}"></a>' if with_anchor else ""
    part = md.text(claim.get("part") or claim["id"])
    article = md.text(claim["article"])
    if claim.get("reading"):  # how the article's value was read (the number it means, its precision)
        article += f'<span class="living-reading">{md.text(t("claim.reading", reading=claim["reading"]))}</span>'
    verdict = [md.text(t.verdict(claim["verdict"]))] if with_verdict else []
    return [anchor + part, article, md.text(computed_text(claim, t)), *verdict, md.text(claim.get("reason", ""))]


def claims_groups_table(view: RunnerView, claims: list[dict[str, Any]], with_anchors: bool, with_verdict: bool = True) -> str:
    """Claims grouped by the statement they check: the statement quoted once, then one row per part."""
    t, blocks = view.texts, []
    columns = [t(c) for c in GROUP_COLUMNS if with_verdict or c != "col.verdict"]
    for group in claim_groups(claims):
        first = group[0]
        quote = t("claims.statement", source=md.text(first["source"]), statement=md.text(first["statement"]))
        rows = [_group_row(view, c, with_anchors, with_verdict) for c in group]
        blocks.append(f'<p class="living-statement">{quote}</p>\n\n' + md.markup_table(columns, rows))
    return "\n\n".join(blocks)


def claims_table(view: RunnerView, with_anchors: bool) -> str:
    """The runner's claims, grouped by statement; anchors (for links from badges) only on the errata page."""
    claims = view.claims()
    return claims_groups_table(view, claims, with_anchors) if claims else view.texts("claims.none")


def _rows(texts: Texts, label: str, items: Any) -> list[list[Any]]:
    """A provenance dict (name → value) as rows labelled by a template; a value of another shape, none."""
    return [[texts(label, name=k), v] for k, v in sorted(items.items())] if isinstance(items, dict) else []


def provenance_table(view: RunnerView) -> str:
    t, record = view.texts, view.record or {}
    prov = record.get("provenance", {})
    rows = [
        [t("col.origin"), t.origin(view.origin)],
        [t("col.device"), t.paren(prov.get("device", "?"), prov.get("device_name", "?"))],
        [t("prov.seed"), prov.get("seed", "—")],
        [t("col.wall_time"), prov.get("wall_time_s", "—")],
        [t("prov.process_time"), prov.get("process_wall_time_s", "—")],
        [t("prov.finished"), t.date(prov.get("finished_at"))],
        [t("prov.commit"), prov.get("git_commit", "—")],
        [t("prov.platform"), prov.get("platform", "—")],
    ]
    machine = prov.get("machine") if isinstance(prov.get("machine"), dict) else {}
    for key, value in sorted(machine.items()):  # what of the machine is in the key (RunnerSpec.environment)
        rows.append([t(f"prov.machine.{key}") if t.has(f"prov.machine.{key}") else t("prov.machine", name=key), value])
    rows += _rows(t, "prov.note", prov.get("notes"))
    rows += _rows(t, "prov.upstream", prov.get("upstream"))
    rows += _rows(t, "prov.version", prov.get("versions", {}))
    config = json.dumps(record.get("config", {}), ensure_ascii=False, sort_keys=True)
    rows += [[t("prov.key"), record.get("key", "—")], [t("prov.config"), config]]
    return md.table([t("col.item"), t("col.value")], rows, t)
