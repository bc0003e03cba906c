"""The run report: per runner, whether its result was computed in this build or came
from the cache, how long it took and where, like sphinx-gallery's computation-times page; and
where the time of this build went: each runner it ran, by process time, and the critical path.

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
TIME_HEADER = ("col.runner", "report.time.col.process", "report.time.col.on_path")
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
    needs: tuple[str, ...] = ()  # the runners it builds on
    process_time_s: float | None = None  # of its whole process (starting Python, imports), when known

    @property
    def seconds(self) -> float:
        """What the runner cost the build that ran it: its process time, else its run time."""
        if self.process_time_s is not None:
            return self.process_time_s
        return self.wall_time_s or 0.0


def report_rows(views: list[RunnerView]) -> list[ReportRow]:
    """One row per runner, in the order given (the registry's)."""
    rows = []
    for view in views:
        record = view.record or {}
        prov = record.get("provenance") or {}
        wall, process = prov.get("wall_time_s"), prov.get("process_wall_time_s")
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
                needs=tuple(view.needs),
                process_time_s=float(process) if isinstance(process, (int, float)) else None,
            )
        )
    return rows


def critical_path(rows: list[ReportRow]) -> tuple[list[str], float]:
    """The chain of runners run in this build, each building on the one before, whose times add up
    to the most (a runner alone is a chain): upstream first, and its total seconds. The build
    cannot take less however many runners run at once. Ties go to the runner listed first;
    ([], 0.0) when nothing ran. Cached upstreams cost this build nothing and are not in it."""
    ran = {row.name: row for row in rows if row.origin == "ran"}
    best: dict[str, tuple[float, list[str]]] = {}

    def chain(name: str, seen: frozenset[str]) -> tuple[float, list[str]]:
        if name not in best:
            ups = [chain(up, seen | {name}) for up in ran if up in ran[name].needs and up not in seen]
            total, path = max(ups, key=lambda c: c[0], default=(0.0, []))  # max keeps the first of equals
            best[name] = (total + ran[name].seconds, [*path, name])
        return best[name]

    chains = [chain(name, frozenset()) for name in ran]
    total, path = max(chains, key=lambda c: c[0], default=(0.0, []))
    return path, round(total, 3)


def _timed(rows: list[ReportRow]) -> list[ReportRow]:
    """The runners run in this build, longest first (equals in the order given)."""
    return sorted((row for row in rows if row.origin == "ran"), key=lambda row: -row.seconds)


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
    return "\n".join([*parts, md.text(summary(rows, language)), "", *_time_section(rows, t)])


def _time_section(rows: list[ReportRow], t: Texts) -> list[str]:
    """The page's lines on where this build's time went (none when nothing ran)."""
    path, total = critical_path(rows)
    if not path:
        return []
    cells = [
        [f"[{md.text(row.title)}]({md.relative(REPORT_PAGE, row.page)})", _seconds(row.seconds), t.yes_no(row.name in path)]
        for row in _timed(rows)
    ]
    table = md.markup_table([t(h) for h in TIME_HEADER], cells)
    sentence = t("report.time.path", path=" → ".join(md.text(name) for name in path), seconds=_seconds(total))
    return [f"## {t('report.time.title')}", "", t("report.time.intro"), "", table, "", sentence, ""]


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
    text = f"{table}\n\n{summary(rows, language)}\n"
    path, total = critical_path(rows)
    if not path:
        return text
    cells = [[row.name, _seconds(row.seconds), t.yes_no(row.name in path)] for row in _timed(rows)]
    times = text_table([t(h) for h in TIME_HEADER], cells)
    sentence = t("report.time.path", path=" → ".join(path), seconds=_seconds(total))
    return f"{text}\n{t('report.time.title')}\n\n{times}\n\n{sentence}\n"
