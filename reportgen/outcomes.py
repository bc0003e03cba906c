"""Where each runner's result would come from, without running anything: the registry, the
order of needs, the keys, and the cache, frozen or stale entry to show (`Outcome`).

Plain functions over `Settings`; no MkDocs import and no torch import. `reportgen.pipeline` runs
what is stale.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from reportgen.fingerprint import Fingerprint, explain_change, fingerprint
from reportgen.settings import Settings
from reportgen.spec import RegistryError, RunnerSpec, topological
from reportgen.spec import load_registry as load_registry_module
from reportgen.store import CorruptEntry, Entry, Store

Log = Callable[[str, str], None]  # (level, message); level is "info" or "warning"
Events = Callable[[str, "Outcome"], None]  # ("queued" | "started" | "done", the runner's outcome)


def quiet(level: str, message: str) -> None:
    pass


def no_events(kind: str, outcome: Outcome) -> None:
    pass


class UnknownRunner(ValueError):
    pass


@dataclass
class Outcome:
    """What the site shows for one runner, and how it got there."""

    spec: RunnerSpec
    fingerprint: Fingerprint
    entry: Entry | None
    origin: str  # "ran" | "cache" | "frozen" | "stale" | "missing" | "blocked" (an upstream failed)
    reasons: list[str] = field(default_factory=list)  # why it was (or would be) re-run, or not run

    @property
    def stale(self) -> bool:
        return self.origin in ("stale", "missing")

    @property
    def failed(self) -> bool:
        return self.entry is not None and not self.entry.ok

    @property
    def ok(self) -> bool:
        return self.entry is not None and self.entry.ok and self.origin != "blocked"

    @property
    def key(self) -> str:
        """The key of the result downstream runners read: the stored one when it is used as it is,
        else the one a run now would store."""
        if self.entry is not None and self.origin in ("cache", "frozen"):
            return str(self.entry.record.get("key", self.fingerprint.key))
        return self.fingerprint.key


def load_registry(settings: Settings) -> dict[str, RunnerSpec]:
    """The article's runners, from the registry module the settings name (read by path)."""
    try:
        return load_registry_module(settings.root, settings.registry)
    except RegistryError as exc:
        raise UnknownRunner(str(exc)) from exc


def checked_registry(settings: Settings) -> dict[str, RunnerSpec]:
    """The registry, after checking that the config overrides name only runners it has."""
    registry = load_registry(settings)
    strays = sorted(set(settings.config) - set(registry))
    if strays:  # a typo in --set or mkdocs.yml would otherwise be ignored without a word
        raise UnknownRunner(f"config for unknown runner(s): {', '.join(strays)}; known: {', '.join(sorted(registry))}")
    return registry


def current(settings: Settings, log: Log = quiet) -> dict[str, Outcome]:
    """Every runner's result as it stands, running nothing (what `execute: never` shows)."""
    return statuses(settings, select(None, checked_registry(settings)), log)


def select(names: Iterable[str] | None, registry: dict[str, RunnerSpec]) -> list[RunnerSpec]:
    """The named runners and everything they need, upstreams first (all runners when none are named)."""
    wanted = list(names or [])
    unknown = [n for n in wanted if n not in registry]
    if unknown:
        raise UnknownRunner(f"unknown runner(s): {', '.join(unknown)}; known: {', '.join(sorted(registry))}")
    return [registry[n] for n in topological(registry, wanted or None)]


def runner_threads(settings: Settings) -> int:
    """Intra-op threads each runner gets: the cores shared among `jobs` runners, or 0 (the
    libraries' own defaults, which use every core) when runners run one at a time. Fixed by the
    settings, never by how many runners happen to be stale, because it is part of some keys.
    0 is not the same as naming the core count: an explicit count is also exported to the
    runner's child processes (MKL_NUM_THREADS), which changes their sums' rounding."""
    if settings.jobs <= 1:
        return 0
    return max(1, (os.cpu_count() or 1) // settings.jobs)


def store_for(settings: Settings) -> Store:
    return Store(settings.cache_dir, settings.frozen_dir)


def fingerprint_for(settings: Settings, spec: RunnerSpec, upstream_keys: dict[str, str] | None) -> Fingerprint:
    return fingerprint(
        settings.root, spec, settings.overrides(spec.name, spec.profiles), settings.device,
        package=settings.package, threads=runner_threads(settings), upstream_keys=upstream_keys,
    )


def status(settings: Settings, spec: RunnerSpec, log: Log = quiet, upstream_keys: dict[str, str] | None = None) -> Outcome:
    """Where the runner's current result would come from, without running anything."""
    fp = fingerprint_for(settings, spec, upstream_keys)
    store = store_for(settings)
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


def statuses(settings: Settings, specs: list[RunnerSpec], log: Log = quiet) -> dict[str, Outcome]:
    """`status` of each runner (upstreams first, as `select` orders them), with its upstreams' keys."""
    outcomes: dict[str, Outcome] = {}
    for spec in specs:
        keys = {n: outcomes[n].key for n in spec.needs if n in outcomes}
        outcomes[spec.name] = status(settings, spec, log, keys)
    return outcomes
