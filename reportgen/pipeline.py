"""Decide which runners are stale, run those (in parallel where allowed), collect every result.

This is the collect half of reportgen: plain functions over `Settings`, no MkDocs import and
no torch import (runners execute in child processes).
"""

from __future__ import annotations

import contextlib
import os
import runpy
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reportgen.execute import Job, RunGroup, run_child
from reportgen.fingerprint import (
    Fingerprint,
    explain_change,
    fingerprint,
    git_commit,
    probe_device_kind,
    remember_scans,
    scans_to_keep,
)
from reportgen.lock import LockTimeout, runner_lock
from reportgen.settings import Settings
from reportgen.store import CorruptEntry, Entry, Store, read_json, write_json_atomic

if TYPE_CHECKING:
    from runners.registry import RunnerSpec

Log = Callable[[str, str], None]  # (level, message); level is "info" or "warning"
LOCK_GRACE_S = 60.0  # waiting for another build's run of a runner: its timeout plus this
SCANS_FILE = "imports.json"  # in the cache directory: which modules each source file imports, by its hash


def _quiet(level: str, message: str) -> None:
    pass


class UnknownRunner(ValueError):
    pass


@dataclass
class Outcome:
    """What the site shows for one runner, and how it got there."""

    spec: RunnerSpec
    fingerprint: Fingerprint
    entry: Entry | None
    origin: str  # "ran" | "cache" | "frozen" | "stale" | "missing"
    reasons: list[str] = field(default_factory=list)  # why it was (or would be) re-run

    @property
    def stale(self) -> bool:
        return self.origin in ("stale", "missing")

    @property
    def failed(self) -> bool:
        return self.entry is not None and not self.entry.ok


def load_registry(root: Path) -> dict[str, RunnerSpec]:
    """The project's runner list, read from runners/registry.py by path (no package import),
    so the project being built, not whatever `runners` is installed, decides what runs."""
    path = root / "runners" / "registry.py"
    if not path.is_file():
        raise UnknownRunner(f"{path} not found: a project needs runners/registry.py")
    return dict(runpy.run_path(str(path))["RUNNERS"])


def select(names: Iterable[str] | None, registry: dict[str, RunnerSpec]) -> list[RunnerSpec]:
    if not names:
        return list(registry.values())
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise UnknownRunner(f"unknown runner(s): {', '.join(unknown)}; known: {', '.join(sorted(registry))}")
    return [registry[n] for n in names]


def _store(settings: Settings) -> Store:
    return Store(settings.cache_dir, settings.frozen_dir)


def status(settings: Settings, spec: RunnerSpec, log: Log = _quiet) -> Outcome:
    """Where the runner's current result would come from, without running anything."""
    fp = fingerprint(settings.root, spec, settings.overrides(spec.name, spec.profiles), settings.device)
    store = _store(settings)
    try:
        entry = store.lookup(spec.name, fp.key)
        if entry is not None:
            return Outcome(spec, fp, entry, "cache")
    except CorruptEntry as exc:
        log("warning", f"{spec.name}: corrupt cache entry, recomputing: {exc}")
    try:
        frozen = store.frozen(spec.name)
        if frozen is not None and frozen.record.get("code_hash") == fp.code_hash:
            return Outcome(spec, fp, frozen, "frozen")
    except CorruptEntry as exc:
        log("warning", f"{spec.name}: corrupt frozen result ignored: {exc}")
    latest = store.latest(spec.name)
    reasons = explain_change(latest.record.get("inputs") if latest else None, fp.inputs)
    return Outcome(spec, fp, latest, "stale" if latest else "missing", reasons)


def execute(
    settings: Settings, outcome: Outcome, threads: int, device_lock: threading.Lock, group: RunGroup | None = None
) -> Outcome:
    """Run the runner now and store its record (success or failure) as the entry for its key."""
    spec, fp = outcome.spec, outcome.fingerprint
    store = _store(settings)
    job = Job(spec, settings.overrides(spec.name, spec.profiles), settings.device, threads, spec.timeout_s)
    workdir = store.new_workdir(spec.name)
    try:
        on_accelerator = spec.uses_device and fp.inputs["env"]["device"] != "cpu"
        if on_accelerator:  # one runner at a time on the GPU
            with device_lock:
                record = run_child(job, workdir, settings.root, group)
        else:
            record = run_child(job, workdir, settings.root, group)
        record["code_hash"] = fp.code_hash
        record["env_hash"] = fp.env_hash
        record["key"] = fp.key
        record["inputs"] = fp.inputs
        provenance = record.setdefault("provenance", {})
        provenance["git_commit"] = git_commit(settings.root)
        provenance.setdefault("finished_at", datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        entry = store.commit(spec.name, fp.key, workdir, record)
    except BaseException:
        store.discard(workdir)
        raise
    return Outcome(spec, fp, entry, "ran", outcome.reasons)


def bring_up_to_date(
    settings: Settings,
    names: Iterable[str] | None = None,
    *,
    force: bool = False,
    log: Log = _quiet,
) -> dict[str, Outcome]:
    """Return the result to show for each selected runner, running the stale ones first.

    Mode "stale" runs what changed, "all" (or force) runs everything, "never" runs nothing
    and returns the newest stored result marked stale.
    """
    registry = load_registry(settings.root)
    strays = sorted(set(settings.config) - set(registry))
    if strays:  # a typo in --set or mkdocs.yml would otherwise be ignored without a word
        raise UnknownRunner(f"config for unknown runner(s): {', '.join(strays)}; known: {', '.join(sorted(registry))}")
    specs = select(names, registry)
    _store(settings).remove_abandoned()
    scans = settings.cache_dir / SCANS_FILE
    kept = remember_scans(read_json(scans))  # the import scans of unchanged sources: no parsing again
    outcomes = {spec.name: status(settings, spec, log) for spec in specs}
    keep = scans_to_keep(kept)
    if keep is not None:
        with contextlib.suppress(OSError):  # only a time saver: a read-only cache still builds
            scans.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(scans, keep)
    run_all = force or settings.execute == "all"
    todo = [o for o in outcomes.values() if run_all or (o.stale and settings.execute == "stale")]
    if not todo:
        return outcomes
    jobs = max(1, min(settings.jobs, len(todo)))
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else 0
    device_lock, group = threading.Lock(), RunGroup()
    for outcome in todo:
        why = "forced" if run_all else "; ".join(outcome.reasons)
        log("info", f"running {outcome.spec.name} ({why})")

    def one(outcome: Outcome) -> Outcome:
        spec, store = outcome.spec, _store(settings)
        try:
            # check, run and commit under the runner's lock: another build (mkdocs serve beside
            # the CLI) waits here, then finds the result this one stored and reuses it
            with runner_lock(settings.cache_dir, spec.name, spec.timeout_s + LOCK_GRACE_S, give_up=lambda: group.stopped):
                store.recover(spec.name)
                if not run_all:
                    fresh = status(settings, spec, log)
                    if not fresh.stale:
                        log("info", f"{spec.name}: another build stored this result meanwhile; reusing it")
                        return fresh
                done = execute(settings, outcome, threads, device_lock, group)
        except LockTimeout as exc:
            log("warning", str(exc))
            return outcome
        assert done.entry is not None
        wall = done.entry.record.get("provenance", {}).get("process_wall_time_s", "?")
        if done.entry.ok:
            log("info", f"{done.spec.name}: ok in {wall} s")
        else:
            log("warning", failure_line(done.spec.name, done.entry.record))
        return done

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        try:
            for done in pool.map(one, todo):
                outcomes[done.spec.name] = done
        except BaseException:  # Ctrl-C: stop the runners now instead of waiting for them to finish
            pool.shutdown(wait=False, cancel_futures=True)
            group.stop()
            raise
    return outcomes


def failure_line(name: str, record: dict[str, Any]) -> str:
    """`runner NAME failed: Type: message` on one line (a multi-line message would split a log entry)."""
    error = record.get("error") or {}
    return " ".join(f"runner {name} failed: {error.get('type')}: {error.get('message')}".split())


def describe_settings(settings: Settings) -> dict[str, Any]:
    return {
        "execute": settings.execute,
        "device": settings.device,
        "device_kind": probe_device_kind() if settings.device == "auto" else settings.device,
        "jobs": settings.jobs,
    }
