"""Decide which runners are stale, run those (in parallel where allowed), collect every result.

This is the collect half of reportgen: plain functions over `Settings`, no MkDocs import and
no torch import (runners execute in child processes).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reportgen.execute import Job, RunGroup, run_child
from reportgen.fingerprint import git_commit, probe_device_kind
from reportgen.i18n import Message
from reportgen.lock import LockTimeout, runner_lock
from reportgen.outcomes import (
    Events,
    Log,
    Outcome,
    UnknownRunner,
    checked_registry,
    current,
    fingerprint_for,
    load_registry,
    no_events,
    quiet,
    runner_threads,
    select,
    status,
    statuses,
    store_for,
)
from reportgen.schedule import longest_chain_first, run_schedule
from reportgen.settings import Settings
from reportgen.sources import remember_scans, scans_to_keep
from reportgen.store import read_json, write_json_atomic
from reportgen.streams import ProgressLog

# what the rest of reportgen (and an article's tools) import from here
__all__ = ["Events", "Log", "Outcome", "UnknownRunner", "bring_up_to_date", "current", "execute", "failure_line",
           "load_registry", "runner_threads", "select", "status", "statuses"]

LOCK_GRACE_S = 60.0  # waiting for another build's run of a runner: its timeout plus this
SCANS_FILE = "imports.json"  # in the cache directory: which modules each source file imports, by its hash


def execute(
    settings: Settings,
    outcome: Outcome,
    threads: int,
    device_lock: threading.Lock,
    group: RunGroup | None = None,
    upstreams: dict[str, Path] | None = None,
    on_progress: Callable[[str, str], None] | None = None,
) -> Outcome:
    """Run the runner now and store its record (success or failure) as the entry for its key;
    `on_progress(name, message)` hears what the runner reports while it works (ctx.progress)."""
    spec, fp = outcome.spec, outcome.fingerprint
    store = store_for(settings)
    job = Job(spec, settings.overrides(spec.name, spec.profiles), settings.device, threads, spec.timeout_s,
              settings.registry, dict(upstreams or {}))
    workdir = store.new_workdir(spec.name)
    try:
        on_accelerator = spec.uses_device and fp.inputs["env"]["device"] != "cpu"
        if on_accelerator:  # one runner at a time on the GPU
            with device_lock:
                record = run_child(job, workdir, settings.root, group, settings.cache_dir, on_progress)
        else:
            record = run_child(job, workdir, settings.root, group, settings.cache_dir, on_progress)
        if spec.identity:  # a run may fill what an identity hook reads (a tuning cache): key it as the next build will
            fp = fingerprint_for(settings, spec, dict(fp.inputs["code"].get("upstream") or {}))
        record["code_hash"] = fp.code_hash
        record["env_hash"] = fp.env_hash
        record["key"] = fp.key
        record["inputs"] = fp.inputs
        provenance = record.setdefault("provenance", {})
        provenance["git_commit"] = git_commit(settings.root)
        provenance.setdefault("finished_at", datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        # every package in the key, not only those the runner happened to import
        provenance["versions"] = {**provenance.get("versions", {}), **fp.inputs["env"]["packages"]}
        if fp.inputs["env"].get("machine"):
            provenance["machine"] = dict(fp.inputs["env"]["machine"])
        if spec.needs:
            provenance["upstream"] = dict(fp.inputs["code"].get("upstream") or {})
        entry = store.commit(spec.name, fp.key, workdir, record)
    except BaseException:
        store.discard(workdir)
        raise
    return Outcome(spec, fp, entry, "ran", outcome.reasons)


def _blocked(outcome: Outcome, outcomes: dict[str, Outcome]) -> Outcome | None:
    """The runner's outcome when an upstream has no usable result (it is then not run), else None."""
    reasons: list[str] = []
    for need in outcome.spec.needs:
        up = outcomes[need]
        # Messages: English in the log, the page's language on the pages
        if up.origin == "blocked":
            reasons.append(Message("reason.upstream_not_run", name=need))
        elif up.entry is None:
            reasons.append(Message("reason.upstream_missing", name=need))
        elif not up.entry.ok:
            reasons.append(Message("reason.upstream_failed", name=need, error=one_line(up.entry.record.get("error") or {})))
        elif up.stale:
            reasons.append(Message("reason.upstream_stale", name=need))
    if not reasons:
        return None
    return Outcome(outcome.spec, outcome.fingerprint, None, "blocked", reasons)


def bring_up_to_date(
    settings: Settings,
    names: Iterable[str] | None = None,
    *,
    force: bool = False,
    log: Log = quiet,
    events: Events | None = None,
    group: RunGroup | None = None,
) -> dict[str, Outcome]:
    """Return the result to show for each selected runner (and the runners they need), running
    the stale ones first, each after its upstreams, up to `jobs` at once.

    Mode "stale" runs what changed, "all" (or force) runs everything, "never" runs nothing
    and returns the newest stored result marked stale. `events` hears ("queued", outcome) for
    each runner about to run, in order, then ("started", …) and ("done", …) as they happen
    (`mkdocs serve` shows pages while runners run); `group.stop()` from another thread stops them.
    """
    specs = select(names, checked_registry(settings))
    store_for(settings).remove_abandoned()
    scans = settings.cache_dir / SCANS_FILE
    kept = remember_scans(read_json(scans))  # the import scans of unchanged sources: no parsing again
    outcomes = statuses(settings, specs, log)
    keep = scans_to_keep(kept)
    if keep is not None:
        with contextlib.suppress(OSError):  # only a time saver: a read-only cache still builds
            scans.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(scans, keep)
    run_all = force or settings.execute == "all"
    todo = [o for o in outcomes.values() if run_all or (o.stale and settings.execute == "stale")]
    if not todo:
        return outcomes
    # each runner's last run here, else its timeout (a runner never run is taken to be long), for the order
    store = store_for(settings)

    def estimate(outcome: Outcome) -> float:
        seconds = store.last_seconds(outcome.spec.name)
        return outcome.spec.timeout_s if seconds is None else seconds

    todo = longest_chain_first(todo, estimate)
    threads = runner_threads(settings)
    device_lock, group = threading.Lock(), group or RunGroup()
    tell = events or no_events
    progress = ProgressLog(lambda line: log("info", line))  # epoch and step of a long runner, every 2 s
    for outcome in todo:
        why = "forced" if run_all else "; ".join(outcome.reasons)
        log("info", f"running {outcome.spec.name} ({why})")
        tell("queued", outcome)

    def blocked_by(outcome: Outcome, known: dict[str, Outcome]) -> Outcome | None:
        blocked = _blocked(outcome, known)
        if blocked is not None:
            tell("done", blocked)
        return blocked

    def one(outcome: Outcome) -> Outcome:
        done = run_one(outcome)
        tell("done", done)
        return done

    def run_one(outcome: Outcome) -> Outcome:
        tell("started", outcome)
        spec = outcome.spec
        upstreams = {n: outcomes[n].entry.directory for n in spec.needs if outcomes[n].entry is not None}
        try:
            # check, run and commit under the runner's lock: another build (mkdocs serve beside
            # the CLI) waits here, then finds the result this one stored and reuses it
            with runner_lock(settings.cache_dir, spec.name, spec.timeout_s + LOCK_GRACE_S, give_up=lambda: group.stopped):
                store_for(settings).recover(spec.name)
                # the key with the upstreams' keys as they are now: an upstream with an identity hook
                # is stored under the key it has after its run, which its readers' keys must name
                keys = {n: outcomes[n].key for n in spec.needs}
                fresh = status(settings, spec, log, keys)
                if not run_all and not fresh.stale:
                    log("info", f"{spec.name}: another build stored this result meanwhile; reusing it")
                    return fresh
                now = Outcome(spec, fresh.fingerprint, outcome.entry, outcome.origin, outcome.reasons)
                done = execute(settings, now, threads, device_lock, group, upstreams, progress)
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

    run_schedule(todo, outcomes, settings.jobs, one, blocked_by, group.stop, log)
    return outcomes


def one_line(error: dict[str, Any]) -> str:
    return " ".join(f"{error.get('type')}: {error.get('message')}".split())


def failure_line(name: str, record: dict[str, Any]) -> str:
    """`runner NAME failed: Type: message` on one line (a multi-line message would split a log entry)."""
    return f"runner {name} failed: {one_line(record.get('error') or {})}"


def describe_settings(settings: Settings) -> dict[str, Any]:
    return {
        "execute": settings.execute,
        "device": settings.device,
        "device_kind": probe_device_kind() if settings.device == "auto" else settings.device,
        "jobs": settings.jobs,
    }
