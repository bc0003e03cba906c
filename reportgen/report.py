"""The run report (运行报告): per runner, whether its result was computed in this build or came
from the cache, how long it took and where, like sphinx-gallery's computation-times page.

Collect (`report_rows`, from the views of one build) is separate from render (`render_report_page`
for the site, `render_report_text` for `reportgen report`). Plain functions, deterministic output.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from reportgen import markdown as md
from reportgen.render import RESULTS_DIR, RunnerView

REPORT_PAGE = f"{RESULTS_DIR}/report.md"
REPORT_TITLE = "运行报告"

STATUS_LABELS = {"ok": "成功", "error": "失败", "missing": "无结果"}
# origin → whether the cache was hit; "ran" is a miss (the runner executed in this build)
CACHE_LABELS = {
    "ran": "未命中（运行）",
    "cache": "命中（缓存）",
    "frozen": "命中（冻结结果）",
    "stale": "过期（未运行）",
    "missing": "无结果（未运行）",
}
HEADER = ["运行器", "状态", "缓存", "运行耗时（秒）", "设备", "设备名称", "档位"]


@dataclass(frozen=True)
class ReportRow:
    name: str
    title: str
    page: str
    status: str  # "ok" | "error" | "missing"
    origin: str  # "ran" | "cache" | "frozen" | "stale" | "missing"
    wall_time_s: float | None
    device: str
    device_name: str
    profile: str


def report_rows(views: list[RunnerView]) -> list[ReportRow]:
    """One row per runner, in the order given (the registry's)."""
    rows = []
    for view in views:
        record = view.record or {}
        prov = record.get("provenance") or {}
        wall = prov.get("wall_time_s")
        profile = (view.result.get("metrics") or {}).get("profile")
        status = "missing" if view.record is None else ("ok" if view.ok else "error")
        rows.append(
            ReportRow(
                name=view.name,
                title=view.title,
                page=view.page,
                status=status,
                origin=view.origin,
                wall_time_s=float(wall) if isinstance(wall, (int, float)) else None,
                device=str(prov.get("device") or "—"),
                device_name=str(prov.get("device_name") or "—"),
                profile="—" if profile is None else str(profile),
            )
        )
    return rows


def _seconds(value: float | None) -> str:
    return "—" if value is None else format(value, ".2f")


def _cells(row: ReportRow) -> list[str]:
    return [
        STATUS_LABELS[row.status],
        CACHE_LABELS.get(row.origin, row.origin),
        _seconds(row.wall_time_s),
        row.device,
        row.device_name,
        row.profile,
    ]


def summary(rows: list[ReportRow]) -> str:
    """One sentence: what ran in this build and how long it took, what came from elsewhere."""
    ran = [r for r in rows if r.origin == "ran"]
    hits = [r for r in rows if r.origin in ("cache", "frozen")]
    total = sum(r.wall_time_s or 0.0 for r in ran)
    shown = sum(r.wall_time_s or 0.0 for r in rows)
    head = f"本次构建运行了 {len(ran)} 个运行器，运行耗时合计 {total:.2f} 秒" if ran else "本次构建没有运行任何运行器"
    return (
        f"{head}；{len(hits)} 个结果来自缓存或冻结结果，{len(rows) - len(ran) - len(hits)} 个过期或没有结果。"
        f"所列结果当初的运行耗时合计 {shown:.2f} 秒。"
    )


def render_report_page(rows: list[ReportRow]) -> str:
    table = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        link = f"[{md.text(row.title)}]({md.relative(REPORT_PAGE, row.page)})"
        table.append("| " + " | ".join([link, *(md.text(c) for c in _cells(row))]) + " |")
    intro = (
        "本页列出最近一次构建中每个运行器的结果：是否成功，是本次运行的（缓存未命中）还是取自缓存"
        "（代码、配置和依赖都未改变时命中），运行耗时、设备，以及训练运行器的档位（快速或完整）。"
    )
    return "\n".join([f"# {REPORT_TITLE}", "", intro, "", *table, "", md.text(summary(rows)), ""])


def _width(text: str) -> int:
    # CJK characters take two terminal columns; without this the Chinese columns would not line up
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def text_table(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table for the terminal, columns aligned by display width."""
    widths = [max(_width(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c + " " * (w - _width(c)) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def render_report_text(rows: list[ReportRow]) -> str:
    table = text_table(HEADER, [[row.name, *_cells(row)] for row in rows])
    return f"{table}\n\n{summary(rows)}\n"
