"""reportgen.report: the run report (status, cache hit or miss, wall time, device, profile)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reportgen.cli import main
from reportgen.i18n import Message
from reportgen.render import RunnerView
from reportgen.report import ReportRow, render_report_page, render_report_text, report_rows


def rec(status: str = "ok", wall: float | None = 1.5, profile: str | None = None, **prov: Any) -> dict[str, Any]:
    metrics = {"acc": 0.9} if profile is None else {"acc": 0.9, "profile": profile}
    provenance = {"device": "cpu", "device_name": "AMD EPYC", **prov}
    if wall is not None:
        provenance["wall_time_s"] = wall
    return {"status": status, "provenance": provenance, "result": {"metrics": metrics}}


VIEWS = [
    RunnerView("alpha", "阿尔法", "§1", rec(wall=2.0), "ran"),
    RunnerView("cnn", "CNN", "§2", rec(wall=61.234, profile="quick", device="cuda", device_name="H100"), "cache"),
    RunnerView("frozen", "冻结", "§3", rec(wall=5.0, profile="full"), "frozen"),
    RunnerView("broken", "坏", "§4", rec(status="error", wall=0.25), "ran"),
    RunnerView("old", "旧", "§5", rec(wall=None), "stale", ["runners/old.py changed"]),
    RunnerView("none", "无", "§6", None, "missing"),
]


def test_rows_in_the_given_order() -> None:
    rows = report_rows(VIEWS)
    assert [r.name for r in rows] == ["alpha", "cnn", "frozen", "broken", "old", "none"]
    assert rows[1] == ReportRow("cnn", "CNN", "results/cnn.md", "ok", "cache", 61.234, "cuda", "H100", "quick")
    assert rows[3].status == "error" and rows[3].profile == "—"
    assert rows[4].wall_time_s is None
    assert rows[5] == ReportRow("none", "无", "results/none.md", "missing", "missing", None, "—", "—", "—")


def test_report_page_exact() -> None:
    assert render_report_page(report_rows(VIEWS)) == "\n".join(
        [
            "# 运行报告",
            "",
            "本页列出最近一次构建中每个运行器的结果：是否成功，是本次运行的（缓存未命中）还是取自缓存"
            "（代码、配置和依赖都未改变时命中），运行耗时、设备，以及训练运行器的档位（快速或完整）。",
            "",
            "| 运行器 | 状态 | 缓存 | 运行耗时（秒） | 设备 | 设备名称 | 档位 |",
            "|---|---|---|---|---|---|---|",
            "| [阿尔法](alpha.md) | 成功 | 未命中（运行） | 2.00 | cpu | AMD EPYC | — |",
            "| [CNN](cnn.md) | 成功 | 命中（缓存） | 61.23 | cuda | H100 | quick |",
            "| [冻结](frozen.md) | 成功 | 命中（冻结结果） | 5.00 | cpu | AMD EPYC | full |",
            "| [坏](broken.md) | 失败 | 未命中（运行） | 0.25 | cpu | AMD EPYC | — |",
            "| [旧](old.md) | 成功 | 过期（未运行） | — | cpu | AMD EPYC | — |",
            "| [无](none.md) | 无结果 | 无结果（未运行） | — | — | — | — |",
            "",
            "本次构建运行了 2 个运行器，运行耗时合计 2.25 秒；2 个结果来自缓存或冻结结果，2 个过期或没有结果。"
            "所列结果当初的运行耗时合计 68.48 秒。",
            "",
        ]
    )


def test_report_text_exact() -> None:
    assert render_report_text(report_rows(VIEWS[1:3])) == (
        "运行器  状态  缓存              运行耗时（秒）  设备  设备名称  档位\n"
        "------  ----  ----------------  --------------  ----  --------  -----\n"
        "cnn     成功  命中（缓存）      61.23           cuda  H100      quick\n"
        "frozen  成功  命中（冻结结果）  5.00            cpu   AMD EPYC  full\n"
        "\n"
        "本次构建没有运行任何运行器；2 个结果来自缓存或冻结结果，0 个过期或没有结果。所列结果当初的运行耗时合计 66.23 秒。\n"
    )


def test_cli_report_on_the_toy_project(toy_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = ["--project", str(toy_project)]
    assert main([*root, "report"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "alpha   无结果  无结果（未运行）  —               —     —         —"
    main([*root, "run", "alpha"])
    capsys.readouterr()
    assert main([*root, "report"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].startswith("alpha   成功    命中（缓存）") and "  cpu  " in lines[2]
    assert lines[3].startswith("beta    无结果  无结果（未运行）")


def test_report_page_is_generated_after_the_overview(toy_project: Path, tmp_path: Path) -> None:
    assert main(["--project", str(toy_project), "render", "--out", str(tmp_path / "gen")]) == 0
    report = (tmp_path / "gen" / "results" / "report.md").read_text(encoding="utf-8")
    assert report.startswith("# 运行报告\n")
    assert "| [阿尔法](alpha.md) | 成功 | 未命中（运行） |" in report
    assert (tmp_path / "gen" / "results" / "drift.md").is_file()
    assert (tmp_path / "gen" / "results" / "manifest.json").is_file()


def test_a_blocked_runner_says_it_was_not_run_and_why() -> None:
    why = [Message("reason.upstream_failed", name="cnn", error="RuntimeError: boom")]
    blocked = RunnerView("onnx", "导出", "§7", None, "blocked", why, ("cnn",))
    row = report_rows([blocked])[0]
    assert (row.status, row.origin, row.reasons) == ("blocked", "blocked", ("upstream cnn failed: RuntimeError: boom",))
    assert "| [导出](onnx.md) | 未运行：上游 cnn 失败：RuntimeError: boom | 未运行（上游没有结果） | — | — | — | — |" in (
        render_report_page([row])
    )
    assert render_report_text([row], "en") == (
        "Runner  Status                                            Cache                             Run time (s)"
        "  Device  Device name  Profile\n"
        "------  ------------------------------------------------  --------------------------------  ------------"
        "  ------  -----------  -------\n"
        "onnx    not run: upstream cnn failed: RuntimeError: boom  not run (upstream has no result)  —           "
        "  —       —            —\n"
        "\n"
        "No runner was run in this build; results from the cache or frozen results: 0; stale or without a result: 1. "
        "The listed results took 0.00 s in all when they were computed.\n"
    )
