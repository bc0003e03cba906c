"""Runners that build on other runners (`RunnerSpec.needs`): order, keys, failures, parallelism.

Real child processes on the toy project: `alpha` writes a file and a metric, `reader` needs it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from toyproject import add_runner

from reportgen.cli import main
from reportgen.pipeline import UnknownRunner, bring_up_to_date, select
from reportgen.settings import load_settings
from reportgen.spec import RegistryError, RunnerSpec, check_registry, downstream, topological

WRITER = """
from dataclasses import dataclass
from reportgen.api import Result

@dataclass(frozen=True)
class Config:
    value: int = 7

def run(config, ctx):
    ctx.path("weights.txt").write_text(str(config.value * 6))
    result = Result()
    result.metric("value", config.value)
    return result
"""

READER = """
from dataclasses import dataclass
from reportgen.api import Result

@dataclass(frozen=True)
class Config:
    pass

def run(config, ctx):
    writer = ctx.upstream("writer")
    result = Result()
    result.metric("from_file", int(writer.path("weights.txt").read_text()))
    result.metric("from_metric", writer.metrics["value"])
    return result
"""

FAILING_WRITER = WRITER.replace("    result = Result()", "    raise ValueError('no weights today')")


def project(root: Path) -> Path:
    from toyproject import make_toy_project

    make_toy_project(root, runners=("alpha",))
    add_runner(root, "writer", WRITER)
    add_runner(root, "reader", READER, 'packages=(), needs=("writer",)')
    return root


def origins(outcomes: dict) -> dict[str, str]:
    return {name: o.origin for name, o in outcomes.items()}


def test_a_runner_reads_its_upstreams_files_and_metrics(tmp_path: Path) -> None:
    outcomes = bring_up_to_date(load_settings(project(tmp_path / "p"), environ={}))
    assert outcomes["reader"].entry.record["result"]["metrics"] == {"from_file": 42, "from_metric": 7}
    upstream = outcomes["reader"].entry.record["provenance"]["upstream"]
    assert upstream == {"writer": outcomes["writer"].entry.record["key"]}


def test_changing_the_upstream_reruns_the_downstream_and_only_it(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    settings = load_settings(root, environ={})
    bring_up_to_date(settings)
    writer = root / "runners" / "writer.py"
    writer.write_text(writer.read_text().replace("value: int = 7", "value: int = 8"))
    outcomes = bring_up_to_date(settings)
    assert origins(outcomes) == {"alpha": "cache", "writer": "ran", "reader": "ran"}
    assert outcomes["reader"].reasons == ["upstream writer changed"]
    assert outcomes["reader"].entry.record["result"]["metrics"]["from_file"] == 48
    # a config override of the upstream is a change upstream too
    settings.config = {"writer": {"value": 1}}
    assert origins(bring_up_to_date(settings)) == {"alpha": "cache", "writer": "ran", "reader": "ran"}
    assert origins(bring_up_to_date(settings)) == {"alpha": "cache", "writer": "cache", "reader": "cache"}


def test_changing_the_downstream_does_not_rerun_the_upstream(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    settings = load_settings(root, environ={})
    bring_up_to_date(settings)
    reader = root / "runners" / "reader.py"
    reader.write_text(reader.read_text() + "\n# edited\n")
    assert origins(bring_up_to_date(settings)) == {"alpha": "cache", "writer": "cache", "reader": "ran"}


def test_running_a_downstream_by_name_brings_its_upstream_up_to_date(tmp_path: Path) -> None:
    outcomes = bring_up_to_date(load_settings(project(tmp_path / "p"), environ={}), ["reader"])
    assert origins(outcomes) == {"writer": "ran", "reader": "ran"}


def test_an_upstream_failure_blocks_the_downstream_and_the_build_goes_on(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    (root / "runners" / "writer.py").write_text(FAILING_WRITER, encoding="utf-8")
    messages: list[str] = []
    outcomes = bring_up_to_date(load_settings(root, environ={}), log=lambda level, m: messages.append(f"{level}: {m}"))
    assert outcomes["alpha"].entry.ok
    assert outcomes["writer"].failed
    blocked = outcomes["reader"]
    assert blocked.origin == "blocked" and blocked.entry is None
    assert blocked.reasons == ["upstream writer failed: ValueError: no weights today"]
    assert "warning: runner reader not run: upstream writer failed: ValueError: no weights today" in messages
    # nothing was stored for the blocked runner: once the upstream is fixed it runs
    (root / "runners" / "writer.py").write_text(WRITER, encoding="utf-8")
    assert origins(bring_up_to_date(load_settings(root, environ={}))) == {"alpha": "cache", "writer": "ran", "reader": "ran"}


BARRIER = """
import os
import time
from dataclasses import dataclass
from pathlib import Path
from reportgen.api import Result

@dataclass(frozen=True)
class Config:
    pass

def run(config, ctx):
    # meet the other independent runner: it is only there if both run at the same time
    folder = Path(os.environ["TOY_BARRIER"])
    (folder / "{me}").touch()
    deadline = time.monotonic() + 20
    while not (folder / "{other}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    ctx.path("weights.txt").write_text("1")
    result = Result()
    result.metric("met_the_other", (folder / "{other}").exists())
    result.metric("value", 1)
    return result
"""


def test_independent_runners_run_at_the_same_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With jobs=2, `writer` and `other` (independent) meet at a barrier; `reader` waits for `writer`."""
    root = project(tmp_path / "p")
    (root / "runners" / "writer.py").write_text(BARRIER.format(me="writer", other="other"), encoding="utf-8")
    add_runner(root, "other", BARRIER.format(me="other", other="writer"))
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    monkeypatch.setenv("TOY_BARRIER", str(barrier))
    settings = load_settings(root, environ={})
    settings.jobs = 2
    outcomes = bring_up_to_date(settings)
    assert origins(outcomes) == {"alpha": "ran", "writer": "ran", "reader": "ran", "other": "ran"}
    assert outcomes["writer"].entry.record["result"]["metrics"]["met_the_other"] is True
    assert outcomes["other"].entry.record["result"]["metrics"]["met_the_other"] is True
    assert outcomes["reader"].entry.record["result"]["metrics"]["from_file"] == 1


def test_registry_checks(tmp_path: Path) -> None:
    a = RunnerSpec("a", "p.a", "A", "s", needs=("b",))
    b = RunnerSpec("b", "p.b", "B", "s", needs=("a",))
    with pytest.raises(RegistryError, match="cycle: a → b → a"):
        check_registry({"a": a, "b": b})
    with pytest.raises(RegistryError, match="needs unknown runner"):
        check_registry({"a": a})
    with pytest.raises(RegistryError, match="unknown environment probe"):
        check_registry({"c": RunnerSpec("c", "p.c", "C", "s", environment=("gpu-color",))})
    c = RunnerSpec("c", "p.c", "C", "s")
    d = RunnerSpec("d", "p.d", "D", "s", needs=("c",))
    e = RunnerSpec("e", "p.e", "E", "s", needs=("d",))
    registry = {"e": e, "d": d, "c": c}
    assert topological(registry) == ["c", "d", "e"]
    assert downstream(registry, "c") == ["e", "d"]
    assert [s.name for s in select(["e"], registry)] == ["c", "d", "e"]
    with pytest.raises(UnknownRunner):
        select(["nope"], registry)


def test_records_of_two_runs_are_identical_timings_aside(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    settings = load_settings(root, environ={})
    first = bring_up_to_date(settings)
    settings.execute = "all"
    second = bring_up_to_date(settings)

    def comparable(record: dict) -> str:
        prov = {k: v for k, v in record["provenance"].items() if k not in ("wall_time_s", "process_wall_time_s", "finished_at")}
        return json.dumps({**record, "provenance": prov, "integrity": None}, sort_keys=True)

    for name in first:
        assert comparable(first[name].entry.record) == comparable(second[name].entry.record), name


def test_the_cli_shows_the_pipeline_and_why_a_runner_was_not_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = project(tmp_path / "p")
    assert main(["--project", str(root), "status", "reader"]) == 0
    out = capsys.readouterr().out
    assert "reader             stale            toy  (needs writer)  ← no stored result" in out
    assert out.rstrip().endswith("pipeline:\n  writer → reader")
    (root / "runners" / "writer.py").write_text(FAILING_WRITER, encoding="utf-8")
    assert main(["--project", str(root), "run", "reader"]) == 1
    out = capsys.readouterr().out
    assert "writer             FAILED   ran" in out
    assert "reader             missing  blocked  ← upstream writer failed: ValueError: no weights today" in out


def test_a_blocked_runner_has_a_page_that_says_why_and_strict_fails(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    root = project(tmp_path / "p")
    (root / "runners" / "writer.py").write_text(FAILING_WRITER, encoding="utf-8")

    def build(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "-d", str(root / "site"), *extra], cwd=root,
            capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=300,
        )

    proc = build()
    assert proc.returncode == 0, proc.stderr  # the rest of the site builds
    assert "runner reader not run: upstream writer failed: ValueError: no weights today" in proc.stderr
    reader = (root / "site" / "results" / "reader" / "index.html").read_text(encoding="utf-8")
    assert "writer" in reader and "ValueError: no weights today" in reader
    assert (root / "site" / "results" / "alpha" / "index.html").is_file()
    strict = build("--strict")
    assert strict.returncode != 0 and "runner reader not run" in strict.stderr
