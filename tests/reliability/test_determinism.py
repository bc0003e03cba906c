"""The real runners, run twice on the CPU with the same seed, give the same result files apart from
timings; and neither a build nor a runner reaches the network (every socket connect is refused
and recorded while they run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from toyproject import REPO, Background
from toys import isolated_env, network_guard

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


# Brings the real runners up to date twice, in a cache each, as a build does (two at a time, one thread each), and
# prints what it stored; it runs under the network guard, as do the runners it starts.
DRIVER = """
import json, sys
from pathlib import Path
from reportgen.pipeline import bring_up_to_date
from reportgen.settings import load_settings

root, tmp, configs = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
stored = {}
for run in ("first", "second"):
    settings = load_settings(root, environ={})
    settings.cache_dir, settings.device, settings.jobs, settings.execute = tmp / run, "cpu", 2, "stale"
    settings.config = {name: dict(values) for name, values in configs.items()}
    outcomes = bring_up_to_date(settings, list(configs))
    stored[run] = {name: {"directory": str(o.entry.directory) if o.entry else None, "failed": o.failed or not o.entry,
                          "error": o.entry.record.get("error") if o.entry else None} for name, o in outcomes.items()}
print("STORED " + json.dumps(stored))
"""


def start_two_runs(tmp: Path, *, idle: bool) -> Background | None:
    """The two runs, in the background (tests/conftest.py starts them beside the site's tests, or on demand)."""
    if not MNIST.is_dir():
        return None
    guard = tmp / "netguard"
    network_guard(guard)
    env = guarded_env(guard, tmp)
    env["LIVING_TUNING_DIR"] = str(tmp / "tuning")  # the CNN's tuning record: both runs', never the user's
    command = [sys.executable, "-c", DRIVER, str(REPO), str(tmp), json.dumps(CONFIGS)]
    return Background("the two runs of the real runners", command, env, REPO, tmp / "runs.log", timeout=900,
                      idle=idle)


def without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if not k.endswith(TIMINGS)}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


@pytest.mark.background(start=start_two_runs)
def test_two_runs_give_identical_results_without_the_network(background: Background | None) -> None:
    if background is None:
        pytest.skip(f"{MNIST} not found: the training runners need the offline MNIST files")
    output = background.wait()
    lines = [line for line in output.splitlines() if line.startswith("STORED ")]
    assert background.proc.returncode == 0 and lines, output[-4000:]
    stored = json.loads(lines[-1][len("STORED "):])
    log = background.log.parent / "netguard" / "connections.log"
    assert not log.exists(), log.read_text(encoding="utf-8")
    for run in stored.values():
        assert not [name for name, entry in run.items() if entry["failed"]], run
    for name in CONFIGS:
        first, second = (Path(stored[run][name]["directory"]) for run in ("first", "second"))
        a = json.loads((first / "result.json").read_text(encoding="utf-8"))
        b = json.loads((second / "result.json").read_text(encoding="utf-8"))
        assert a["files"] == b["files"], name  # every figure and file byte for byte (sha256 each)
        for record in (a, b):
            record.pop("integrity")  # covers the timings
        assert without_timings(a) == without_timings(b), name
