"""Executed Jupyter notebooks built from the build's own records: no second computation.

Each runner with a successful record gets an nbformat v4 notebook whose code cells call
`reportgen.jupyter` (so a reader can rerun it) and whose outputs are the recorded run's: its
captured stdout/stderr, and its metrics, claims, tables, figures (PNG from the entry directory)
and texts. The output bundles are built by the functions below, which `reportgen.jupyter` also
uses for a rerun, so a rerun shows its numbers the same way (in the language it is given). Plain data in, plain data out;
deterministic JSON (sorted keys, cell ids from the runner name and position).
"""

from __future__ import annotations

import base64
import html
import json
import keyword
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reportgen import markdown as md
from reportgen.i18n import DEFAULT, DEFAULT_TEXTS, Texts, texts_for
from reportgen.render import CLAIM_COLUMNS, RunnerView, claim_cells, item_info, source_line

NOTEBOOKS_DIR = "notebooks"
Bundle = dict[str, str]  # MIME type → data, as in a display_data output


def notebook_uri(name: str) -> str:
    """The notebook as a docs file (mkdocs-jupyter renders it as a page)."""
    return f"{NOTEBOOKS_DIR}/{name}.ipynb"


def download_uri(name: str) -> str:
    """A plain copy for download, beside the notebook page (where mkdocs-jupyter's include_source puts it)."""
    return f"{NOTEBOOKS_DIR}/{name}/{name}.ipynb"


def notebook_dir(cache_dir: Path) -> Path:
    """Where the build keeps the notebook files (beside the cache, so a test build has its own)."""
    return cache_dir.parent / NOTEBOOKS_DIR


# --- output bundles (shared with reportgen.jupyter) -------------------------------------------


def _esc(value: Any, texts: Texts = DEFAULT_TEXTS) -> str:
    return html.escape(md.number(value, texts=texts), quote=True)


def html_table(columns: list[str], rows: list[list[Any]], caption: str = "", texts: Texts = DEFAULT_TEXTS) -> str:
    """An HTML table with every cell escaped (runner output is never markup)."""
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_esc(v, texts)}</td>" for v in row) + "</tr>" for row in rows)
    cap = f"<p>{_esc(caption)}</p>" if caption else ""  # above the table, outside its scroll area
    return f"{cap}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def plain_table(columns: list[str], rows: list[list[Any]], caption: str = "", texts: Texts = DEFAULT_TEXTS) -> str:
    lines = [caption] if caption else []
    lines += [" | ".join(str(c) for c in columns)]
    lines += [" | ".join(md.number(v, texts=texts) for v in row) for row in rows]
    return "\n".join(lines)


def _table_bundle(
    columns: list[str], rows: list[list[Any]], caption: str = "", empty: str = "", texts: Texts = DEFAULT_TEXTS
) -> Bundle:
    if not rows and empty:
        return {"text/html": f"<p>{_esc(empty)}</p>", "text/plain": empty}
    return {
        "text/html": html_table(columns, rows, caption, texts),
        "text/plain": plain_table(columns, rows, caption, texts),
    }


def _item(result: dict[str, Any], section: str, name: str) -> Any:
    items = result.get(section) or {}
    if name not in items:
        raise KeyError(f"no {section[:-1]} {name!r}; there are: {', '.join(sorted(items)) or 'none'}")
    return items[name]


def metrics_bundle(result: dict[str, Any], language: str = DEFAULT) -> Bundle:
    t, metrics = texts_for(language), result.get("metrics") or {}
    rows = [[k, metrics[k]] for k in sorted(metrics)]
    return _table_bundle([t("col.name"), t("col.value")], rows, empty=t("nb.no_metrics"), texts=t)


def claims_bundle(result: dict[str, Any], language: str = DEFAULT) -> Bundle:
    t = texts_for(language)
    rows = [claim_cells(claim, t) for claim in result.get("claims") or []]
    return _table_bundle([t(c) for c in CLAIM_COLUMNS], rows, empty=t("claims.none"), texts=t)


def table_bundle(result: dict[str, Any], name: str, language: str = DEFAULT) -> Bundle:
    tab = _item(result, "tables", name)
    rows = [list(r) for r in tab["rows"]]
    return _table_bundle(list(tab["columns"]), rows, tab.get("caption") or "", texts=texts_for(language))


def figure_bundle(result: dict[str, Any], name: str, directory: Path) -> Bundle:
    """The figure file (relative to the run's output directory) as base64 PNG, with its caption."""
    figure = _item(result, "figures", name)
    caption = figure.get("caption") or name
    path = directory / figure["path"]
    if path.suffix.lower() != ".png":
        return {"text/plain": f"{caption} ({figure['path']})"}
    return {"image/png": base64.b64encode(path.read_bytes()).decode("ascii"), "text/plain": caption}


def text_bundle(result: dict[str, Any], name: str) -> Bundle:
    return {"text/plain": str(_item(result, "texts", name))}


# --- the notebook -----------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    """Multi-line strings as lists of lines, the way nbformat writes them (so Jupyter's save is a no-op)."""
    return text.splitlines(True)


def _markdown(cell_id: str, source: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": _lines(source)}


def _code(cell_id: str, count: int, source: str, outputs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "execution_count": count,
        "id": cell_id,
        "metadata": {},
        "outputs": outputs,
        "source": _lines(source),
    }


def _display(bundle: Bundle) -> dict[str, Any]:
    data = {k: _lines(v) if k.startswith("text/") else v for k, v in bundle.items()}
    return {"data": data, "metadata": {}, "output_type": "display_data"}


@dataclass(frozen=True)
class RunCall:
    """One `run_example(...)` of a notebook: the runner, the overrides the build passed, its device."""

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)
    device: str | None = None  # only for runners whose results depend on the device

    def source(self, upstreams: str = "") -> str:
        literal = "{" + ", ".join(f"{k!r}: {v!r}" for k, v in sorted(self.overrides.items())) + "}"
        device_arg = f", device={self.device!r}" if self.device else ""
        return f"run_example({self.name!r}, {literal}{device_arg}{upstreams})"


def run_call(name: str, record: dict[str, Any] | None, uses_device: bool) -> RunCall:
    """The call that repeats the run `record` holds (no record: the runner's defaults)."""
    record = record or {}
    overrides = ((record.get("inputs") or {}).get("code") or {}).get("config") or {}
    device = (record.get("provenance") or {}).get("device") if uses_device else None
    return RunCall(name, dict(overrides), device)


def _variable(name: str, index: int) -> str:
    """The name an upstream's example gets in the run cell (its own, unless Python or the cell has it)."""
    taken = name in ("result", "run_example") or name.startswith("show_") or keyword.iskeyword(name)
    return name if name.isidentifier() and not taken else f"upstream_{index}"


def run_source(call: RunCall, shows: list[str], upstreams: list[RunCall] | tuple[RunCall, ...] = ()) -> str:
    """The code that reproduces the run: the upstreams it builds on first, then the runner with the
    overrides the build passed and its device; it imports the `show_*` functions the later cells
    use (two short lines, readable on the page)."""
    used = sorted(set(shows))
    lines = [f"from reportgen.jupyter import {', '.join(['run_example', *used[:2]])}"]
    if used[2:]:
        lines.append(f"from reportgen.jupyter import {', '.join(used[2:])}")
    names = [_variable(up.name, i) for i, up in enumerate(upstreams, 1)]
    runs = [f"{var} = {up.source()}" for var, up in zip(names, upstreams, strict=True)]
    given = ", ".join(f"{up.name!r}: {var}" for var, up in zip(names, upstreams, strict=True))
    return "\n".join([*lines, "", *runs, "result = " + call.source(f", upstreams={{{given}}}" if given else "")])


def intro(view: RunnerView) -> str:
    t, prov = view.texts, (view.record or {}).get("provenance", {})
    device = t.paren(prov.get("device_name") or "?", prov.get("device") or "?")
    commit = str(prov.get("git_commit", "?")).replace("`", "")
    when = md.text(t.date(prov.get("finished_at"), "?"))
    lines = [
        f"# {t('nb.title', title=md.text(view.title))}",  # "Jupyter": an ASCII anchor (see build_notebook)
        "",
        source_line(view),
        "",
        t("nb.recorded", when=when, device=md.text(device), commit=commit),
        "",
        t("nb.rerun"),
        "",
        t("nb.download", name=view.name),
    ]
    if view.origin == "stale":
        lines += ["", t("nb.stale", origin=t.origin("stale"), reasons=md.text(t.join(view.reasons)))]
    return "\n".join(lines)


def build_notebook(
    view: RunnerView, directory: Path, uses_device: bool = False, upstreams: list[RunCall] | tuple[RunCall, ...] = ()
) -> dict[str, Any] | None:
    """The executed notebook of a successful record (None for a failed or missing one).

    `directory` holds the record's files (the cache entry); figures are embedded from it.
    `upstreams`: how to repeat the runs of the runners it builds on (`view.needs`), run first.
    """
    if not view.ok or view.record is None:
        return None
    record, result, name, t = view.record, view.result, view.name, view.texts
    streams = [
        {"name": stream, "output_type": "stream", "text": _lines(record[stream])}
        for stream in ("stdout", "stderr")
        if record.get(stream)
    ]
    lang = view.language
    steps: list[tuple[str, str, list[dict[str, Any]]]] = [
        (f"## {t('nb.metrics')}", "show_metrics(result)", [_display(metrics_bundle(result, lang))]),
        (f"## {t('nb.claims')}", "show_claims(result)", [_display(claims_bundle(result, lang))]),
    ]
    for section, show, bundle in (
        ("tables", "show_table", lambda n: table_bundle(result, n, lang)),
        ("figures", "show_figure", lambda n: figure_bundle(result, n, directory)),
        ("texts", "show_text", lambda n: text_bundle(result, n)),
    ):
        for item in sorted(result.get(section) or {}):
            # every heading has a unique ASCII part (see the `nb.*` texts): mkdocs-jupyter's TOC and
            # nbconvert's heading ids drop other characters, and links to them would lead nowhere
            title = item_info(view, section, item).get("title")
            key = f"nb.{section[:-1]}"
            heading = (f"## {t('nb.titled', title=md.text(title), kind=section[:-1], name=html.escape(item))}" if title
                       else f"## {t(key, name=html.escape(item))}")
            if section == "figures" and result["figures"][item].get("caption"):
                heading += "\n\n" + md.text(result["figures"][item]["caption"])  # an image output has no text
            steps.append((heading, f"{show}(result, {item!r})", [_display(bundle(item))]))
    shows = [source.split("(")[0] for _, source, _ in steps]
    source = run_source(run_call(name, record, uses_device), shows, upstreams)
    steps.insert(0, (f"## {t('nb.run')}", source, streams))
    cells = [_markdown(f"{name}-0", intro(view))]
    for count, (heading, source, outputs) in enumerate(steps, 1):
        cells.append(_markdown(f"{name}-{len(cells)}", heading))
        cells.append(_code(f"{name}-{len(cells)}", count, source, outputs))
    metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "living_article": {"key": record.get("key", ""), "runner": name},
    }
    return {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


def notebook_text(notebook: dict[str, Any]) -> str:
    """The .ipynb file content, formatted as nbformat writes it (sorted keys, indent 1)."""
    return json.dumps(notebook, ensure_ascii=False, sort_keys=True, indent=1) + "\n"


def write_if_changed(path: Path, text: str) -> bool:
    """Write atomically, and only when the content differs. Returns True if written."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return True
