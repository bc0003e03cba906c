"""The plugin inside a real `mkdocs build` of the toy project (runners that fail, hang and crash)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reportgen.mkdocs_plugin import add_result_pages_to_nav


def mkdocs_build(root: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "-f", str(root / "mkdocs.yml"), "-d", str(root / "site"), *extra],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", **(env or {})},
        timeout=300,
    )


@pytest.fixture(scope="module")
def built_with_failures(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    from toyproject import make_toy_project

    root = make_toy_project(tmp_path_factory.mktemp("site") / "toy")
    return root, mkdocs_build(root)


def page(root: Path, uri: str) -> str:
    return (root / "site" / uri).read_text(encoding="utf-8")


def test_failing_runners_do_not_stop_the_build(built_with_failures) -> None:
    root, proc = built_with_failures
    assert proc.returncode == 0, proc.stderr
    for name in ("broken", "hang", "crash"):
        assert f"runner {name} failed" in proc.stderr
    assert (root / "site" / "results" / "alpha" / "index.html").is_file()


def test_error_pages_show_the_reason(built_with_failures) -> None:
    root, _ = built_with_failures
    broken = page(root, "results/broken/index.html")
    assert "运行失败" in broken and "RuntimeError" in broken and "Traceback" in broken
    assert "the example is broken on purpose" in broken
    assert "no result within the 1.5 s timeout" in page(root, "results/hang/index.html")
    assert "SIGABRT" in page(root, "results/crash/index.html")


def test_inline_values_claims_and_blocks(built_with_failures) -> None:
    root, _ = built_with_failures
    home = page(root, "index.html")
    assert '<span class="living-value" title="由运行器 alpha 计算">4.00</span>' in home
    assert "文章：4 · 本机：4.0 · ✓ 相符" in home
    assert 'href="errata/#claim-alpha-square"' in home
    assert '<img alt="一张图" loading="lazy" src="results/alpha/plot.png"' in home
    assert "⚠ 运行失败（broken）" in home
    assert "<code>{{ value: alpha.square }}</code>" in home  # code is left alone
    assert (root / "site" / "results" / "alpha" / "plot.png").is_file()


def test_runner_output_cannot_inject_markup(built_with_failures) -> None:
    alpha = page(built_with_failures[0], "results/alpha/index.html")
    assert "<script>alert(1)</script>" not in alpha
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in alpha
    assert "{{ value: alpha.square }}" in alpha  # shown as text, not substituted


def test_errata_page_and_navigation(built_with_failures) -> None:
    root, _ = built_with_failures
    errata = page(root, "errata/index.html")
    assert 'id="claim-alpha-wrong"' in errata and "✗ 不符" in errata
    assert "broken, hang, crash" in errata  # runners without results are named
    overview = page(root, "results/index.html")
    for title in ("阿尔法", "贝塔", "出错的例子", "卡住的例子", "崩溃的例子"):
        assert title in overview


def test_strict_build_fails_on_runner_failure(built_with_failures) -> None:
    root, _ = built_with_failures
    proc = mkdocs_build(root, "--strict")  # results are cached: this only renders
    assert proc.returncode != 0
    assert "runner broken failed: RuntimeError: the example is broken on purpose" in proc.stderr


def test_unknown_placeholder_is_a_strict_error(toy_project: Path) -> None:
    index = toy_project / "docs" / "index.md"
    index.write_text(index.read_text() + "\n{{ value: alpha.no_such_metric }}\n")
    proc = mkdocs_build(toy_project, "--strict")
    assert proc.returncode != 0
    assert "runner alpha has no metric 'no_such_metric'" in proc.stderr


def test_hand_written_page_is_never_overwritten(toy_project: Path) -> None:
    (toy_project / "docs" / "errata.md").write_text("# 我自己的勘误表\n")
    proc = mkdocs_build(toy_project)
    assert proc.returncode == 0, proc.stderr
    assert "我自己的勘误表" in page(toy_project, "errata/index.html")
    assert (toy_project / "docs" / "errata.md").read_text() == "# 我自己的勘误表\n"


def test_bad_execute_mode_is_a_clear_error(toy_project: Path) -> None:
    proc = mkdocs_build(toy_project, env={"LIVING_EXECUTE": "sometimes"})
    assert proc.returncode != 0
    assert "execute mode 'sometimes' is not one of stale, never, all" in proc.stderr


def test_result_pages_are_added_after_the_results_index() -> None:
    nav = [{"首页": "index.md"}, {"运行结果": ["results/index.md", {"B": "results/b.md"}]}]
    assert add_result_pages_to_nav(nav, [("A", "results/a.md"), ("B", "results/b.md")])
    assert nav[1] == {"运行结果": ["results/index.md", {"A": "results/a.md"}, {"B": "results/b.md"}]}
