"""Generated pages: one per runner, the results overview, and the errata page.

They exist only in the build (added as generated files), so hand-written pages in docs/ are
never overwritten.
"""

from __future__ import annotations

from collections import Counter
from urllib.parse import quote

from reportgen import markdown as md
from reportgen.facts import Fact
from reportgen.notebooks import download_uri, notebook_uri
from reportgen.render import (
    ERRATA_PAGE,
    ORIGIN_LABELS,
    RESULTS_DIR,
    VERDICT_LABELS,
    RunnerView,
    claims_table,
    diagram_block,
    figure_block,
    provenance_table,
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
    return (
        f"Jupyter 笔记本：[查看本次运行的笔记本（含输出）]({nb}) · [下载 {md.text(name)}.ipynb]({download})"
        "（在项目根目录用 Jupyter 打开即可重新运行）"
    )


def runner_page(view: RunnerView, notebook: bool = False) -> str:
    page = view.page
    parts = [f"# {md.text(view.title)}", "", f"文章出处：{md.text(view.source)} · 运行器：`{view.name}`", ""]
    parts += [status_block(view, page), ""]
    if notebook:
        parts += [notebook_line(view), ""]
    record = view.record or {}
    if view.record is not None and not view.ok:
        error = record.get("error") or {}
        parts += ["## 错误", "", md.code_block(error.get("traceback") or f"{error.get('type')}: {error.get('message')}", "text"), ""]
    if view.ok:
        result = view.result
        parts += ["## 文章中的数值与核对", "", claims_table(view, False), ""]
        metrics = result.get("metrics", {})
        if metrics:
            parts += ["## 指标", "", md.table(["名称", "值"], [[k, metrics[k]] for k in sorted(metrics)]), ""]
        for name in sorted(result.get("tables", {})):
            parts += [f"## 表：{md.text(name)}", "", table_block(view, name, page), ""]
        for name in sorted(result.get("graphs", {})):
            parts += [f"## 结构图：{md.text(name)}", "", diagram_block(view, name, page), ""]
        for name in sorted(result.get("figures", {})):
            parts += [f"## 图：{md.text(name)}", "", figure_block(view, name, page), ""]
        for name in sorted(result.get("texts", {})):
            parts += [f"## 输出：{md.text(name)}", "", text_block(view, name, page), ""]
    parts += ["## 运行环境与出处", "", provenance_table(view), ""]
    for stream, label in (("stdout", "标准输出"), ("stderr", "标准错误")):
        content = record.get(stream) or ""
        if content.strip():
            parts += [md.admonition("abstract", label, md.code_block(content, "text"), collapsible=True), ""]
    return "\n".join(parts)


def results_index(views: list[RunnerView]) -> str:
    rows = []
    for view in views:
        prov = (view.record or {}).get("provenance", {})
        if view.record is None:
            state = "尚无结果"
        elif view.ok:
            state = "✓ 成功"
        else:
            state = "✗ 失败：" + str((view.record.get("error") or {}).get("type", "?"))
        counts = Counter(c["verdict"] for c in view.claims())
        summary = " ".join(f"{VERDICT_LABELS[v][0]}{counts[v]}" for v in VERDICT_LABELS if counts[v])
        rows.append(
            [
                f"[{md.text(view.title)}]({md.relative(RESULTS_INDEX, view.page)})",
                md.text(view.source),
                md.text(state),
                md.text(ORIGIN_LABELS.get(view.origin, view.origin)),
                md.text(prov.get("device_name") or "—"),
                md.text(prov.get("wall_time_s", "—")),
                summary or "—",
            ]
        )
    header = ["示例", "文章出处", "状态", "来源", "设备", "运行耗时（秒）", "核对"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    intro = (
        "本站的每个数值、表格和图都来自下列运行器在构建时的运行结果。"
        "结果按内容哈希缓存：代码、配置和依赖版本都未改变时不会重新运行。"
    )
    return "\n".join(["# 运行结果", "", intro, "", *lines, ""])


def _facts_table(facts: list[Fact]) -> str:
    rows = []
    for fact in facts:
        icon = "✓ 核实无误" if fact.verdict == "agrees" else "✗ 史实有误"
        cites = "<br>".join(f'<a href="{md.text(c.url)}">{md.text(c.title)}</a>' for c in fact.citations)
        anchor = f'<a id="{md.slug("fact", fact.id)}"></a>'
        rows.append([anchor + md.text(fact.source), md.text(fact.statement), icon, md.text(fact.correction), cites])
    header = ["出处", "文章原文", "结论", "更正/说明", "依据"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def errata_page(views: list[RunnerView], facts: dict[str, Fact]) -> str:
    page = ERRATA_PAGE
    counts: Counter[str] = Counter()
    for view in views:
        counts.update(c["verdict"] for c in view.claims())
    fact_counts = Counter(f.verdict for f in facts.values())
    total = sum(counts.values())
    totals = [[f"{VERDICT_LABELS[v][0]} {VERDICT_LABELS[v][1]}", counts[v]] for v in VERDICT_LABELS]
    totals.append(["数值核对合计", total])
    totals.append(["史实：✓ 核实无误", fact_counts["agrees"]])
    totals.append(["史实：✗ 有误", fact_counts["differs"]])
    parts = [
        "# 勘误表",
        "",
        "文章中每个可计算的数值都由运行器重新计算，并与文章给出的值比较：在文章给出的精度内"
        "（最后一位的半个单位）一致为“相符”。无法由文中条件计算或与文中其他说法矛盾的，单独标出并说明原因。",
        "",
        "## 合计",
        "",
        md.table(["结论", "数量"], totals),
        "",
    ]
    failed = [v for v in views if v.record is not None and not v.ok]
    missing = [v for v in views if v.record is None]
    if failed or missing:
        names = ", ".join(v.name for v in failed + missing)
        parts += [md.admonition("warning", "部分运行器没有结果", f"以下运行器失败或尚无结果，它们的核对未计入：{md.text(names)}"), ""]
    for view in views:
        if view.claims():
            link = f"[{md.text(view.title)}]({md.relative(page, view.page)})"
            parts += [f"## {link}（{md.text(view.source)}）", "", claims_table(view, True), ""]
    if facts:
        parts += ["## 史实与引用", "", "以下说法无法由代码计算，按公开文献核对。", "", _facts_table(list(facts.values())), ""]
    return "\n".join(parts)
