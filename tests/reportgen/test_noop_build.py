"""What a rebuild costs: with nothing changed the plugin starts no process and imports no torch;
an edited runner is the only one that runs; runners on an accelerator never overlap, on the
CPU they do. Toy projects (tests/toyproject.py); the timings are in benchmarks/site_build.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from toyproject import REPO, add_fake_gpu, add_jupyter, add_runner, make_toy_project

import reportgen.sources
from reportgen.pipeline import bring_up_to_date
from reportgen.settings import load_settings

# Runs `mkdocs build` in a fresh interpreter, recording every process it starts (subprocess,
# multiprocessing and os-level spawns all end in one of these), whether reportgen's code started
# it (a reportgen frame on the stack; jupytext, imported by mkdocs-jupyter, runs `pandoc
# --version` in every build, with or without this plugin), and the modules it imported.
PROBE = r"""
import json, os, subprocess, sys, traceback
import _posixsubprocess
import reportgen

report_file, site = sys.argv[1], sys.argv[2]
package = os.path.dirname(reportgen.__file__) + os.sep
spawned = []

def record(kind, args):
    by_reportgen = any(frame.filename.startswith(package) for frame in traceback.extract_stack())
    spawned.append({"kind": kind, "args": args, "by_reportgen": by_reportgen})

def recording(kind, real):
    def call(*args, **kwargs):
        record(kind, repr(args[0]) if args else "")
        return real(*args, **kwargs)
    return call

real_init = subprocess.Popen.__init__
def popen_init(self, args, *rest, **kwargs):
    record("Popen", [str(a) for a in args] if isinstance(args, (list, tuple)) else str(args))
    return real_init(self, args, *rest, **kwargs)

subprocess.Popen.__init__ = popen_init
_posixsubprocess.fork_exec = recording("fork_exec", _posixsubprocess.fork_exec)
for name in ("system", "fork", "forkpty", "posix_spawn", "posix_spawnp", "execv", "execve"):
    if hasattr(os, name):
        setattr(os, name, recording(name, getattr(os, name)))

from mkdocs.__main__ import cli
try:
    cli.main(["build", "-d", site], standalone_mode=False)
finally:
    with open(report_file, "w", encoding="utf-8") as handle:
        json.dump({"spawned": spawned, "modules": sorted(sys.modules)}, handle)
"""


def env() -> dict[str, str]:
    pythonpath = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": pythonpath, "LIVING_EXECUTE": "stale"}


def probe_build(root: Path) -> tuple[dict, str]:
    """Build `root` under PROBE; return what it started and imported, and the build's log."""
    report = root / "probe.json"
    stderr = python(root, "-c", PROBE, str(report), str(root / "site"))
    return json.loads(report.read_text(encoding="utf-8")), stderr


def python(root: Path, *args: str) -> str:
    """Run `python ARGS` in `root` (the build's environment); assert it succeeded; return its stderr."""
    proc = subprocess.run([sys.executable, *args], cwd=root, env=env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stderr


@pytest.fixture(scope="module")
def built_toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A toy project (alpha, beta; notebooks rendered by mkdocs-jupyter as in the real site), built once."""
    root = add_jupyter(make_toy_project(tmp_path_factory.mktemp("noop") / "toy", runners=("alpha", "beta")))
    stderr = python(root, "-m", "mkdocs", "build", "-d", str(root / "site"))
    assert "running alpha" in stderr and "running beta" in stderr
    return root


@pytest.fixture
def toy(built_toy: Path, tmp_path: Path) -> Path:
    """A copy of the built project, cache included (keys do not depend on where the project is)."""
    return Path(shutil.copytree(built_toy, tmp_path / "toy", symlinks=True))


def test_noop_rebuild_starts_no_process_and_imports_no_torch(toy: Path) -> None:
    probe, log = probe_build(toy)
    assert [s for s in probe["spawned"] if s["by_reportgen"]] == []
    assert "torch" not in probe["modules"]
    assert "reportgen.mkdocs_plugin" in probe["modules"]  # the plugin did take part
    assert "running " not in log
    assert (toy / "site" / "results" / "alpha" / "index.html").is_file()
    assert (toy / "site" / "notebooks" / "alpha" / "index.html").is_file()


def test_editing_one_runner_reexecutes_only_that_runner(toy: Path) -> None:
    beta = toy / "runners" / "beta.py"
    beta.write_text(beta.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    probe, log = probe_build(toy)
    started = [s["args"] for s in probe["spawned"] if s["by_reportgen"] and s["kind"] == "Popen"]
    assert [args[1:4] for args in started] == [["-m", "reportgen.child", "beta"]]
    assert "running beta (runners/beta.py changed)" in log and "running alpha" not in log
    assert "torch" not in probe["modules"]
    outcomes = bring_up_to_date(load_settings(toy, environ={}))  # and then nothing is stale again
    assert {name: o.origin for name, o in outcomes.items()} == {"alpha": "cache", "beta": "cache"}


def test_a_rebuild_parses_only_the_sources_that_changed(toy_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(toy_project, environ={})
    bring_up_to_date(settings)  # keeps the import scans beside the cache
    parsed: list[str] = []
    real = reportgen.sources._imported_modules

    def counting(source: str, package: str) -> set[str]:
        parsed.append(source)
        return real(source, package)

    monkeypatch.setattr(reportgen.sources, "_imported_modules", counting)
    monkeypatch.setattr(reportgen.sources, "_SCANNED", {})  # as in a new process
    assert {o.origin for o in bring_up_to_date(settings).values()} == {"cache"}
    assert parsed == []
    helper = toy_project / "runners" / "helper.py"
    helper.write_text("import math\n\ndef double(v):\n    return 2 * v\n", encoding="utf-8")
    assert bring_up_to_date(settings)["beta"].origin == "ran"
    assert parsed == [helper.read_text(encoding="utf-8")]
    (settings.cache_dir / "imports.json").write_text("{not json", encoding="utf-8")  # damaged: parse again
    monkeypatch.setattr(reportgen.sources, "_SCANNED", {})
    assert {o.origin for o in bring_up_to_date(settings).values()} == {"cache"}
    assert len(parsed) > 1


# ---- one runner at a time on the accelerator, CPU runners side by side ---------------------

TIMED_RUNNER = """
import time
from dataclasses import dataclass
from pathlib import Path
from reportgen.api import Result

NAME = {name!r}

@dataclass(frozen=True)
class Config:
    hold_s: float = 0.4  # how long it keeps the device
    wait_for: int = 0  # CPU runners: wait (at most 10 s) until this many CPU runners have started

def run(config, ctx):
    marks = Path.cwd() / "marks"  # the runner's working directory is the project root
    marks.mkdir(exist_ok=True)
    start = time.time()
    busy = marks / (NAME + ".busy")
    if ctx.device != "cpu":
        others = len(list(marks.glob("*.busy")))
        busy.write_text("")
    (marks / (NAME + ".started")).write_text("")
    deadline = start + 10
    while config.wait_for and len(list(marks.glob("cpu_*.started"))) < config.wait_for and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(config.hold_s)
    result = Result()
    if ctx.device != "cpu":
        result.metric("others_on_device", others + len(list(marks.glob("*.busy"))) - 1)
        busy.unlink()
    result.metric("start", start)
    result.metric("end", time.time())
    return result
"""

GPU_RUNNERS = ("gpu_1", "gpu_2", "gpu_3")
CPU_RUNNERS = ("cpu_1", "cpu_2")


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@pytest.mark.parametrize("device", ["auto", "cuda"])
def test_accelerator_runners_never_overlap_cpu_runners_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, device: str) -> None:
    root = make_toy_project(tmp_path / "gpu", runners=())
    add_fake_gpu(root)  # runner processes import a torch that reports one CUDA device
    for name in GPU_RUNNERS:
        add_runner(root, name, TIMED_RUNNER.format(name=name), "uses_device=True, packages=()")
    for name in CPU_RUNNERS:
        add_runner(root, name, TIMED_RUNNER.format(name=name), "packages=()")
    # "auto" asks the probe, which sees no GPU here: make it find one
    monkeypatch.setattr(reportgen.fingerprint, "probe_device_kind", lambda: "cuda")
    settings = load_settings(root, environ={})
    settings.device, settings.jobs = device, len(GPU_RUNNERS) + len(CPU_RUNNERS)
    settings.config = {name: {"wait_for": len(CPU_RUNNERS)} for name in CPU_RUNNERS}
    outcomes = bring_up_to_date(settings)

    assert {name: o.origin for name, o in outcomes.items()} == dict.fromkeys(GPU_RUNNERS + CPU_RUNNERS, "ran")
    records = {name: o.entry.record for name, o in outcomes.items()}
    assert all(r["status"] == "ok" for r in records.values()), records
    metrics = {name: r["result"]["metrics"] for name, r in records.items()}
    spans = {name: (m["start"], m["end"]) for name, m in metrics.items()}
    for name in GPU_RUNNERS:
        assert records[name]["provenance"]["device"] == "cuda"
        assert records[name]["inputs"]["env"]["device"] == "cuda"
        assert metrics[name]["others_on_device"] == 0
    for name in CPU_RUNNERS:
        assert records[name]["provenance"]["device"] == "cpu"
    gpu = [spans[name] for name in GPU_RUNNERS]
    assert not any(overlap(a, b) for i, a in enumerate(gpu) for b in gpu[i + 1 :]), gpu
    assert overlap(spans["cpu_1"], spans["cpu_2"]), spans
    # the device lock holds back only device runners: the CPU runners ran beside one of them
    assert all(any(overlap(spans[c], g) for g in gpu) for c in CPU_RUNNERS), spans
