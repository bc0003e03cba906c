"""reportgen.i18n: one table per language, chosen by theme.language, used by every generated page."""

from __future__ import annotations

import copy
import json
import pickle
import re
import string
from pathlib import Path
from typing import Any

import pytest
from toyproject import PNG

from reportgen import markdown as md
from reportgen.api import Result
from reportgen.drift import Change, render_drift_page, render_drift_text
from reportgen.facts import Citation, Fact
from reportgen.fingerprint import explain_change
from reportgen.i18n import DEFAULT, FALLBACK, LANGUAGES, Message, language_code, supported, texts_for
from reportgen.i18n import en as en_table
from reportgen.i18n import zh as zh_table
from reportgen.inline import PageContext, substitute
from reportgen.notebooks import build_notebook, notebook_text
from reportgen.pages import errata_page, results_index, runner_page
from reportgen.render import RunnerView
from reportgen.report import render_report_page, render_report_text, report_rows

CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")
EN, ZH = texts_for("en"), texts_for("zh")


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def test_both_tables_have_every_key_with_the_same_placeholders() -> None:
    assert set(LANGUAGES) == {"zh", "en"}
    assert zh_table.TEXTS.keys() == en_table.TEXTS.keys()
    for key, template in zh_table.TEXTS.items():
        assert fields(template) == fields(en_table.TEXTS[key]), key


def test_the_english_table_has_no_cjk_character() -> None:
    assert not [k for k, v in en_table.TEXTS.items() if CJK.search(v)]


@pytest.mark.parametrize(
    ("code", "language"),
    [("zh", "zh"), ("zh_CN", "zh"), ("zh-Hans", "zh"), ("ZH-tw", "zh"), ("en", "en"), ("en-GB", "en"),
     ("fr", "en"), ("", "en"), (None, "en")],
)
def test_language_codes(code: str | None, language: str) -> None:
    assert language_code(code) == language
    assert texts_for(code).code == language


def test_unknown_language_falls_back_to_english() -> None:
    assert FALLBACK == "en" and not supported("fr") and supported("zh-Hant")
    assert DEFAULT == "zh"  # what a caller that passes no language gets: the pages as they were


@pytest.mark.parametrize(
    ("value", "zh", "en"),
    [
        ("2026-12-01T09:20:00Z", "2026年12月1日 09:20 UTC", "1 December 2026, 09:20 UTC"),
        ("2026-12-01T10:20:00+01:00", "2026年12月1日 09:20 UTC", "1 December 2026, 09:20 UTC"),
        ("2026-01-02T00:00:59", "2026年1月2日 00:00 UTC", "2 January 2026, 00:00 UTC"),
        ("last week", "last week", "last week"),  # not a timestamp: shown as it is
        (None, "—", "—"),
    ],
)
def test_dates_per_language(value: Any, zh: str, en: str) -> None:
    assert ZH.date(value) == zh
    assert EN.date(value) == en


def test_booleans_and_verdicts_per_language() -> None:
    assert (md.number(True, texts=ZH), md.number(False, texts=ZH)) == ("是", "否")
    assert (md.number(True, texts=EN), md.number(False, ".2f", EN)) == ("yes", "no")
    assert md.table(["a"], [[True]], EN) == "| a |\n|---|\n| yes |"
    assert [ZH.verdict(v) for v in ("agrees", "differs", "not_computable", "contradictory")] == [
        "✓ 相符", "✗ 不符", "? 无法由文中条件计算", "⚠ 文中自相矛盾"]
    assert [EN.verdict(v) for v in ("agrees", "differs", "not_computable", "contradictory")] == [
        "✓ agrees", "✗ differs", "? cannot be computed from the text", "⚠ contradicts itself"]


def test_a_message_is_english_text_that_a_page_shows_in_its_language() -> None:
    message = Message("reason.upstream_failed", name="cnn", error="RuntimeError: boom")
    assert message == "upstream cnn failed: RuntimeError: boom" and isinstance(message, str)
    assert ZH.message(message) == "上游 cnn 失败：RuntimeError: boom"
    assert ZH.join([message, "plain text"]) == "上游 cnn 失败：RuntimeError: boom；plain text"
    for kept in (copy.copy(message), pickle.loads(pickle.dumps(message))):
        assert kept == message and ZH.message(kept) == ZH.message(message)


def inputs(files: dict[str, str], config: dict[str, Any], machine: dict[str, str], python: str) -> dict[str, Any]:
    env = {"python": python, "device": "cpu", "packages": {"torch": "2.1"}, "machine": machine}
    return {"code": {"files": files, "config": config, "protocol": 1}, "env": env}


def test_staleness_reasons_keep_their_english_and_translate() -> None:
    old = inputs({"runners/a.py": "1", "runners/old.py": "2"}, {}, {"threads": "1"}, "3.11")
    new = inputs({"runners/a.py": "9", "runners/new.py": "3"}, {"x": 1}, {"threads": "2", "cpu": "AMD"}, "3.12")
    reasons = explain_change(old, new)
    assert reasons == [
        "runners/a.py changed", "runners/new.py is new", "runners/old.py no longer used", 'config {} → {"x":1}',
        "cpu absent → AMD", "threads 1 → 2", "python 3.11 → 3.12",
    ]
    assert [ZH.message(r) for r in reasons] == [
        "runners/a.py 已改动", "新增了 runners/new.py", "不再使用 runners/old.py", '配置 {} → {"x":1}',
        "处理器 无 → AMD", "线程数 1 → 2", "Python 3.11 → 3.12",
    ]
    assert explain_change(None, new) == ["no stored result"] and ZH.message(explain_change(None, new)[0]) == "没有已存储的结果"


# ---- a whole site in English: no CJK character when the runner data is ASCII -------------------



def ascii_record() -> dict[str, Any]:
    r = Result()
    r.metric("accuracy", 0.98)
    r.metric("exported", True)
    r.check("acc", source="s 1", statement="accuracy 98%", article="0.98", computed=0.981)
    r.check("loss", source="s 1", statement="loss 0.5", article="0.5", computed=0.7)
    r.not_computable("gan", source="s 2", statement="D(x) = 0.5", article="0.5", reason="no data")
    r.table("powers", ["n", "x^n"], [[0, 1.0], [1, False]], caption="powers")
    r.figure("plot", "plot.png", caption="a plot")
    r.text("log", "hello")
    r.graph("model", [{"id": "in", "label": "input"}, {"id": "fc", "label": "fc"}], [["in", "fc"]])
    prov = {
        "device": "cpu", "device_name": "Test CPU", "finished_at": "2026-12-01T09:20:00Z", "seed": 0,
        "wall_time_s": 1.5, "git_commit": "abc", "platform": "Linux", "versions": {"torch": "2.1"},
        "machine": {"cpu": "AMD; flags ab", "threads": "4", "compiler": "cc sha256:12"},
        "notes": {"kernel": "winograd"}, "upstream": {"data": "k1-e1"},
    }
    return {"status": "ok", "result": r.to_json(), "provenance": prov, "key": "k2", "config": {},
            "inputs": {"code": {"config": {"epochs": 1}}}, "stdout": "out\n", "stderr": "err\n"}


def views(language: str) -> list[RunnerView]:
    failed = {"status": "error", "error": {"type": "RuntimeError", "message": "boom", "traceback": "Traceback"},
              "provenance": {"device": "cpu"}}
    stale = [Message("reason.changed_file", path="runners/a.py"), Message("reason.value", what="torch", before="2.0", after="2.1")]
    blocked = [Message("reason.upstream_failed", name="broken", error="RuntimeError: boom")]
    return [
        RunnerView("data", "Data", "s 1", ascii_record(), "ran", language=language),
        RunnerView("model", "Model", "s 2", ascii_record(), "stale", stale, ("data",), language),
        RunnerView("frozen", "Frozen", "s 3", ascii_record(), "frozen", language=language),
        RunnerView("broken", "Broken", "s 4", failed, "ran", language=language),
        RunnerView("export", "Export", "s 5", None, "blocked", blocked, ("broken", "model"), language),
        RunnerView("none", "None yet", "s 6", None, "missing", language=language),
    ]


FACTS = {"year": Fact("year", "s 1", "in 2006", "differs", "it was 2007", (Citation("paper", "https://a.org"),))}
CHANGES = [
    Change("data", "metric_drift", "accuracy", 0.9, 0.98),
    Change("data", "verdict", "acc", "differs", "agrees"),
    Change("data", "claim_added", "new", None, 1),
    Change("old", "runner_removed"),
    Change("broken", "status", "", "ok", "error"),
    Change("data", "device", "", "cpu", "cuda"),
]
META = {"source": "manifest.json", "commit": "abcdef", "date": "2026-12-01T09:20:00Z"}


def english_pages(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "plot.png").write_bytes(PNG)
    vs = views("en")
    pages = {v.name: runner_page(v, notebook=True) for v in vs}
    pages["index"] = results_index(vs, "en")
    pages["errata"] = errata_page(vs, FACTS, "en")
    pages["report"] = render_report_page(report_rows(vs), "en")
    pages["report.txt"] = render_report_text(report_rows(vs), "en")
    pages["drift"] = render_drift_page(CHANGES, META, "en") + render_drift_page([], None, "en")
    pages["drift.txt"] = render_drift_text(CHANGES, META, "en") + render_drift_text([], META, "en")
    for v in vs[:3]:
        notebook = build_notebook(v, tmp_path)
        assert notebook is not None
        pages[f"{v.name}.ipynb"] = notebook_text(notebook)
    kinds = ["value: data.accuracy", "claim: data.loss", "fact: year", "result: export", "claims: data",
             "provenance: model", "value: export.x", "table: none.powers", "value: nobody.x"]
    ctx = PageContext("index.md", {v.name: v for v in vs}, FACTS, language="en")
    pages["inline"] = substitute(" ".join(f"{{{{ {k} }}}}" for k in kinds), ctx)
    return pages


def test_english_pages_have_no_cjk_character(tmp_path: Path) -> None:
    for name, text in english_pages(tmp_path).items():
        found = sorted(set(CJK.findall(text)))
        assert not found, f"{name}: {''.join(found)}"


def test_english_pages_say_it_in_english(tmp_path: Path) -> None:
    pages = english_pages(tmp_path)
    assert "on Test CPU, 1 December 2026, 09:20 UTC (run in this build)" in pages["data"]
    assert "| exported | yes |" in pages["data"]
    assert "| Threads | 4 |" in pages["data"] and "| Runner note: kernel | winograd |" in pages["data"]
    assert "Why it is stale: runners/a.py changed; torch 2.0 → 2.1" in pages["model"]
    assert "Runner `export` was not run in this build because a runner it builds on has no usable result: " \
           "upstream broken failed: RuntimeError: boom." in pages["export"]
    assert "| [Export](export.md) | not run: upstream broken failed: RuntimeError: boom |" in pages["report"]
    assert "- `export`: upstream broken failed: RuntimeError: boom" in pages["errata"]
    assert "article: 0.5 · computed: 0.70 · ✗ differs" in pages["inline"]
    notebook = json.loads(pages["data.ipynb"])
    headings = ["".join(c["source"]) for c in notebook["cells"][1:] if c["cell_type"] == "markdown"]
    assert headings[:3] == ["## Run", "## Metrics", "## Claims: the article's values, checked"]


def test_chinese_is_the_same_site_in_chinese(tmp_path: Path) -> None:
    vs = views("zh")
    assert "过期原因：runners/a.py 已改动；torch 2.0 → 2.1" in runner_page(vs[1])
    assert "| [Export](export.md) | s 5 | 未运行 | 未运行（所依赖的运行器没有可用结果） |" in results_index(vs, "zh")
    assert "| exported | 是 |" in runner_page(vs[0])
