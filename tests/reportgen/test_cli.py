"""The `reportgen` command line on the toy project."""

from __future__ import annotations

from pathlib import Path

import pytest

from reportgen.cli import _parse_sets, main
from reportgen.settings import SettingsError


def run_cli(root: Path, *args: str) -> int:
    return main(["--project", str(root), *args])


def test_status_run_and_why_stale(toy_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(toy_project, "status") == 0
    assert "alpha              stale            toy §1  ← no stored result" in capsys.readouterr().out
    assert run_cli(toy_project, "run") == 0
    out = capsys.readouterr().out
    assert "alpha              ok       ran" in out and "beta               ok       ran" in out
    helper = toy_project / "runners" / "helper.py"
    helper.write_text(helper.read_text() + "\n# edited\n")
    run_cli(toy_project, "status")
    out = capsys.readouterr().out
    assert "alpha              cache" in out
    assert "beta               stale            toy §2  ← runners/helper.py changed" in out


def test_run_named_with_override_and_force(toy_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(toy_project, "--set", "alpha.x=3", "run", "alpha") == 0
    assert capsys.readouterr().out.strip() == "alpha              ok       ran"
    assert run_cli(toy_project, "--set", "alpha.x=3", "run", "alpha") == 0
    assert capsys.readouterr().out.strip() == "alpha              ok       cache"
    assert run_cli(toy_project, "--set", "alpha.x=3", "run", "--force", "alpha") == 0
    assert capsys.readouterr().out.strip() == "alpha              ok       ran"


def test_failed_runner_gives_exit_status_1(toy_project_with_failures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(toy_project_with_failures, "run", "broken") == 1
    assert "broken             FAILED   ran" in capsys.readouterr().out


def test_unknown_runner_is_a_one_line_error(toy_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(toy_project, "run", "nope") == 2
    err = capsys.readouterr().err
    assert err == "reportgen: error: unknown runner(s): nope; known: alpha, beta\n"


def test_freeze_needs_a_fresh_result(toy_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(toy_project, "freeze", "alpha") == 1
    assert "no fresh successful result to freeze" in capsys.readouterr().out
    run_cli(toy_project, "run", "alpha")
    assert run_cli(toy_project, "freeze", "alpha") == 0
    assert (toy_project / "results" / "alpha" / "result.json").is_file()


def test_render_writes_generated_pages(toy_project: Path, tmp_path: Path) -> None:
    assert run_cli(toy_project, "render", "--out", str(tmp_path / "gen")) == 0
    assert (tmp_path / "gen" / "results" / "alpha.md").read_text().startswith("# 阿尔法\n")
    assert (tmp_path / "gen" / "errata.md").is_file()


def test_parse_sets() -> None:
    assert _parse_sets(["a.x=3", "a.name=hi", "b.v=[1, 2]"]) == {"a": {"x": 3, "name": "hi"}, "b": {"v": [1, 2]}}
    with pytest.raises(SettingsError, match="expected RUNNER.KEY=VALUE"):
        _parse_sets(["novalue"])


def test_build_passes_mkdocs_options_through(toy_project: Path, tmp_path: Path) -> None:
    assert run_cli(toy_project, "build", "-d", str(tmp_path / "out")) == 0  # not strict: the toy page names a missing runner
    assert (tmp_path / "out" / "results" / "alpha" / "index.html").is_file()


def test_unknown_options_are_rejected_outside_build(toy_project: Path) -> None:
    with pytest.raises(SystemExit):
        run_cli(toy_project, "status", "--bogus")
