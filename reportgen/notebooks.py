"""Executed Jupyter notebooks built from the build's own records: no second computation.

Each runner with a successful record gets an nbformat v4 notebook whose code cells call
`runners.notebook` (so a reader can rerun it) and whose outputs are the recorded run's: its
captured stdout/stderr, and its metrics, claims, tables, figures (PNG from the entry directory)
and texts. The output bundles are built by the functions below, which `runners.notebook` also
uses for a rerun, so a rerun shows its numbers the same way. Plain data in, plain data out;
deterministic JSON (sorted keys, cell ids from the runner name and position).
"""

from __future__ import annotations

import base64
import html
import json
import os
import uuid
from pathlib import Path
from typing import Any

from reportgen import markdown as md
from reportgen.render import ORIGIN_LABELS, VERDICT_LABELS, RunnerView, computed_text

NOTEBOOKS_DIR = "notebooks"
Bundle = dict[str, str]  # MIME type → data, as in a display_data output
CLAIM_COLUMNS = ["出处", "文章原文", "文章数值", "本机计算", "结论", "说明"]


def notebook_uri(name: str) -> str:
    """The notebook as a docs file (mkdocs-jupyter renders it as a page)."""
    return f"{NOTEBOOKS_DIR}/{name}.ipynb"


def download_uri(name: str) -> str:
    """A plain copy for download, beside the notebook page (where mkdocs-jupyter's include_source puts it)."""
    return f"{NOTEBOOKS_DIR}/{name}/{name}.ipynb"


def notebook_dir(cache_dir: Path) -> Path:
    """Where the build keeps the notebook files (beside the cache, so a test build has its own)."""
    return cache_dir.parent / NOTEBOOKS_DIR


# --- output bundles (shared with runners.notebook) -------------------------------------------


def _esc(value: Any) -> str:
    return html.escape(md.number(value), quote=True)


def html_table(columns: list[str], rows: list[list[Any]], caption: str = "") -> str:
    """An HTML table with every cell escaped (runner output is never markup)."""
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_esc(v)}</td>" for v in row) + "</tr>" for row in rows)
    cap = f"<p>{_esc(caption)}</p>" if caption else ""  # above the table, outside its scroll area
    return f"{cap}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def plain_table(columns: list[str], rows: list[list[Any]], caption: str = "") -> str:
    lines = [caption] if caption else []
    lines += [" | ".join(str(c) for c in columns)]
    lines += [" | ".join(md.number(v) for v in row) for row in rows]
    return "\n".join(lines)


def _table_bundle(columns: list[str], rows: list[list[Any]], caption: str = "", empty: str = "") -> Bundle:
    if not rows and empty:
        return {"text/html": f"<p>{_esc(empty)}</p>", "text/plain": empty}
    return {
        "text/html": html_table(columns, rows, caption),
        "text/plain": plain_table(columns, rows, caption),
    }


def _item(result: dict[str, Any], section: str, name: str) -> Any:
    items = result.get(section) or {}
    if name not in items:
        raise KeyError(f"no {section[:-1]} {name!r}; there are: {', '.join(sorted(items)) or 'none'}")
    return items[name]


def metrics_bundle(result: dict[str, Any]) -> Bundle:
    metrics = result.get("metrics") or {}
    return _table_bundle(["名称", "值"], [[k, metrics[k]] for k in sorted(metrics)], empty="（没有指标。）")


def claims_bundle(result: dict[str, Any]) -> Bundle:
    rows = []
    for claim in result.get("claims") or []:
        icon, label = VERDICT_LABELS[claim["verdict"]]
        computed = "—" if claim.get("computed") is None else computed_text(claim)
        rows.append(
            [
                claim["source"],
                claim["statement"],
                claim["article"],
                computed,
                f"{icon} {label}",
                claim.get("reason", ""),
            ]
        )
    return _table_bundle(CLAIM_COLUMNS, rows, empty="（没有可核对的数值。）")


def table_bundle(result: dict[str, Any], name: str) -> Bundle:
    tab = _item(result, "tables", name)
    return _table_bundle(list(tab["columns"]), [list(r) for r in tab["rows"]], tab.get("caption") or "")


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


def run_source(name: str, overrides: dict[str, Any], device: str | None, shows: list[str]) -> str:
    """The code that reproduces the run: the runner, the overrides the build passed, and its device;
    it imports the `show_*` functions the later cells use (two short lines, readable on the page)."""
    literal = "{" + ", ".join(f"{k!r}: {v!r}" for k, v in sorted(overrides.items())) + "}"
    device_arg = f", device={device!r}" if device else ""
    used = sorted(set(shows))
    lines = [f"from reportgen.jupyter import {', '.join(['run_example', *used[:2]])}"]
    if used[2:]:
        lines.append(f"from reportgen.jupyter import {', '.join(used[2:])}")
    return "\n".join([*lines, "", f"result = run_example({name!r}, {literal}{device_arg})"])


def intro(view: RunnerView) -> str:
    prov = (view.record or {}).get("provenance", {})
    device = f"{prov.get('device_name') or '?'}（{prov.get('device') or '?'}）"
    lines = [
        f"# {md.text(view.title)} · Jupyter 笔记本",  # "jupyter": an ASCII anchor (see build_notebook)
        "",
        f"文章出处：{md.text(view.source)} · 运行器：`{view.name}`",
        "",
        f"下面各单元格的输出记录自本站构建时对下列代码的那次运行：{md.text(prov.get('finished_at', '?'))}（UTC）"
        f"在 {md.text(device)} 上运行，代码提交 `{str(prov.get('git_commit', '?')).replace('`', '')}`。"
        "网站页面上的数值与这里的输出来自同一次运行，没有另行计算。",
        "",
        "重新运行：在项目根目录安装本项目（`python -m pip install -e .`），在该目录下用 Jupyter 打开本笔记本，"
        "再依次运行各单元格。换一台设备运行时，训练类示例的数值可能略有不同。",
        "",
        f"下载本笔记本：[{view.name}.ipynb]({view.name}.ipynb)",
    ]
    if view.origin == "stale":
        reasons = "；".join(view.reasons)
        lines += ["", f"注意：这是{ORIGIN_LABELS['stale']}。原因：{md.text(reasons)}"]
    return "\n".join(lines)


def build_notebook(view: RunnerView, directory: Path, uses_device: bool = False) -> dict[str, Any] | None:
    """The executed notebook of a successful record (None for a failed or missing one).

    `directory` holds the record's files (the cache entry); figures are embedded from it.
    """
    if not view.ok or view.record is None:
        return None
    record, result, name = view.record, view.result, view.name
    overrides = ((record.get("inputs") or {}).get("code") or {}).get("config") or {}
    device = (record.get("provenance") or {}).get("device") if uses_device else None
    streams = [
        {"name": stream, "output_type": "stream", "text": _lines(record[stream])}
        for stream in ("stdout", "stderr")
        if record.get(stream)
    ]
    steps: list[tuple[str, str, list[dict[str, Any]]]] = [
        ("## 指标（metrics）", "show_metrics(result)", [_display(metrics_bundle(result))]),
        ("## 文章中的数值与核对（claims）", "show_claims(result)", [_display(claims_bundle(result))]),
    ]
    for section, label, show, bundle in (
        ("tables", "表", "show_table", lambda n: table_bundle(result, n)),
        ("figures", "图", "show_figure", lambda n: figure_bundle(result, n, directory)),
        ("texts", "输出", "show_text", lambda n: text_bundle(result, n)),
    ):
        for item in sorted(result.get(section) or {}):
            heading = f"## {label}：{html.escape(item)}（{section[:-1]}）"
            if section == "figures" and result["figures"][item].get("caption"):
                heading += "\n\n" + md.text(result["figures"][item]["caption"])  # an image output has no text
            steps.append((heading, f"{show}(result, {item!r})", [_display(bundle(item))]))
    # every heading carries a unique ASCII part: mkdocs-jupyter's TOC and nbconvert's heading ids
    # both drop non-ASCII characters, so Chinese-only headings would get links that lead nowhere
    shows = [source.split("(")[0] for _, source, _ in steps]
    steps.insert(0, ("## 运行（run）", run_source(name, overrides, device, shows), streams))
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
