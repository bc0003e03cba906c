"""Assemble what the site needs from the outcomes: views per runner and the generated files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from reportgen.context import ARTIFACTS_DIR
from reportgen.drift import DRIFT_PAGE, Drift, render_drift_page
from reportgen.facts import Fact
from reportgen.i18n import DEFAULT, texts_for
from reportgen.manifest import MANIFEST_URI, manifest_text
from reportgen.notebooks import (
    RunCall,
    build_notebook,
    download_uri,
    notebook_text,
    notebook_uri,
    run_call,
    write_if_changed,
)
from reportgen.pages import RESULTS_INDEX, errata_page, results_index, runner_page
from reportgen.pipeline import Outcome
from reportgen.render import ERRATA_PAGE, RunnerView
from reportgen.report import REPORT_PAGE, render_report_page, report_rows

CSS_URI = "assets/living-article.css"
CSS_SOURCE = Path(__file__).parent / "assets" / "living.css"
JS_URI = "assets/living-article.js"  # keyboard access to scrolling regions (see the file)
JS_SOURCE = Path(__file__).parent / "assets" / "living.js"


def script_text(language: str = DEFAULT) -> str:
    """living.js with the labels it gives scrolling regions, in the page's language."""
    t = texts_for(language)
    labels = {key: t(f"a11y.scroll.{key}") for key in ("table", "output", "code")}
    return f"var LIVING_TEXTS = {json.dumps(labels, ensure_ascii=False)};\n" + JS_SOURCE.read_text(encoding="utf-8")


@dataclass
class SiteContent:
    views: dict[str, RunnerView]
    pages: dict[str, str] = field(default_factory=dict)  # docs-relative path → Markdown (or JSON)
    files: dict[str, Path] = field(default_factory=dict)  # docs-relative path → file on disk
    language: str = DEFAULT  # of every generated page (theme.language)


def view_of(outcome: Outcome, language: str = DEFAULT) -> RunnerView:
    spec = outcome.spec
    record = outcome.entry.record if outcome.entry is not None else None
    reasons = list(outcome.reasons)
    return RunnerView(spec.name, spec.title, spec.source, record, outcome.origin, reasons, tuple(spec.needs), language)


def upstream_calls(outcomes: dict[str, Outcome], outcome: Outcome) -> list[RunCall]:
    """How a notebook repeats the runs the runner builds on: as the build ran them (else defaults)."""
    calls = []
    for need in outcome.spec.needs:
        up = outcomes.get(need)
        record = up.entry.record if up is not None and up.entry is not None else None
        calls.append(run_call(need, record, up is not None and up.spec.uses_device))
    return calls


def assemble(
    outcomes: dict[str, Outcome], facts: dict[str, Fact], notebook_dir: Path | None = None, language: str = DEFAULT
) -> SiteContent:
    """Views, generated pages and files in `language`; with `notebook_dir`, also each successful
    runner's notebook."""
    views = {name: view_of(o, language) for name, o in outcomes.items()}
    content = SiteContent(views, language=language)
    ordered = list(views.values())
    content.pages[RESULTS_INDEX] = results_index(ordered, language)
    content.pages[ERRATA_PAGE] = errata_page(ordered, facts, language)
    content.pages[REPORT_PAGE] = render_report_page(report_rows(ordered), language)
    for name, view in views.items():
        entry = outcomes[name].entry
        has_notebook = notebook_dir is not None and entry is not None and view.ok
        content.pages[view.page] = runner_page(view, notebook=has_notebook)
        if entry is None:
            continue
        if has_notebook:
            upstreams = upstream_calls(outcomes, outcomes[name])
            add_notebook(content, view, entry.directory, outcomes[name].spec.uses_device, notebook_dir, upstreams)
        for rel in sorted(entry.record.get("files", {})):
            if not rel.startswith(f"{ARTIFACTS_DIR}/"):  # kept for downstream runners, not published
                content.files[view.file_uri(rel)] = entry.file(rel)
    content.files[CSS_URI] = CSS_SOURCE
    content.pages[JS_URI] = script_text(language)
    return content


def add_notebook(
    content: SiteContent,
    view: RunnerView,
    directory: Path,
    uses_device: bool,
    out_dir: Path,
    upstreams: list[RunCall] | None = None,
) -> None:
    """Write the runner's executed notebook (only when it changed) and add it with its download copy."""
    notebook = build_notebook(view, directory, uses_device, upstreams or [])
    if notebook is None:
        return
    text = notebook_text(notebook)
    path = out_dir / f"{view.name}.ipynb"
    write_if_changed(path, text)
    content.files[notebook_uri(view.name)] = path  # a file on disk: mkdocs-jupyter renders it as a page
    content.pages[download_uri(view.name)] = text  # generated content: a plain static file to download


def add_drift_pages(content: SiteContent, drift: Drift) -> None:
    """Add the drift page and the manifest that the next build (or another site) compares with."""
    content.pages[DRIFT_PAGE] = render_drift_page(drift.changes, drift.baseline, content.language)
    content.pages[MANIFEST_URI] = manifest_text(drift.manifest)


def write_pages(content: SiteContent, out_dir: Path) -> list[Path]:
    """Write the generated Markdown to a directory (for inspection); only changed files are written."""
    written = []
    for rel, text in sorted(content.pages.items()):
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            written.append(target)
    return written
