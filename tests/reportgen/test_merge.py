"""Shards into caches of their own, merged into a third (reportgen.merge): the build on the merged
cache runs nothing and shows the pages a single machine builds; corrupt, tampered, foreign and
machine-bound entries are refused with a reason, and nothing of them is left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from toyproject import TUNING_HOOK, add_runner, make_toy_project

from reportgen.cli import main
from reportgen.store import RECORD, read_entry, seal, write_json_atomic

GAMMA = """
from dataclasses import dataclass
from reportgen.api import Result

@dataclass(frozen=True)
class Config:
    pass

def run(config, ctx):
    result = Result()
    result.metric("from_alpha", ctx.upstream("alpha").metrics["square"] + 1)
    return result
"""

# a runner whose key holds the thread count it is given (RunnerSpec.environment): another `jobs`
# setting stands in for another machine
BOUND = GAMMA.replace('result.metric("from_alpha", ctx.upstream("alpha").metrics["square"] + 1)', 'result.metric("one", 1)')

TIMING = ("wall_time_s", "process_wall_time_s", "finished_at")
ENV = ("LIVING_EXECUTE", "LIVING_DRIFT_BASELINE", "LIVING_JOBS", "LIVING_PROFILE", "LIVING_DEVICE", "LIVING_CACHE_DIR")


def project(root: Path) -> Path:
    """alpha → gamma (one pipeline), beta, and broken (fails on purpose)."""
    make_toy_project(root, runners=("alpha", "beta", "broken"))
    add_runner(root, "gamma", GAMMA, 'packages=(), needs=("alpha",)')
    return root


def cli(root: Path, cache: Path, *args: str, jobs: int = 1) -> int:
    saved = {k: os.environ.pop(k, None) for k in ENV}
    os.environ.update(LIVING_CACHE_DIR=str(cache), LIVING_JOBS=str(jobs))
    try:
        return main(["--project", str(root), *args])
    finally:
        for key in ("LIVING_CACHE_DIR", "LIVING_JOBS"):
            os.environ.pop(key, None)
        os.environ.update({k: v for k, v in saved.items() if v is not None})


def entries(cache: Path) -> dict[str, str]:
    """runner/key → the record's checksum, for every entry of a cache (verified)."""
    return {f"{d.parent.name}/{d.name}": read_entry(d).record["integrity"]
            for d in sorted(cache.glob("*/*")) if (d / RECORD).is_file()}


def copy_with_entry(shard: Path, to: Path, runner: str) -> Path:
    """`shard` copied to `to`; the directory of `runner`'s one entry in the copy."""
    shutil.copytree(shard, to)
    (entry,) = (d for d in to.glob(f"{runner}/*") if d.is_dir())
    return entry


def leftovers(cache: Path) -> list[str]:
    return [p.name for p in cache.glob("*/.*") if p.name not in (".lock",)]


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The toy project and its two shards' caches (shard 2 holds the failing runner, so it exits 1)."""
    base = tmp_path_factory.mktemp("shards")
    root = project(base / "toy")
    assert cli(root, base / "shard1", "run", "--shard", "1/2") == 0
    assert cli(root, base / "shard2", "run", "--shard", "2/2") == 1
    return root, base / "shard1", base / "shard2"


def test_shards_split_whole_pipelines(shards: tuple[Path, Path, Path]) -> None:
    _, one, two = shards
    assert {k.split("/")[0] for k in entries(one)} == {"alpha", "gamma"}
    assert {k.split("/")[0] for k in entries(two)} == {"beta", "broken"}


def test_a_failing_shard_leaves_every_other_entry_intact(shards: tuple[Path, Path, Path], tmp_path: Path) -> None:
    root, one, two = shards
    statuses = {d.parent.name: read_entry(d).ok for d in two.glob("*/*") if (d / RECORD).is_file()}
    assert statuses == {"beta": True, "broken": False}
    assert len(entries(one)) == 2 and not leftovers(one) and not leftovers(two)
    # a shard killed halfway leaves a temporary directory: never imported, never in the way
    copy = tmp_path / "killed"
    shutil.copytree(two, copy)
    (copy / "beta" / ".tmp-999999-deadbeef").mkdir()
    (copy / "beta" / ".tmp-999999-deadbeef" / RECORD).write_text("{", encoding="utf-8")
    assert cli(root, tmp_path / "merged", "merge", str(one), str(copy)) == 0
    assert {k.split("/")[0] for k in entries(tmp_path / "merged")} == {"alpha", "beta", "broken", "gamma"}
    assert not leftovers(tmp_path / "merged")


def normalize_timings(cache: Path) -> None:
    """The same fixed timings in every record (sealed again): two runs differ only in those."""
    for directory in cache.glob("*/*"):
        if (directory / RECORD).is_file():
            record = json.loads((directory / RECORD).read_text(encoding="utf-8"))
            record["provenance"].update({k: "2000-01-01T00:00:00Z" if k == "finished_at" else 1.0
                                         for k in TIMING if k in record["provenance"]})
            write_json_atomic(directory / RECORD, seal(record, directory))


def build(root: Path, cache: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV}
    env.update(LIVING_CACHE_DIR=str(cache), LIVING_JOBS="1", NO_MKDOCS_2_WARNING="1")
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "-d", str(site)], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def site_files(site: Path) -> dict[str, bytes]:
    # the sitemap carries the build date, nothing of the results
    return {p.relative_to(site).as_posix(): p.read_bytes() for p in sorted(site.rglob("*"))
            if p.is_file() and not p.name.startswith("sitemap.xml")}


def test_merged_build_runs_nothing_and_equals_the_single_machine_pages(shards: tuple[Path, Path, Path],
                                                                        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, one, two = shards
    # each cache in a folder of its own: the drift baseline of a build is kept beside its cache
    merged, single = tmp_path / "merged" / "cache", tmp_path / "single" / "cache"
    assert cli(root, merged, "merge", str(one), str(two)) == 0
    out = capsys.readouterr().out
    assert out.count("imported ") == 4 and "a failed run" in out and out.strip().endswith("4 imported, 0 frozen, 0 present, 0 refused")
    assert cli(root, merged, "status", "--fail-on-stale") == 0
    assert cli(root, single, "run") == 1  # the same commit on one machine (broken fails there too)
    assert entries(merged).keys() == entries(single).keys()
    for cache in (merged, single):
        normalize_timings(cache)
    merged_build, single_build = build(root, merged, tmp_path / "site-merged"), build(root, single, tmp_path / "site-single")
    for proc in (merged_build, single_build):
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "running " not in proc.stderr  # nothing ran: every result came from the cache
    merged_pages, single_pages = site_files(tmp_path / "site-merged"), site_files(tmp_path / "site-single")
    assert merged_pages.keys() == single_pages.keys() and "results/gamma/index.html" in merged_pages
    assert [p for p in merged_pages if merged_pages[p] != single_pages[p]] == []


def test_merge_is_idempotent_and_order_independent(shards: tuple[Path, Path, Path], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    root, one, two = shards
    # the same result for beta twice over, with another checksum: either order keeps the same one
    again = tmp_path / "again"
    beta = copy_with_entry(two, again, "beta")
    record = json.loads((beta / RECORD).read_text(encoding="utf-8"))
    record["provenance"]["finished_at"] = "2000-01-01T00:00:00Z"
    write_json_atomic(beta / RECORD, seal(record, beta))
    forward, backward, stepwise = tmp_path / "forward", tmp_path / "backward", tmp_path / "stepwise"
    assert cli(root, forward, "merge", str(one), str(two), str(again)) == 0
    assert cli(root, backward, "merge", str(again), str(two), str(one)) == 0
    for source in (again, one, two):
        assert cli(root, stepwise, "merge", str(source)) == 0
    assert entries(forward) == entries(backward) == entries(stepwise)
    assert entries(forward)[f"beta/{beta.name}"] == entries(two)[f"beta/{beta.name}"]  # the newer one
    capsys.readouterr()
    assert cli(root, forward, "merge", str(two), str(one)) == 0
    out = capsys.readouterr().out
    assert "imported" not in out.replace("0 imported", "") and out.count("present ") == 4
    assert not leftovers(forward)


def test_corrupt_and_tampered_entries_are_refused_and_leave_nothing(shards: tuple[Path, Path, Path], tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    root, one, _ = shards
    bad = tmp_path / "bad"
    alpha = copy_with_entry(one, bad, "alpha")
    (alpha / "plot.png").write_bytes(b"not the figure that was sealed")
    (gamma,) = (d for d in bad.glob("gamma/*") if d.is_dir())
    record = json.loads((gamma / RECORD).read_text(encoding="utf-8"))
    record["result"]["metrics"]["from_alpha"] = 99.0  # edited without sealing again
    (gamma / RECORD).write_text(json.dumps(record), encoding="utf-8")
    target = tmp_path / "merged"
    assert cli(root, target, "merge", str(bad)) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"refused   {alpha}: corrupt: {alpha / 'plot.png'}: missing or changed",
                   f"refused   {gamma}: corrupt: {gamma / RECORD}: checksum mismatch"]
    assert entries(target) == {} and not leftovers(target)
    # sealed again after editing what it was computed from: the inputs no longer give its key
    record["inputs"]["code"]["config"] = {"x": 3}
    write_json_atomic(gamma / RECORD, seal(record, gamma))
    assert cli(root, target, "merge", str(gamma.parent.parent)) == 1
    assert f"refused   {gamma}: tampered: its recorded inputs do not hash to its key" in capsys.readouterr().err
    assert cli(root, target, "merge", str(tmp_path / "nowhere")) == 1
    assert "no such folder" in capsys.readouterr().err


def test_an_entry_from_another_commit_is_refused(shards: tuple[Path, Path, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    root, _, _ = shards
    other = tmp_path / "other"
    shutil.copytree(root, other)
    alpha = other / "runners" / "alpha.py"
    alpha.write_text(alpha.read_text(encoding="utf-8") + "\n# another commit\n", encoding="utf-8")
    assert cli(other, tmp_path / "theirs", "run", "alpha", "gamma", "beta") == 0
    target = tmp_path / "ours"
    assert cli(root, target, "merge", str(tmp_path / "theirs")) == 0  # history is normal in a cache, not an error
    captured = capsys.readouterr()
    refused = sorted(line for line in captured.err.splitlines() if line.startswith("refused"))
    assert len(refused) == 2
    assert refused[0].endswith("computed from other code or config (runners/alpha.py changed)")
    assert f"{tmp_path / 'theirs' / 'gamma'}/" in refused[1] and refused[1].endswith("(upstream alpha changed)")
    assert {k.split("/")[0] for k in entries(target)} == {"beta"}  # beta's code is the same in both commits
    assert cli(root, target, "merge", "--strict", str(tmp_path / "theirs")) == 1


def test_a_machine_bound_entry_is_refused_or_taken_as_frozen(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_toy_project(tmp_path / "toy", runners=("alpha",))
    add_runner(root, "bound", BOUND, 'packages=(), environment=("threads",)')
    elsewhere = tmp_path / "elsewhere"
    assert cli(root, elsewhere, "run", jobs=2) == 0  # threads = cores / 2 there, the libraries' default here
    target = tmp_path / "here"
    capsys.readouterr()
    assert cli(root, target, "merge", str(elsewhere)) == 0
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith(f"refused   {elsewhere / 'bound'}/") and ": machine-bound: computed on another machine (threads" in line
    assert line.endswith("merge with --frozen to publish it as a frozen result, or run bound here")
    assert {k.split("/")[0] for k in entries(target)} == {"alpha"}
    assert cli(root, target, "status", "--fail-on-stale") == 1
    assert "would still run: bound" in capsys.readouterr().err
    assert cli(root, target, "merge", "--frozen", str(elsewhere)) == 0
    out = capsys.readouterr().out
    assert "frozen    " in out and "shown as a frozen result while the code matches" in out
    assert read_entry(root / "results" / "bound").record["provenance"]["machine"]["threads"] != "0"
    assert cli(root, target, "status", "--fail-on-stale") == 0
    assert "bound              frozen" in capsys.readouterr().out
    assert cli(root, target, "merge", "--frozen", str(elsewhere)) == 0  # idempotent here too
    assert capsys.readouterr().out.endswith("0 imported, 0 frozen, 2 present, 0 refused\n")



TUNES = """
import os
from dataclasses import dataclass
from pathlib import Path
from reportgen.api import Result

@dataclass(frozen=True)
class Config:
    pass

def run(config, ctx):
    (Path(os.environ["TOY_TUNING"]) / "choice.json").write_text('{"path": "fast"}')  # measured on first use
    result = Result()
    result.metric("one", 1)
    return result
"""


def test_a_reader_of_a_runner_whose_key_moves_in_its_run_is_keyed_as_the_next_build_keys_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """An identity hook (a tuning record the run fills) changes the upstream's key during the build:
    the runner that reads it is stored under the new key, so neither a rebuild nor a merge re-runs it."""
    root = make_toy_project(tmp_path / "toy", runners=("alpha",))
    (root / "runners" / "tuning.py").write_text(TUNING_HOOK, encoding="utf-8")
    add_runner(root, "tuned", TUNES, 'packages=(), identity=("runners.tuning:choice",)')
    add_runner(root, "reader", GAMMA.replace('"alpha"', '"tuned"').replace('["square"]', '["one"]'),
               'packages=(), needs=("tuned",)')
    monkeypatch.setenv("TOY_TUNING", str(tmp_path))
    assert cli(root, tmp_path / "shard", "run") == 0
    assert cli(root, tmp_path / "shard", "status", "--fail-on-stale") == 0
    capsys.readouterr()
    assert cli(root, tmp_path / "merged", "merge", "--strict", str(tmp_path / "shard")) == 0
    assert capsys.readouterr().out.endswith("3 imported, 0 frozen, 0 present, 0 refused\n")
