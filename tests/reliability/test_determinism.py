"""The real runners, run twice on the CPU with the same seed, give the same result files apart from
timings; and neither a build nor a runner reaches the network (every socket connect is refused
and recorded while they run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from toyproject import REPO
from toys import isolated_env, network_guard

from reportgen.pipeline import bring_up_to_date
from reportgen.settings import load_settings

pytestmark = pytest.mark.compute  # the real runners, two at a time (tests/conftest.py orders the parts)

MNIST = REPO.parent / "shared" / "data" / "mnist"
TINY = {"quick_train": 256, "quick_epochs": 1, "test_limit": 256, "download": False, "profile": "quick"}
CONFIGS: dict[str, dict[str, Any]] = {
    "activations": {},
    "losses": {},
    "optimizers": {},
    "backprop": {},
    "pytorch_project": {"seeds": [0]},
    "cnn_shapes": {},
    "cnn": TINY,
    "lstm": TINY,
    "gan": {k: v for k, v in TINY.items() if k != "test_limit"},
}
TIMINGS = ("_seconds", "per_second", "_time_s", "finished_at")  # wall-clock measurements, which vary


@pytest.fixture(scope="module")
def guard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("netguard")
    network_guard(directory)
    return directory


def guarded_env(guard: Path, tmp: Path) -> dict[str, str]:
    env = isolated_env(tmp, guard=guard)
    if MNIST.is_dir():
        env["LIVING_MNIST_DIR"] = str(MNIST)
    return env


def test_the_guard_refuses_and_records(guard: Path, tmp_path: Path) -> None:
    code = "import urllib.request; urllib.request.urlopen('https://example.org', timeout=5)"
    proc = subprocess.run([sys.executable, "-c", code], env=guarded_env(guard, tmp_path), capture_output=True, text=True)
    assert proc.returncode != 0 and "network blocked by the test guard" in proc.stderr
    log = guard / "connections.log"
    assert "example.org" in log.read_text(encoding="utf-8")
    log.unlink()


def run_all(cache: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Bring the real runners up to date in `cache`, as a build does (two at a time, one thread each)."""
    with monkeypatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("LIVING_") or k == "PYTHONPATH"]:
            patch.delenv(key)
        for key in ("PYTHONPATH", "LIVING_NET_LOG", "LIVING_DATA_CACHE", "LIVING_MNIST_DIR"):
            if key in env:
                patch.setenv(key, env[key])
        patch.setenv("LIVING_TUNING_DIR", str(cache.parent / "tuning"))  # the CNN's tuning record: both runs', never the user's
        settings = load_settings(REPO, environ={})
        settings.cache_dir, settings.device, settings.jobs, settings.execute = cache, "cpu", 2, "stale"
        settings.config = {name: dict(values) for name, values in CONFIGS.items()}
        outcomes = bring_up_to_date(settings, list(CONFIGS))
    failed = {n: (o.entry.record.get("error") if o.entry else None) for n, o in outcomes.items() if o.failed or not o.entry}
    assert not failed, failed
    return {name: outcome.entry.directory for name, outcome in outcomes.items() if outcome.entry is not None}


def without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if not k.endswith(TIMINGS)}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def test_two_runs_give_identical_results_without_the_network(
    guard: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not MNIST.is_dir():
        pytest.skip(f"{MNIST} not found: the training runners need the offline MNIST files")
    env = guarded_env(guard, tmp_path)
    first = run_all(tmp_path / "first", env, monkeypatch)
    second = run_all(tmp_path / "second", env, monkeypatch)
    log = guard / "connections.log"
    assert not log.exists(), log.read_text(encoding="utf-8")
    for name in CONFIGS:
        a = json.loads((first[name] / "result.json").read_text(encoding="utf-8"))
        b = json.loads((second[name] / "result.json").read_text(encoding="utf-8"))
        assert a["files"] == b["files"], name  # every figure and file byte for byte (sha256 each)
        for record in (a, b):
            record.pop("integrity")  # covers the timings
        assert without_timings(a) == without_timings(b), name
