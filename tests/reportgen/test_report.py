"""reportgen.report: the run report (status, cache hit or miss, wall time, device, profile)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reportgen.cli import main
from reportgen.i18n import Message
from reportgen.render import RunnerView
from reportgen.report import ReportRow, critical_path, render_report_page, render_report_text, report_rows


def rec(status: str = "ok", wall: float | None = 1.5, profile: str | None = None, **prov: Any) -> dict[str, Any]:
    metrics = {"acc": 0.9} if profile is None else {"acc": 0.9, "profile": profile}
    provenance = {"device": "cpu", "device_name": "AMD EPYC", **prov}
    if wall is not None:
        provenance["wall_time_s"] = wall
    return {"status": status, "provenance": provenance, "result": {"metrics": metrics}}


ZH_TIME_INTRO = (
    "本次构建运行的运行器，按进程耗时从长到短排列。进程耗时从启动运行器的进程算起，"
    "含启动 Python、导入库的时间，所以比上表的运行耗时长。"
)
ZH_PATH_TAIL = "这是一串前后依赖（后一个用前一个的结果）的运行器中合计耗时最长的一串：无论同时运行多少个运行器，本次构建都至少要这么久。"
EN_PATH_TAIL = (
    "It is the chain of runners, each building on the result of the one before, that took longest: "
    "however many runners run at once, this build takes at least that long."
)

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
            "## 时间花在哪里",
            "",
            ZH_TIME_INTRO,
            "",
            "| 运行器 | 进程耗时（秒） | 在关键路径上 |",
            "|---|---|---|",
            "| [阿尔法](alpha.md) | 2.00 | 是 |",
            "| [坏](broken.md) | 0.25 | 否 |",
            "",
            f"关键路径：alpha，合计 2.00 秒。{ZH_PATH_TAIL}",
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


# --- where the time went: each runner run in this build, and the critical path


def timed(name: str, wall: float, process: float | None, needs: tuple[str, ...] = (), origin: str = "ran") -> RunnerView:
    return RunnerView(name, name.upper(), "§", rec(wall=wall, **({} if process is None else {"process_wall_time_s": process})),
                      origin, needs=needs)


# a → b, a → c, d: the chain a → c (1.5 + 3.25 s) takes longer than d alone (4.5 s) and than a → b
GRAPH = [timed("a", 1.0, 1.5), timed("b", 2.0, 2.5, ("a",)), timed("c", 3.0, 3.25, ("a",)), timed("d", 4.0, 4.5)]


def test_critical_path_is_the_longest_chain_of_runners_run_in_this_build() -> None:
    assert critical_path(report_rows(GRAPH)) == (["a", "c"], 4.75)
    # d alone now takes longest: a runner alone is a chain
    assert critical_path(report_rows([*GRAPH[:3], timed("d", 4.0, 5.0)])) == (["d"], 5.0)
    # a cached upstream cost this build nothing: not on the path, whatever it took when it ran
    cached = [timed("a", 1.0, 100.0, origin="cache"), *GRAPH[1:]]
    assert critical_path(report_rows(cached)) == (["d"], 4.5)
    # without a process time the run time counts; of equal chains the one listed first wins
    assert critical_path(report_rows([timed("x", 2.0, None), timed("y", 1.0, 1.0, ("x",)), timed("z", 3.0, 3.0)])) == (
        ["x", "y"], 3.0)
    assert critical_path(report_rows(VIEWS[1:3])) == ([], 0.0)


def test_time_section_of_the_page_in_both_languages() -> None:
    zh = render_report_page(report_rows(GRAPH))
    assert zh[zh.index("## 时间花在哪里"):] == "\n".join(
        [
            "## 时间花在哪里",
            "",
            ZH_TIME_INTRO,
            "",
            "| 运行器 | 进程耗时（秒） | 在关键路径上 |",
            "|---|---|---|",
            "| [D](d.md) | 4.50 | 否 |",
            "| [C](c.md) | 3.25 | 是 |",
            "| [B](b.md) | 2.50 | 否 |",
            "| [A](a.md) | 1.50 | 是 |",
            "",
            f"关键路径：a → c，合计 4.75 秒。{ZH_PATH_TAIL}",
            "",
        ]
    )
    en = render_report_page(report_rows(GRAPH), "en")
    assert en[en.index("## Where the time went"):] == "\n".join(
        [
            "## Where the time went",
            "",
            "The runners run in this build, longest first by process time: from the start of the runner's process "
            "to its end, including starting Python and importing libraries, so longer than the run time above.",
            "",
            "| Runner | Process time (s) | On the critical path |",
            "|---|---|---|",
            "| [D](d.md) | 4.50 | no |",
            "| [C](c.md) | 3.25 | yes |",
            "| [B](b.md) | 2.50 | no |",
            "| [A](a.md) | 1.50 | yes |",
            "",
            f"Critical path: a → c, 4.75 s in all. {EN_PATH_TAIL}",
            "",
        ]
    )


def test_time_section_of_the_text_report_in_both_languages() -> None:
    zh = render_report_text(report_rows(GRAPH))
    assert zh[zh.index("时间花在哪里"):] == (
        "时间花在哪里\n"
        "\n"
        "运行器  进程耗时（秒）  在关键路径上\n"
        "------  --------------  ------------\n"
        "d       4.50            否\n"
        "c       3.25            是\n"
        "b       2.50            否\n"
        "a       1.50            是\n"
        "\n"
        f"关键路径：a → c，合计 4.75 秒。{ZH_PATH_TAIL}\n"
    )
    en = render_report_text(report_rows(GRAPH), "en")
    assert en.startswith("Runner  Status  Cache       Run time (s)")
    assert en[en.index("\n\nRunners run in this build"):] == (
        "\n\nRunners run in this build: 4, taking 10.00 s in all; results from the cache or frozen results: 0; "
        "stale or without a result: 0. The listed results took 10.00 s in all when they were computed.\n"
        "\n"
        "Where the time went\n"
        "\n"
        "Runner  Process time (s)  On the critical path\n"
        "------  ----------------  --------------------\n"
        "d       4.50              no\n"
        "c       3.25              yes\n"
        "b       2.50              no\n"
        "a       1.50              yes\n"
        "\n"
        f"Critical path: a → c, 4.75 s in all. {EN_PATH_TAIL}\n"
    )


def test_nothing_ran_no_time_section() -> None:
    assert "## 时间花在哪里" not in render_report_page(report_rows(VIEWS[1:3]))
    assert "Where the time went" not in render_report_text(report_rows(VIEWS[1:3]), "en")
