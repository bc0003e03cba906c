"""Bring results computed elsewhere into this checkout's cache (`reportgen merge DIR [DIR ...]`).

Each DIR is a result cache (`<runner>/<key>/result.json`, as `reportgen run --shard K/N` fills on
another machine) or a frozen-results folder (`<runner>/result.json`). Every entry found there is
checked before anything is copied:

1. its seal (reportgen.store.read_entry): the record's checksum and every file's;
2. that it is what it claims: the runner's entry, under its own key, whose recorded inputs hash
   to that key (an edited record that was sealed again fails here);
3. that this checkout would compute the same key (reportgen.outcomes.fingerprint_for, with the
   keys of the upstream results as this cache now holds them).

An entry that passes all three is imported into the cache as the result for that key. The key has
two halves (reportgen.fingerprint): the code and config, and the environment (package versions,
Python, device kind, the machine probes a runner names, its identity hooks). An entry whose *code*
half differs was computed from another commit or config and is refused, with what changed. One
whose code matches but whose environment differs was computed on another kind of machine (another
CPU model, a GPU, another tuning record): this machine would compute other last bits, so it is
not this machine's cache entry either, and is refused as "machine-bound" unless `--frozen` is given.
With `--frozen` it becomes a frozen result (the frozen folder, `results/` by default), exactly as if
`reportgen freeze` had been run on that machine and the folder committed: the build shows it while
the code matches, and the page says which device computed it and when.

Entries are imported one at a time, each by copying into a private temporary directory, verifying
the copy, then renaming it into place (reportgen.store.Store.adopt), under the runner's lock; a
refused or interrupted import leaves nothing behind. When several sources (or the cache already)
hold a result for the same key or the same frozen runner, the one kept is chosen by its content
alone: a success over a failure, then the newest, then the larger checksum. So merging is
idempotent and does not depend on the order of the sources.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reportgen.fingerprint import Fingerprint, canonical_json, explain_change
from reportgen.lock import runner_lock
from reportgen.outcomes import checked_registry, fingerprint_for, quiet, select, status, store_for
from reportgen.settings import Settings
from reportgen.store import RECORD, CorruptEntry, Entry, read_entry

LOCK_GRACE_S = 60.0


@dataclass
class Line:
    """What happened to one entry of a source (or to a source that could not be read)."""

    path: Path  # the entry's directory (or the source)
    action: str  # "imported" | "frozen" | "present" | "refused"
    reason: str = ""
    untrusted: bool = False  # refused because it cannot be trusted (corrupt, tampered, unreadable)

    def text(self) -> str:
        return f"{self.action:<9} {self.path}" + (f": {self.reason}" if self.reason else "")


@dataclass
class MergeReport:
    lines: list[Line] = field(default_factory=list)

    def of(self, action: str) -> list[Line]:
        return [line for line in self.lines if line.action == action]

    @property
    def untrusted(self) -> list[Line]:
        return [line for line in self.lines if line.untrusted]


@dataclass
class _Candidate:
    entry: Entry
    source: Path
    why: str = ""  # for a machine-bound one: what of the machine differs


def _rank(entry: Entry) -> tuple[bool, str, str]:
    """Which of several results for one key (or one frozen runner) to keep: decided by content only."""
    finished = str(entry.record.get("provenance", {}).get("finished_at", ""))
    return (entry.ok, finished, str(entry.record.get("integrity", "")))


def _hash(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def _claims_problem(entry: Entry, runner: str, dirname: str | None) -> str:
    """Why the record is not the sealed result it claims to be ("" when it is)."""
    record = entry.record
    if record.get("runner") != runner:
        return f"a result of runner {record.get('runner')!r}, found under {runner}/"
    key, inputs = record.get("key"), record.get("inputs")
    if not isinstance(key, str) or not isinstance(inputs, dict) or "code" not in inputs or "env" not in inputs:
        return "no key or inputs in its record"
    if dirname is not None and dirname != key:
        return f"its record's key {key} is not the name of its folder"
    code, env = _hash(inputs["code"]), _hash(inputs["env"])
    if (code, env) != (record.get("code_hash"), record.get("env_hash")) or Fingerprint(code, env, inputs).key != key:
        return "tampered: its recorded inputs do not hash to its key"
    return ""


def _entries(source: Path, registry: set[str]) -> tuple[dict[str, list[tuple[Path, str | None]]], list[Line]]:
    """The entry directories of a cache or frozen folder, per runner: (directory, key folder name or None)."""
    found: dict[str, list[tuple[Path, str | None]]] = {}
    problems: list[Line] = []
    if not source.is_dir():
        return found, [Line(source, "refused", "no such folder", untrusted=True)]
    for runner_dir in sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith(".")):
        dirs: list[tuple[Path, str | None]] = []
        if (runner_dir / RECORD).exists():  # frozen layout: <runner>/result.json
            dirs.append((runner_dir, None))
        dirs += [(d, d.name) for d in sorted(runner_dir.iterdir())
                 if d.is_dir() and not d.name.startswith(".") and (d / RECORD).exists()]
        if not dirs:
            continue
        if runner_dir.name not in registry:
            problems += [Line(d, "refused", f"this checkout has no runner {runner_dir.name}") for d, _ in dirs]
            continue
        found.setdefault(runner_dir.name, []).extend(dirs)
    return found, problems


def merge(settings: Settings, sources: list[Path], *, frozen: bool = False, only: set[str] | None = None,
          log: Callable[[str, str], None] = quiet) -> MergeReport:
    """Import into the configured cache (and, with `frozen`, the frozen folder) the entries of
    `sources` that this checkout would use; every entry gets one line in the report. `only`: the
    runners to import (a shard's share); the entries of the others are passed over without a line."""
    registry = checked_registry(settings)
    report = MergeReport()
    store = store_for(settings)
    found: dict[str, list[tuple[Path, str | None]]] = {}
    for source in sources:
        entries, problems = _entries(source, set(registry))
        report.lines += problems
        for runner, dirs in entries.items():
            found.setdefault(runner, []).extend(dirs)
    keys: dict[str, str] = {}  # the key of each runner's result as this cache holds it, for its readers
    for spec in select(None, registry):
        upstream = {n: keys[n] for n in spec.needs}
        expected = fingerprint_for(settings, spec, upstream)
        for_cache: list[_Candidate] = []
        for_frozen: list[_Candidate] = []
        for directory, dirname in found.get(spec.name, []) if only is None or spec.name in only else []:
            try:
                entry = read_entry(directory)
            except CorruptEntry as exc:
                report.lines.append(Line(directory, "refused", f"corrupt: {exc}", untrusted=True))
                continue
            problem = _claims_problem(entry, spec.name, dirname)
            if problem:
                report.lines.append(Line(directory, "refused", problem, untrusted=True))
                continue
            record = entry.record
            if record["code_hash"] != expected.code_hash:
                why = "; ".join(explain_change(record["inputs"], expected.inputs))
                report.lines.append(Line(directory, "refused", f"computed from other code or config ({why})"))
            elif record["env_hash"] != expected.env_hash:
                why = "; ".join(explain_change(record["inputs"], expected.inputs))
                if frozen and entry.ok:
                    for_frozen.append(_Candidate(entry, directory, why))
                else:
                    hint = ("it failed there, so it is not frozen either" if frozen else
                            f"merge with --frozen to publish it as a frozen result, or run {spec.name} here")
                    report.lines.append(Line(directory, "refused", f"machine-bound: computed on another machine ({why}); {hint}"))
            else:
                for_cache.append(_Candidate(entry, directory))
        if for_cache or for_frozen:
            with runner_lock(settings.cache_dir, spec.name, spec.timeout_s + LOCK_GRACE_S):
                store.recover(spec.name)
                report.lines += _into_cache(store, spec.name, expected.key, for_cache)
                report.lines += _into_frozen(store, spec.name, expected.code_hash, for_frozen)
        keys[spec.name] = status(settings, spec, log, upstream).key
    return report


def _into_cache(store: Any, runner: str, key: str, candidates: list[_Candidate]) -> list[Line]:
    if not candidates:
        return []
    try:
        present = store.lookup(runner, key)
    except CorruptEntry:
        present = None  # replaced by a good copy
    best = max(candidates, key=lambda c: _rank(c.entry))
    lines = []
    if present is not None and _rank(present) >= _rank(best.entry):
        return [Line(c.source, "present", "this result is in the cache already") for c in candidates]
    try:
        store.adopt(runner, key, best.entry)
    except (CorruptEntry, OSError) as exc:
        return [Line(best.source, "refused", f"could not be copied: {exc}", untrusted=True)]
    for c in candidates:
        if c is best:
            lines.append(Line(c.source, "imported", "" if c.entry.ok else "a failed run (its page shows the error)"))
        else:
            lines.append(Line(c.source, "present", f"another copy of this result was kept ({best.source})"))
    return lines


def _into_frozen(store: Any, runner: str, code_hash: str, candidates: list[_Candidate]) -> list[Line]:
    if not candidates:
        return []
    try:
        present = store.frozen(runner)
    except CorruptEntry:
        present = None
    if present is not None and present.record.get("code_hash") != code_hash:
        present = None  # another commit's frozen result: no longer shown, so replaced
    best = max(candidates, key=lambda c: _rank(c.entry))
    if present is not None and _rank(present) >= _rank(best.entry):
        return [Line(c.source, "present", "this result is frozen already") for c in candidates]
    try:
        store.freeze(best.entry)
    except (CorruptEntry, OSError) as exc:
        return [Line(best.source, "refused", f"could not be copied: {exc}", untrusted=True)]
    provenance = best.entry.record.get("provenance", {})
    device = provenance.get("device_name") or provenance.get("device") or "?"
    lines = []
    for c in candidates:
        if c is best:
            lines.append(Line(c.source, "frozen", f"computed on another machine ({c.why}); shown as a frozen result "
                                                  f"while the code matches, its page naming {device}"))
        else:
            lines.append(Line(c.source, "present", f"another result of this code was frozen ({best.source})"))
    return lines
