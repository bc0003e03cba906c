"""Killing a build at any moment never leaves a corrupt or half-written result, never loses a
stored one, and two builds at once never run a runner twice (benchmarks/fault_injection.py)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from toyproject import REPO

from reportgen.store import Store, read_entry

_spec = importlib.util.spec_from_file_location("fault_injection", REPO / "benchmarks" / "fault_injection.py")
assert _spec is not None and _spec.loader is not None
fi = importlib.util.module_from_spec(_spec)
sys.modules["fault_injection"] = fi  # dataclasses look their module up there
_spec.loader.exec_module(fi)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def sealed_in_workdir(store: Store, runner: str) -> bool:
    """A sealed record (the parent's, with its checksum) waits in a work directory, not yet renamed."""
    for tmp in (store.cache_dir / runner).glob(".tmp-*"):
        with contextlib.suppress(OSError, ValueError):
            if "integrity" in json.loads((tmp / "result.json").read_text(encoding="utf-8")):
                return True
    return False


def visible_entries(store: Store) -> dict[tuple[str, str], str]:
    """(runner, key) → integrity of every entry a lookup could return; each must verify."""
    found = {}
    for runner in fi.RUNNERS:
        for directory in (store.cache_dir / runner).glob("[!.]*"):
            if directory.is_dir():
                found[(runner, directory.name)] = read_entry(directory).record["integrity"]
    return found


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return fi.make_project(tmp_path / "p")


@pytest.mark.busy  # two lanes of builds at once (tests/conftest.py orders the parts)
def test_random_kills_lose_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(20240611)
    totals = fi.inject_kills_in_lanes(tmp_path, 30, rng)
    corruptions = fi.make_project(tmp_path / "corrupt")
    for tried, mishandled in (fi.try_corruptions(corruptions, list(fi.RUNNERS), 8, rng), fi.try_config_values(40, rng)):
        totals.inputs += tried
        totals.inputs_mishandled += mishandled
    assert totals.kills >= 30
    assert totals.corrupt_seen == 0 and totals.inputs_mishandled == 0
    assert totals.lost == 0
    with capsys.disabled():
        print(f"\n[fault injection] {totals.line()} (entries checked: {totals.entries_checked}; "
              f"kills landed: {dict(totals.where)})")


def test_kill_between_the_two_renames_of_a_recommit(project: Path) -> None:
    store = Store(project / ".living" / "cache")
    fi.run_driver(project, {})
    before = visible_entries(store)
    proc = fi.start_driver(project, True, {}, pause=2.0)  # forced: every entry is replaced
    wait_for(lambda: any((store.cache_dir / "slow").glob(".old-*")), "the old entry to be moved aside")
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    key = next(k for (r, k) in before if r == "slow")
    assert store.lookup("slow", key) is None  # the gap: no entry under the key...
    latest = store.latest("slow")  # ...but the result is still shown (marked stale when runs are off)
    assert latest is not None and latest.record["integrity"] == before[("slow", key)]
    outcomes = fi.run_driver(project, {})  # the next build puts it back instead of running again
    assert outcomes["slow"][0] == "cache"
    assert visible_entries(store) == before
    assert not list((store.cache_dir / "slow").glob(".old-*"))


def test_kill_after_sealing_before_the_rename(project: Path) -> None:
    store = Store(project / ".living" / "cache")
    fi.run_driver(project, {})
    before = visible_entries(store)
    proc = fi.start_driver(project, False, {"slow": {"v": 5}}, pause=2.0)
    wait_for(lambda: sealed_in_workdir(store, "slow"), "a sealed record in the work directory")
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert visible_entries(store) == before  # the finished-but-unpublished result is simply absent
    outcomes = fi.run_driver(project, {"slow": {"v": 5}})
    assert outcomes["slow"][:2] == ["ran", True]
    assert not list((store.cache_dir / "slow").glob(".tmp-*"))  # the abandoned work directory is gone


def test_ctrl_c_stops_the_runner_and_stores_nothing(project: Path, tmp_path: Path) -> None:
    store = Store(project / ".living" / "cache")
    runs = tmp_path / "runs.txt"
    # one runner at a time, so the one after it has not started when Ctrl-C comes
    proc = fi.start_driver(project, False, {"slow": {"pause": 60}}, LIVING_TEST_RUNS_FILE=str(runs), LIVING_JOBS="1")
    wait_for(lambda: runs.is_file() and runs.read_text().strip(), "the runner to start")
    pid = int(runs.read_text().split()[1])
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - started < 10  # not the runner's 60 s
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert not alive(pid)
    assert not [p for p in (store.cache_dir / "slow").iterdir() if p.name != ".lock"]  # no cached failure
    assert not (store.cache_dir / "files").exists()  # the runner after it never started
    outcomes = fi.run_driver(project, {})
    assert all(ok for _origin, ok, _key in outcomes.values())


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent has yet to reap it


def test_two_builds_at_once_run_each_runner_once(project: Path, tmp_path: Path) -> None:
    store = Store(project / ".living" / "cache")
    runs = tmp_path / "runs.txt"
    config = {"slow": {"pause": 0.5}}
    procs = [fi.start_driver(project, False, config, LIVING_TEST_RUNS_FILE=str(runs)) for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    ran = Counter(line.split()[0] for line in runs.read_text().splitlines())
    assert ran == {"slow": 1, "files": 1}
    for name in fi.RUNNERS:
        assert sorted(r[name][0] for r in results) == ["cache", "ran"]  # one ran it, the other reused it
        assert results[0][name][2] == results[1][name][2]
    entries = visible_entries(store)
    assert len(entries) == len(fi.RUNNERS)
    assert set(os.listdir(store.cache_dir / "slow")) == {".lock", "LATEST", results[0]["slow"][2]}
