"""Results → Markdown: inline values and claims, blocks, one page per runner, the errata page.

Pure functions over plain data (records as loaded from result.json); deterministic output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from reportgen import markdown as md
from reportgen.facts import Fact

VERDICT_LABELS = {
    "agrees": ("✓", "相符"),
    "differs": ("✗", "不符"),
    "not_computable": ("?", "无法由文中条件计算"),
    "contradictory": ("⚠", "文中自相矛盾"),
}
ORIGIN_LABELS = {
    "ran": "本次构建中运行",
    "cache": "缓存（代码未变）",
    "frozen": "已提交的冻结结果",
    "stale": "过期结果（代码已改动，本次未重新运行）",
    "missing": "尚无结果",
}
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


def _link(page_uri: str, target: str, label_html: str) -> str:
    return f"[{label_html}]({md.relative(page_uri, target)})"


def unavailable(view: RunnerView, page_uri: str) -> str:
    why = "运行失败" if view.record is not None else "尚无结果"
    return _link(page_uri, view.page, f'<span class="living-missing">⚠ {why}（{md.text(view.name)}）</span>')


def _stale_mark(view: RunnerView) -> str:
    if view.origin != "stale":
        return ""
    return '<sup class="living-stale" title="过期结果：代码已改动，本次构建未重新运行">过期</sup>'


def value_inline(view: RunnerView, metric: str, spec: str, page_uri: str) -> str:
    if not view.ok:
        return unavailable(view, page_uri)
    metrics = view.result.get("metrics", {})
    if metric not in metrics:
        raise RefError(f"runner {view.name} has no metric {metric!r}; it has: {', '.join(sorted(metrics))}")
    try:
        shown = md.number(metrics[metric], spec)
    except ValueError as exc:
        raise RefError(f"format {spec!r} does not apply to {view.name}.{metric}: {exc}") from exc
    title = f"由运行器 {view.name} 计算"
    return f'<span class="living-value" title="{md.text(title)}">{md.text(shown)}</span>{_stale_mark(view)}'


def computed_text(claim: dict[str, Any]) -> str:
    """The computed value, shown to one more digit than the article stated."""
    value, tol = claim.get("computed"), claim.get("tolerance")
    if isinstance(value, float) and tol:
        decimals = 0
        while 0.5 * 10.0**-decimals > tol * 1.0000001 and decimals < 12:
            decimals += 1
        return format(value, f".{decimals + 1}f")
    return md.number(value)


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
    claim = _find_claim(view, claim_id)
    icon, label = VERDICT_LABELS[claim["verdict"]]
    computed = "—" if claim.get("computed") is None else computed_text(claim)
    badge = (
        f'<span class="living-claim living-{claim["verdict"]}" title="{md.text(claim.get("reason") or label)}">'
        f"文章：{md.text(claim['article'])} · 本机：{md.text(computed)} · {icon} {label}</span>"
    )
    target = f"{ERRATA_PAGE}#{claim_anchor(view.name, claim_id)}"
    return _link(page_uri, target, badge) + _stale_mark(view)


def fact_inline(fact: Fact, page_uri: str) -> str:
    icon = "✓ 核实无误" if fact.verdict == "agrees" else "✗ 史实有误"
    cites = " ".join(f'<a href="{md.text(c.url)}" title="{md.text(c.title)}">[{n}]</a>' for n, c in enumerate(fact.citations, 1))
    badge = f'<span class="living-fact living-{fact.verdict}">{icon}：{md.text(fact.correction)} {cites}</span>'
    return badge


def status_block(view: RunnerView, page_uri: str) -> str:
    link = md.relative(page_uri, view.page)
    if view.record is None:
        body = f"运行器 `{view.name}` 还没有结果（执行模式为 never 时不会运行）。[详情]({link})"
        return md.admonition("warning", f"尚无结果：{view.title}", body)
    prov = view.record.get("provenance", {})
    where = md.text(prov.get("device_name") or prov.get("device") or "?")
    when = md.text(prov.get("finished_at", "?"))
    if not view.ok:
        error = view.record.get("error") or {}
        body = f"运行器 `{view.name}` 失败：**{md.text(error.get('type', '?'))}** {md.text(error.get('message', ''))}\n\n[查看错误与输出]({link})"
        return md.admonition("failure", f"运行失败：{view.title}", body)
    origin = ORIGIN_LABELS.get(view.origin, view.origin)
    body = f"以下数值由运行器 `{view.name}` 于 {when} 在 {where} 上计算（{origin}）。[完整结果与运行环境]({link})"
    if view.origin == "stale":
        body += "\n\n过期原因：" + md.text("；".join(view.reasons))
        return md.admonition("warning", f"结果已过期：{view.title}", body)
    kind = "info" if view.origin == "frozen" else "success"
    return md.admonition(kind, f"运行结果：{view.title}", body)


def _require(view: RunnerView, section: str, name: str) -> Any:
    items = view.result.get(section, {})
    if name not in items:
        raise RefError(f"runner {view.name} has no {section[:-1]} {name!r}; it has: {', '.join(sorted(items))}")
    return items[name]


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
    return caption + md.table(tab["columns"], tab["rows"])


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
    return md.code_block(content, language, title=name)


def diagram_block(view: RunnerView, name: str, page_uri: str) -> str:
    if not view.ok:
        return unavailable(view, page_uri)
    graph = _require(view, "graphs", name)
    caption = f'\n\n<p class="living-caption">{md.text(graph["caption"])}</p>' if graph.get("caption") else ""
    return md.mermaid_graph(graph["nodes"], graph["edges"]) + caption


def claims_table(view: RunnerView, with_anchors: bool) -> str:
    """The runner's claims; anchors (for links from badges) only on the errata page."""
    rows = []
    for claim in view.claims():
        icon, label = VERDICT_LABELS[claim["verdict"]]
        anchor = f'<a id="{claim_anchor(view.name, claim["id"])}"></a>' if with_anchors else ""
        computed = "—" if claim.get("computed") is None else computed_text(claim)
        rows.append(
            [
                anchor + md.text(claim["source"]),
                md.text(claim["statement"]),
                md.text(claim["article"]),
                md.text(computed),
                f"{icon} {label}",
                md.text(claim.get("reason", "")),
            ]
        )
    header = ["出处", "文章原文", "文章数值", "本机计算", "结论", "说明"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) if rows else "（没有可核对的数值。）"


def provenance_table(view: RunnerView) -> str:
    record = view.record or {}
    prov = record.get("provenance", {})
    versions = prov.get("versions", {})
    rows = [
        ["来源", ORIGIN_LABELS.get(view.origin, view.origin)],
        ["设备", f"{prov.get('device', '?')}（{prov.get('device_name', '?')}）"],
        ["随机种子", prov.get("seed", "—")],
        ["运行耗时（秒）", prov.get("wall_time_s", "—")],
        ["进程总耗时（秒）", prov.get("process_wall_time_s", "—")],
        ["完成时间（UTC）", prov.get("finished_at", "—")],
        ["Git 提交", prov.get("git_commit", "—")],
        ["平台", prov.get("platform", "—")],
    ]
    rows += [[f"{name} 版本", version] for name, version in sorted(versions.items())]
    rows += [["缓存键", record.get("key", "—")], ["配置", json.dumps(record.get("config", {}), ensure_ascii=False, sort_keys=True)]]
    return md.table(["项目", "值"], rows)
