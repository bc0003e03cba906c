"""The run report: per runner, whether its result was computed in this build or came
from the cache, how long it took and where, like sphinx-gallery's computation-times page.

Collect (`report_rows`, from the views of one build) is separate from render (`render_report_page`
for the site, `render_report_text` for `reportgen report`). Plain functions, deterministic output.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from reportgen import markdown as md
from reportgen.i18n import DEFAULT, Texts, texts_for
from reportgen.render import RESULTS_DIR, RunnerView

REPORT_PAGE = f"{RESULTS_DIR}/report.md"
HEADER = ("col.runner", "col.status", "col.cache", "col.wall_time", "col.device", "col.device_name", "col.profile")


@dataclass(frozen=True)
class ReportRow:
    name: str
    title: str
    page: str
    status: str  # "ok" | "error" | "missing" | "blocked"
    origin: str  # "ran" | "cache" | "frozen" | "stale" | "missing" | "blocked"; the cache column says
    # whether the cache was hit ("ran" is a miss: the runner executed in this build)
    wall_time_s: float | None
    device: str
    device_name: str
    profile: str
    reasons: tuple[str, ...] = ()  # why a blocked runner was not run


def report_rows(views: list[RunnerView]) -> list[ReportRow]:
    """One row per runner, in the order given (the registry's)."""
    rows = []
    for view in views:
        record = view.record or {}
        prov = record.get("provenance") or {}
        wall = prov.get("wall_time_s")
        profile = (view.result.get("metrics") or {}).get("profile")
        status = "blocked" if view.blocked else "missing" if view.record is None else ("ok" if view.ok else "error")
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
                reasons=tuple(view.reasons) if view.blocked else (),
            )
        )
    return rows


def _seconds(value: float | None) -> str:
    return "—" if value is None else format(value, ".2f")


def _cells(row: ReportRow, t: Texts) -> list[str]:
    cache = t(f"report.cache.{row.origin}") if t.has(f"report.cache.{row.origin}") else row.origin
    return [
        t(f"report.status.{row.status}", reasons=t.join(row.reasons)),
        cache,
        _seconds(row.wall_time_s),
        row.device,
        row.device_name,
        row.profile,
    ]


def summary(rows: list[ReportRow], language: str = DEFAULT) -> str:
    """One sentence: what ran in this build and how long it took, what came from elsewhere."""
    t = texts_for(language)
    ran = [r for r in rows if r.origin == "ran"]
    hits = [r for r in rows if r.origin in ("cache", "frozen")]
    total = _seconds(sum(r.wall_time_s or 0.0 for r in ran))
    shown = _seconds(sum(r.wall_time_s or 0.0 for r in rows))
    head = t("report.ran", count=len(ran), seconds=total) if ran else t("report.ran_none")
    return t("report.summary", head=head, hits=len(hits), rest=len(rows) - len(ran) - len(hits), seconds=shown)


def render_report_page(rows: list[ReportRow], language: str = DEFAULT) -> str:
    t = texts_for(language)
    cells = []
    for row in rows:
        link = f"[{md.text(row.title)}]({md.relative(REPORT_PAGE, row.page)})"
        cells.append([link, *(md.text(c) for c in _cells(row, t))])
    table = md.markup_table([t(h) for h in HEADER], cells)
    parts = [f"# {t('report.title')}", "", t("report.intro"), "", table, ""]
    return "\n".join([*parts, md.text(summary(rows, language)), ""])


def _width(text: str) -> int:
    # CJK characters take two terminal columns; without this the Chinese columns would not line up
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def text_table(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table for the terminal, columns aligned by display width."""
    widths = [max(_width(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c + " " * (w - _width(c)) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def render_report_text(rows: list[ReportRow], language: str = DEFAULT) -> str:
    t = texts_for(language)
    table = text_table([t(h) for h in HEADER], [[row.name, *_cells(row, t)] for row in rows])
    return f"{table}\n\n{summary(rows, language)}\n"
