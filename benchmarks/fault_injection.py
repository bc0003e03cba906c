"""Fault injection: kill builds at random moments, corrupt cache entries, feed bad settings, and
count what was lost.

    python benchmarks/fault_injection.py [--kills 40] [--inputs 60] [--seed 0]

prints, last, `faults injected: N, inputs tried: M, results lost: 0`; tests/reliability runs the
same functions with smaller counts.

Kills: a process bringing a toy project up to date (the real pipeline and child protocol, fast
runners) is SIGKILLed after a random delay: while a runner runs, while results are written
(LIVING_TEST_PAUSE_IN_COMMIT widens that window, see reportgen/store.py) or between the two
renames of a forced re-run. After each kill every entry in the cache must verify and every
result stored before must still be there (after the `recover` the next build performs first);
every tenth kill is followed by a normal build, which must succeed and store what was asked.
Inputs: corrupted entries and malformed config values (benchmarks/fault_inputs.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from fault_inputs import try_config_values, try_corruptions  # noqa: E402

from reportgen.store import CorruptEntry, Store, read_entry  # noqa: E402

RUNNER = '''
import os
import time
from dataclasses import dataclass
from reportgen.api import Result

@dataclass(frozen=True)
class Config:
    v: int = 0
    pause: float = {pause}

def run(config, ctx):
    if os.environ.get("LIVING_TEST_RUNS_FILE"):  # tests count the runs (and find the process)
        with open(os.environ["LIVING_TEST_RUNS_FILE"], "a") as log:
            log.write(f"{name} {{os.getpid()}}\\n")
    time.sleep(config.pause)
    for i in range(3):
        ctx.path(f"part{{i}}.bin").write_bytes(bytes([config.v % 256]) * 50_000)
    result = Result()
    result.metric("v", config.v)
    result.text("log", "x" * 20_000)
    return result
'''
RUNNERS = {"slow": 0.1, "files": 0.0}
DRIVER = """
import json, os, sys
from pathlib import Path
from reportgen.pipeline import bring_up_to_date
from reportgen.settings import load_settings
settings = load_settings(Path(sys.argv[1]), environ={k: v for k, v in os.environ.items() if k == "LIVING_JOBS"})
settings.config = json.loads(sys.argv[3])
outcomes = bring_up_to_date(settings, force=sys.argv[2] == "1")
print(json.dumps({name: [o.origin, o.entry.ok, o.fingerprint.key] for name, o in outcomes.items()}))
"""


@dataclass
class Totals:
    kills: int = 0  # drivers killed while still running
    entries_checked: int = 0
    lost: int = 0  # results present before a kill and gone after it
    corrupt_seen: int = 0  # entries a lookup returned that did not verify (must stay 0)
    inputs: int = 0
    inputs_mishandled: int = 0  # must stay 0
    where: Counter[str] = field(default_factory=Counter)  # where the kills landed

    def line(self) -> str:
        return f"faults injected: {self.kills}, inputs tried: {self.inputs}, results lost: {self.lost}"

    def add(self, other: Totals) -> None:
        for name in ("kills", "entries_checked", "lost", "corrupt_seen", "inputs", "inputs_mishandled"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.where.update(other.where)


def make_project(root: Path) -> Path:
    """A project with two fast runners, run by this checkout's child protocol (reportgen.child)."""
    package = root / "runners"
    package.mkdir(parents=True)
    shutil.copy(ROOT / "runners" / "__init__.py", package / "__init__.py")
    registry = (ROOT / "runners" / "registry.py").read_text(encoding="utf-8").split("RUNNERS: dict")[0]
    specs = "".join(f'    RunnerSpec("{n}", "runners.{n}", "{n}", "toy", packages=()),\n' for n in RUNNERS)
    registry += "RUNNERS = {s.name: s for s in [\n" + specs + "]}\n"
    (package / "registry.py").write_text(registry, encoding="utf-8")
    for name, pause in RUNNERS.items():
        (package / f"{name}.py").write_text(RUNNER.format(name=name, pause=pause), encoding="utf-8")
    (root / "mkdocs.yml").write_text("site_name: Faults\nplugins:\n  - living-article\n", encoding="utf-8")
    return root


def start_driver(
    root: Path, force: bool, config: dict[str, Any], pause: float = 0.0, **extra_env: str
) -> subprocess.Popen[str]:
    """A separate process bringing `root` up to date (what `reportgen run` does), to be killed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVING_")}
    env.update(extra_env, PYTHONPATH=str(ROOT))
    if pause:
        env["LIVING_TEST_PAUSE_IN_COMMIT"] = str(pause)
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(root), "1" if force else "0", json.dumps(config)],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=interruptible,
    )


def interruptible() -> None:
    """In the child, before Python starts: Ctrl-C (SIGINT) raises KeyboardInterrupt again. A shell starts a
    background job (`cmd &`, nohup, some CI agents) with SIGINT ignored, the child inherits that, and a
    Python that starts with SIGINT ignored never installs its KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_driver(root: Path, config: dict[str, Any], force: bool = False) -> dict[str, list[Any]]:
    proc = start_driver(root, force, config)
    out, err = proc.communicate(timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"a normal build failed after the injected faults:\n{err}")
    return json.loads(out)


def verified_entries(store: Store, totals: Totals) -> set[tuple[str, str]]:
    """Every visible entry; one that exists but does not verify is counted as corrupt."""
    found = set()
    for runner in RUNNERS:
        for directory in sorted((store.cache_dir / runner).glob("[!.]*")):
            if not directory.is_dir():
                continue
            totals.entries_checked += 1
            try:
                read_entry(directory)
                found.add((runner, directory.name))
            except CorruptEntry:
                totals.corrupt_seen += 1
        try:
            store.latest(runner)  # must verify or be None, never raise
        except CorruptEntry:
            totals.corrupt_seen += 1
    return found


def inject_kills(root: Path, kills: int, rng: random.Random, totals: Totals) -> None:
    """Kill `kills` builds mid-flight; check the cache after each; a normal build every 5 kills."""
    store = Store(root / ".living" / "cache")
    config: dict[str, Any] = {}
    run_driver(root, config)
    started = time.perf_counter()
    run_driver(root, config, force=True)
    span = time.perf_counter() - started  # how long a build takes here and now: kills spread over it
    while totals.kills < kills:
        before = verified_entries(store, totals)
        force = rng.random() < 0.5  # a forced re-run replaces entries: the two-rename window
        if not force:
            config = {name: {"v": rng.randrange(10**6)} for name in RUNNERS}  # new keys
        pause = rng.choice([0.0, 0.0, 0.1, 0.2])
        proc = start_driver(root, force, config, pause)
        time.sleep(rng.uniform(0.2, 1.0) * (span + 6 * pause))  # start-up is the first ~20 %
        if proc.poll() is not None:  # it finished first: not a fault
            proc.communicate()
            continue
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        totals.kills += 1
        classify(store, totals)
        for runner in RUNNERS:
            store.recover(runner)  # what the next build does first, under the runner's lock
        after = verified_entries(store, totals)
        totals.lost += len(before - after)
        if totals.kills % 10 == 0:
            check_consistent(store, run_driver(root, config), config)


def inject_kills_in_lanes(base: Path, kills: int, rng: random.Random, lanes: int = 2) -> Totals:
    """`inject_kills` on `lanes` projects at once (each lane mostly waits), totals summed."""
    parts = [(make_project(base / f"lane{i}"), kills // lanes + (i < kills % lanes), random.Random(rng.random()), Totals())
             for i in range(lanes)]
    with ThreadPoolExecutor(lanes) as pool:
        for future in [pool.submit(inject_kills, *part) for part in parts]:
            future.result()
    total = Totals()
    for part in parts:
        total.add(part[3])
    return total


def check_consistent(store: Store, outcomes: dict[str, list[Any]], config: dict[str, Any]) -> None:
    """A normal build succeeded for every runner, and stored what its config asks for."""
    for name, (origin, ok, key) in outcomes.items():
        entry = store.lookup(name, key)
        if not ok or entry is None or entry.record["result"]["metrics"]["v"] != config.get(name, {}).get("v", 0):
            raise RuntimeError(f"{name}: a normal build after the faults is not consistent ({origin}, ok={ok})")


def classify(store: Store, totals: Totals) -> None:
    """Where the kill landed, judged from what it left: for the report, and to show the windows are hit."""
    left = [p for r in RUNNERS for p in (store.cache_dir / r).glob(".*-*") if p.is_dir()]
    sealed = any((p / "result.json").is_file() and '"integrity"' in (p / "result.json").read_text() for p in left)
    where = ("between the renames of a re-commit" if any(p.name.startswith(".old-") for p in left)
             else "after sealing, before the rename" if sealed
             else "while a runner ran" if left else "elsewhere (start-up, status, between runners)")
    totals.where[where] += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=40)
    parser.add_argument("--inputs", type=int, default=60, help="corruptions, plus as many config values")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp:
        totals = inject_kills_in_lanes(Path(tmp), args.kills, rng)
        tried, mishandled = try_corruptions(make_project(Path(tmp) / "corrupt"), list(RUNNERS), args.inputs, rng)
    tried_too, mishandled_too = try_config_values(args.inputs, rng)
    totals.inputs, totals.inputs_mishandled = tried + tried_too, mishandled + mishandled_too
    print("kills landed: " + ", ".join(f"{where} {n}" for where, n in sorted(totals.where.items())))
    print(f"entries checked: {totals.entries_checked}, corrupt entries seen: {totals.corrupt_seen}, "
          f"inputs mishandled: {totals.inputs_mishandled}")
    print(totals.line())
    return 0 if totals.lost == totals.corrupt_seen == totals.inputs_mishandled == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
