"""reportgen.render: exact Markdown/HTML produced from a runner record."""

from __future__ import annotations

from typing import Any

import pytest

from reportgen.api import Result
from reportgen.i18n import Message
from reportgen.pages import errata_page, results_index, runner_page
from reportgen.render import (
    RefError,
    RunnerView,
    claim_inline,
    computed_text,
    figure_block,
    provenance_table,
    status_block,
    table_block,
    text_block,
    value_inline,
)

PAGE = "draft-000/math.md"
VALUE_TITLE = 'title="由运行器 alpha 计算"'
STALE = '<sup class="living-stale" title="过期结果：代码已改动，本次构建未重新运行">过期</sup>'
FAILED = '[<span class="living-missing">⚠ 运行失败（alpha）</span>](../results/alpha.md)'


def make_result() -> Result:
    r = Result()
    r.metric("square", 4.0)
    r.metric("ratio", 0.1192029)
    r.metric("label", "a|b <i>")
    r.check("square", source="toy §1", statement="x² = 4", article="4", computed=4.0)
    r.check("wrong", source="toy §1", statement="x³ ≈ 9", article="9", computed=8.0)
    r.check("sig", source="s", statement="σ(−2)", article="0.022", computed=0.1192029)
    r.check("tanh", source="s", statement="tanh(−1)", article="-0.7616", computed=-0.76159416)
    r.check("pct", source="s", statement="2/3", article="66.67", computed=66.6666667)
    r.not_computable("gan", source="toy §2", statement="D(x) = 0.5", article="0.5", reason="没有数据")
    r.table("powers", ["n", "x|n"], [[0, 1.0], [1, "a|b"]], caption="幂")
    r.figure("plot", "plot.png", caption="一张图")
    r.text("train_script", "print(1)\n```\n")
    r.text("fix_diff", "-a\n+b")
    r.text("log", "<b>")
    return r


def ok_record() -> dict[str, Any]:
    return {
        "runner": "alpha",
        "status": "ok",
        "result": make_result().to_json(),
        "provenance": {
            "device": "cpu",
            "device_name": "X",
            "finished_at": "2026-01-01T00:00:00Z",
            "versions": {"python": "3.11.7"},
            "seed": 0,
            "wall_time_s": 0.5,
        },
        "config": {},
        "key": "abc-def",
    }


def error_record() -> dict[str, Any]:
    error = {"type": "RuntimeError", "message": "boom <x>", "traceback": "Traceback ..."}
    return {"runner": "alpha", "status": "error", "error": error, "provenance": {"device": "cpu"}}


def view(
    record: dict[str, Any] | None = None, origin: str = "ran", reasons: list[str] | None = None
) -> RunnerView:
    return RunnerView("alpha", "阿尔法", "toy §1", record, origin, reasons or [])


def test_value_inline_with_and_without_spec() -> None:
    v = view(ok_record())
    assert value_inline(v, "square", ".2f", PAGE) == f'<span class="living-value" {VALUE_TITLE}>4.00</span>'
    assert value_inline(v, "ratio", "", PAGE) == f'<span class="living-value" {VALUE_TITLE}>0.119203</span>'
    assert (
        value_inline(v, "label", "", PAGE)
        == f'<span class="living-value" {VALUE_TITLE}>a&#124;b &lt;i&gt;</span>'
    )


def test_value_inline_stale_is_marked() -> None:
    v = view(ok_record(), "stale", ["runners/alpha.py changed"])
    assert value_inline(v, "square", "", PAGE) == f'<span class="living-value" {VALUE_TITLE}>4</span>{STALE}'


def test_claim_inline_agreeing() -> None:
    out = claim_inline(view(ok_record()), "square", PAGE)
    assert out == (
        '[<span class="living-claim living-agrees" title="相符">文章：4 · 本机：4.0 · ✓ 相符</span>]'
        "(../errata.md#claim-alpha-square)"
    )


def test_claim_inline_differing_and_not_computable() -> None:
    v = view(ok_record())
    assert claim_inline(v, "wrong", PAGE) == (
        '[<span class="living-claim living-differs" title="不符">文章：9 · 本机：8.0 · ✗ 不符</span>]'
        "(../errata.md#claim-alpha-wrong)"
    )
    assert claim_inline(v, "gan", "index.md") == (
        '[<span class="living-claim living-not_computable" title="没有数据">'
        "文章：0.5 · 本机：— · ? 无法由文中条件计算</span>](errata.md#claim-alpha-gan)"
    )


@pytest.mark.parametrize(
    ("claim_id", "shown"),
    [("sig", "0.1192"), ("tanh", "-0.76159"), ("pct", "66.667"), ("square", "4.0")],
)
def test_computed_text_one_digit_more_than_the_article(claim_id: str, shown: str) -> None:
    claims = {c["id"]: c for c in view(ok_record()).claims()}
    assert computed_text(claims[claim_id]) == shown


def test_computed_text_without_tolerance() -> None:
    assert computed_text({"computed": 0.1192029, "tolerance": None}) == "0.119203"
    assert computed_text({"computed": 7, "tolerance": 0.5}) == "7"
    assert computed_text({"computed": "128x156", "tolerance": None}) == "128x156"


def test_figure_block_path_is_relative_to_the_page() -> None:
    out = figure_block(view(ok_record()), "plot", PAGE)
    assert (
        out == '![一张图](../results/alpha/plot.png){ loading=lazy }\n\n<p class="living-caption">一张图</p>'
    )


def test_table_block() -> None:
    out = table_block(view(ok_record()), "powers", PAGE)
    assert out == (
        '<p class="living-caption">幂</p>\n\n| n | x&#124;n |\n|---|---|\n| 0 | 1 |\n| 1 | a&#124;b |'
    )


def test_text_block_language_from_name() -> None:
    v = view(ok_record())
    assert text_block(v, "train_script", PAGE) == '````python title="train_script"\nprint(1)\n```\n````'
    assert text_block(v, "fix_diff", PAGE) == '```diff title="fix_diff"\n-a\n+b\n```'
    assert text_block(v, "log", PAGE) == '```text title="log"\n<b>\n```'


WHEN = "2026年1月1日 00:00 UTC"  # finished_at 2026-01-01T00:00:00Z, as a Chinese page writes it


def test_status_block_ok() -> None:
    assert status_block(view(ok_record()), PAGE) == (
        '!!! success "运行结果：阿尔法"\n\n'
        f"    以下数值由运行器 `alpha` 于 {WHEN} 在 X 上计算（本次构建中运行）。"
        "[完整结果与运行环境](../results/alpha.md)\n"
    )


def test_status_block_stale_lists_reasons() -> None:
    v = view(ok_record(), "stale", ["runners/helper.py changed", 'config {} → {"x":1}'])
    assert status_block(v, PAGE) == (
        '!!! warning "结果已过期：阿尔法"\n\n'
        f"    以下数值由运行器 `alpha` 于 {WHEN} 在 X 上计算（过期结果（代码已改动，本次未重新运行））。"
        "[完整结果与运行环境](../results/alpha.md)\n\n"
        "    过期原因：runners/helper.py changed；config &#123;&#125; → &#123;&quot;x&quot;:1&#125;\n"
    )


def test_status_block_error() -> None:
    assert status_block(view(error_record()), PAGE) == (
        '!!! failure "运行失败：阿尔法"\n\n'
        "    运行器 `alpha` 失败：**RuntimeError** boom &lt;x&gt;\n\n"
        "    [查看错误与输出](../results/alpha.md)\n"
    )


def test_status_block_missing() -> None:
    assert status_block(view(None, "missing"), PAGE) == (
        '!!! warning "尚无结果：阿尔法"\n\n'
        "    运行器 `alpha` 还没有结果（执行模式为 never 时不会运行）。[详情](../results/alpha.md)\n"
    )


def test_failed_runner_renders_marker_everywhere() -> None:
    v = view(error_record())
    assert value_inline(v, "square", ".2f", PAGE) == FAILED
    assert claim_inline(v, "square", PAGE) == FAILED
    assert figure_block(v, "plot", PAGE) == FAILED
    assert table_block(v, "powers", PAGE) == FAILED
    assert text_block(v, "log", PAGE) == FAILED


def test_missing_runner_renders_no_result_marker() -> None:
    out = value_inline(view(None, "missing"), "square", "", "index.md")
    assert out == '[<span class="living-missing">⚠ 尚无结果（alpha）</span>](results/alpha.md)'


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda v: value_inline(v, "nope", "", PAGE), "no metric 'nope'"),
        (lambda v: value_inline(v, "square", ".2q", PAGE), "format '.2q'"),
        (lambda v: claim_inline(v, "nope", PAGE), "no claim 'nope'"),
        (lambda v: table_block(v, "nope", PAGE), "no table 'nope'; it has: powers"),
        (lambda v: figure_block(v, "nope", PAGE), "no figure 'nope'; it has: plot"),
        (lambda v: text_block(v, "nope", PAGE), "no text 'nope'"),
    ],
)
def test_unknown_names_raise_ref_error(call: Any, message: str) -> None:
    with pytest.raises(RefError, match=message):
        call(view(ok_record()))


def test_diagram_block_draws_mermaid_with_escaped_labels() -> None:
    from reportgen.render import diagram_block

    result = Result()
    nodes = [
        {"id": "in", "label": "输入", "detail": "1×28×28"},
        {"id": "n0", "label": 'conv1: Conv2d "<script>#1"', "detail": "32×26×26 · 320 参数"},
    ]
    result.graph("model", nodes, [["in", "n0"]], caption="从真实模块读出")
    record = {**ok_record(), "result": result.to_json()}
    assert diagram_block(view(record), "model", "draft-000/project.md") == (
        "```mermaid\n"
        "graph TD\n"
        '    n_in["输入<br>1×28×28"]\n'
        '    n_n0["conv1: Conv2d #quot;#lt;script#gt;#35;1#quot;<br>32×26×26 · 320 参数"]\n'
        "    n_in --> n_n0\n"
        "```\n\n"
        '<p class="living-caption">从真实模块读出</p>'
    )


def test_text_block_as_prose_is_escaped_paragraph() -> None:
    result = Result()
    result.text("source", "官方 *MNIST*\n<b>10,000</b> 张")
    record = {**ok_record(), "result": result.to_json()}
    assert text_block(view(record), "source", "index.md", "prose") == "官方 &#42;MNIST&#42;<br>&lt;b&gt;10,000&lt;/b&gt; 张"
    with pytest.raises(RefError, match="unknown option 'bold'"):
        text_block(view(record), "source", "index.md", "bold")


# ---- runners that build on others: blocked runners, the pipeline on the overview -------------

BLOCKED_REASONS = [Message("reason.upstream_failed", name="cnn", error="RuntimeError: boom")]


def blocked_view(language: str = "zh") -> RunnerView:
    return RunnerView("alpha", "阿尔法", "toy §1", None, "blocked", list(BLOCKED_REASONS), ("cnn",), language)


def test_status_block_blocked_says_why() -> None:
    assert status_block(blocked_view(), PAGE) == (
        '!!! warning "未运行：阿尔法"\n\n'
        "    运行器 `alpha` 在本次构建中没有运行，因为它所依赖的运行器没有可用结果：上游 cnn 失败：RuntimeError: boom。"
        "[详情](../results/alpha.md)\n"
    )
    assert status_block(blocked_view("en"), PAGE).startswith(
        '!!! warning "Not run: 阿尔法"\n\n    Runner `alpha` was not run in this build because a runner it builds on '
        "has no usable result: upstream cnn failed: RuntimeError: boom. [Details](../results/alpha.md)\n"
    )


def test_blocked_runner_marker_says_not_run_and_why() -> None:
    marker = '[<span class="living-missing" title="上游 cnn 失败：RuntimeError: boom">⚠ 未运行（alpha）</span>](../results/alpha.md)'
    for call in (lambda v: value_inline(v, "square", "", PAGE), lambda v: claim_inline(v, "square", PAGE),
                 lambda v: figure_block(v, "plot", PAGE), lambda v: table_block(v, "powers", PAGE)):
        assert call(blocked_view()) == marker
    assert value_inline(blocked_view("en"), "square", "", "index.md") == (
        '[<span class="living-missing" title="upstream cnn failed: RuntimeError: boom">⚠ not run (alpha)</span>]'
        "(results/alpha.md)"
    )


def test_blocked_runner_page() -> None:
    page = runner_page(blocked_view())
    assert page.startswith("# 阿尔法\n\n文章出处：toy §1 · 运行器：`alpha`\n\n所依赖的运行器：[cnn](cnn.md)\n\n!!! warning \"未运行：阿尔法\"")
    assert "| 来源 | 未运行（所依赖的运行器没有可用结果） |" in page
    assert "## 文章中的数值与核对" not in page and "## 错误" not in page


def test_provenance_table_shows_machine_notes_upstreams_and_versions() -> None:
    record = ok_record()
    record["provenance"].update(
        machine={"threads": "4", "cpu": "AMD EPYC; flags 0a1b", "compiler": "gcc sha256:ab12"},
        notes={"kernel": "winograd (native)"},
        upstream={"cnn": "c0ffee-e1"},
        versions={"python": "3.11.7", "torch": "2.4.1", "numpy": "2.1.0"},
    )
    assert provenance_table(view(record)) == "\n".join(
        [
            "| 项目 | 值 |",
            "|---|---|",
            "| 来源 | 本次构建中运行 |",
            "| 设备 | cpu（X） |",
            "| 随机种子 | 0 |",
            "| 运行耗时（秒） | 0.5 |",
            "| 进程总耗时（秒） | — |",
            "| 完成时间 | 2026年1月1日 00:00 UTC |",
            "| Git 提交 | — |",
            "| 平台 | — |",
            "| 编译器 | gcc sha256:ab12 |",
            "| 处理器 | AMD EPYC; flags 0a1b |",
            "| 线程数 | 4 |",
            "| 运行记录：kernel | winograd (native) |",
            "| 上游 cnn 的结果 | c0ffee-e1 |",
            "| numpy 版本 | 2.1.0 |",
            "| python 版本 | 3.11.7 |",
            "| torch 版本 | 2.4.1 |",
            "| 缓存键 | abc-def |",
            "| 配置 | &#123;&#125; |",
        ]
    )
    english = provenance_table(RunnerView("alpha", "A", "s", record, "cache", language="en"))
    assert "| Origin | cached (code unchanged) |" in english and "| Finished | 1 January 2026, 00:00 UTC |" in english
    assert "| Threads | 4 |" in english and "| Result of upstream cnn | c0ffee-e1 |" in english


def test_results_overview_draws_the_pipeline() -> None:
    views = [
        RunnerView("cnn", 'CNN "训练" <b>', "§1", ok_record(), "ran"),
        RunnerView("lone", "独立", "§2", ok_record(), "cache"),
        RunnerView("cnn_onnx", "ONNX 导出", "§3", None, "blocked", list(BLOCKED_REASONS), ("cnn",)),
        RunnerView("cnn_compress", "压缩 #1", "§4", ok_record(), "cache", [], ("cnn", "cnn_onnx")),
    ]
    page = results_index(views)
    assert "| [ONNX 导出](cnn_onnx.md) | §3 | 未运行 | 未运行（所依赖的运行器没有可用结果） | — | — | — |" in page
    assert page.endswith(
        "## 运行器之间的依赖\n\n"
        "箭头从一个运行器指向使用它的结果的运行器；上游没有可用结果时，下游不会运行。\n\n"
        "```mermaid\n"
        "graph LR\n"
        '    n_cnn["CNN #quot;训练#quot; #lt;b#gt;"]\n'
        '    n_cnn_onnx["ONNX 导出"]\n'
        '    n_cnn_compress["压缩 #35;1"]\n'
        "    n_cnn --> n_cnn_onnx\n"
        "    n_cnn --> n_cnn_compress\n"
        "    n_cnn_onnx --> n_cnn_compress\n"
        "```\n"
    )
    assert "mermaid" not in results_index(views[:2])  # no dependencies: no diagram


def test_errata_names_the_runners_that_were_not_run() -> None:
    page = errata_page([view(ok_record()), blocked_view()], {})
    assert (
        '!!! warning "部分运行器没有运行"\n\n'
        "    以下运行器没有运行（它们所依赖的运行器没有可用结果），它们的核对未计入：\n\n"
        "    - `alpha`：上游 cnn 失败：RuntimeError: boom\n"
    ) in page
    assert "部分运行器没有结果" not in page


def report_record() -> dict[str, Any]:
    """A runner that declares readers' titles, captions and roles, and checks two parts of one statement."""
    r = Result()
    r.metric("accuracy", 0.97, label="测试准确率", role="main")
    r.metric("images", 8000, label="训练图片数", unit="张")
    r.metric("seconds", 3.5, label="训练耗时", unit="秒", role="detail")
    r.check("w_i", source="§2", statement="输入门 128x912，输出门 128x128", article="128x912", computed="128x156",
            part="输入门的形状")
    r.check("w_o", source="§2", statement="输入门 128x912，输出门 128x128", article="128x128", computed="128x156",
            part="输出门的形状")
    r.check("b", source="§3", statement="偏置 128", article="128", computed="128", part="偏置长度")
    r.figure("curves", "curves.png", caption="每轮的损失", title="训练过程", role="main")
    r.table("epochs", ["轮次", "损失"], [[1, 0.5]], caption="逐轮", title="每轮的损失")
    r.text("allocator", "mallopt", title="内存分配器设置", role="detail")
    record = ok_record()
    record["result"] = r.to_json()
    return record


def test_result_roles_are_checked() -> None:
    with pytest.raises(ValueError, match="role must be one of"):
        Result().table("t", ["a"], [], role="aside")  # type: ignore[arg-type]
    old_style = Result()
    old_style.table("t", ["a"], [[1]], "caption")  # calls without the new keywords still work
    old_style.text("log", "x")
    assert old_style.to_json()["tables"]["t"] == {"columns": ["a"], "rows": [[1]], "caption": "caption", "title": "",
                                                 "role": "body"}
    assert old_style.to_json()["text_info"] == {}


def test_claims_of_one_statement_are_grouped_with_their_parts() -> None:
    from reportgen.render import claims_table

    assert claims_table(view(report_record()), False) == "\n".join([
        '<p class="living-statement">文章原文（§2）：输入门 128x912，输出门 128x128</p>',
        "",
        "| 核对项 | 文章数值 | 本机计算 | 结论 | 说明 |",
        "|---|---|---|---|---|",
        "| 输入门的形状 | 128x912 | 128x156 | ✗ 不符 |  |",
        "| 输出门的形状 | 128x128 | 128x156 | ✗ 不符 |  |",
        "",
        '<p class="living-statement">文章原文（§3）：偏置 128</p>',
        "",
        "| 核对项 | 文章数值 | 本机计算 | 结论 | 说明 |",
        "|---|---|---|---|---|",
        "| 偏置长度 | 128 | 128 | ✓ 相符 |  |",
    ])


def test_runner_page_leads_with_what_the_example_shows() -> None:
    page = runner_page(view(report_record()))
    headings = [line for line in page.splitlines() if line.startswith("## ")]
    assert headings == ["## 文章中的数值与核对", "## 训练过程", "## 主要指标", "## 每轮的损失", "## 其他指标"]
    assert "| 测试准确率 | 0.97 |" in page and "| 训练图片数 | 8000 张 |" in page
    details = page[page.index('??? info "运行细节"'):]
    assert page.rstrip().endswith(details.rstrip())  # last, collapsed, and holding the machine details
    assert "    **内存分配器设置**\n\n    ```text title=\"内存分配器设置\"\n    mallopt\n    ```" in details
    assert "    | 训练耗时 | 3.5 秒 |" in details and "    **运行环境与出处**" in details
    assert "训练耗时" not in page[: page.index('??? info "运行细节"')]
    assert '![每轮的损失](alpha/curves.png){ loading=lazy }' in page  # the caption is the alt text


def test_errata_is_read_by_verdict_with_each_statement_once() -> None:
    page = errata_page([view(report_record())], {})
    assert page.index("## ✗ 不符（2 项） { #verdict-differs }") < page.index("## ✓ 相符（1 项） { #verdict-agrees }")
    assert "| [✗ 不符](#verdict-differs) | 2 |" in page and "| ⚠ 文中自相矛盾 | 0 |" in page
    assert page.count("输入门 128x912，输出门 128x128</p>") == 1
    assert (
        "| 核对项 | 文章数值 | 本机计算 | 说明 |\n|---|---|---|---|\n"
        '| <a id="claim-alpha-w-i"></a>输入门的形状 | 128x912 | 128x156 |  |\n'
        '| <a id="claim-alpha-w-o"></a>输出门的形状 | 128x128 | 128x156 |  |'
    ) in page


def test_claim_reading_is_shown_under_the_article_value() -> None:
    record = report_record()
    record["result"]["claims"][2]["reading"] = "128 读作 1.28×10²"
    page = errata_page([view(record)], {})
    assert '| <a id="claim-alpha-b"></a>偏置长度 | 128<span class="living-reading">读法：128 读作 1.28×10²</span> |' in page
