"""The result cache on disk: one directory per (runner, key), written atomically, verified on read.

Layout (cache root defaults to `.living/cache`, frozen root to `results/`):

    <cache>/<runner>/<key>/result.json   the record (see `seal`) with a sha256 of its own content
    <cache>/<runner>/<key>/<files>       figures and other files the runner wrote
    <cache>/<runner>/LATEST               name of the newest completed entry (shown when stale)
    <cache>/<runner>/.lock                held (flock) while a build checks, runs and commits it
    <cache>/imports.json                 the modules each runner source imports, by its sha256
                                         (reportgen.fingerprint: a rebuild re-parses only edited files)
    <frozen>/<runner>/result.json        a committed record, reused while its code hash matches

An entry only appears by `os.rename` of a finished temporary directory, so an interrupted run
leaves the previous entries untouched; a record or file whose checksum does not match is
reported as corrupt and never rendered. A forced re-run of an existing key moves the old entry
aside as `.old-<key>-<tag>` for the instant between two renames; if the process dies there,
`recover` (called under the runner's lock) moves it back, so no completed result is ever lost.

Test hook: `LIVING_TEST_PAUSE_IN_COMMIT=<seconds>` makes `commit` sleep after writing the sealed
record and between the two renames of a re-commit, so fault-injection tests can kill a build
inside those windows reliably (tests/reliability/, benchmarks/fault_injection.py). Unset, it
costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportgen.fingerprint import canonical_json

RECORD = "result.json"
PAUSE_ENV = "LIVING_TEST_PAUSE_IN_COMMIT"  # test hook, see the module docstring
_OLD = re.compile(r"\.old-(?P<key>.+)-[0-9a-f]{8}")


def _test_pause() -> None:
    seconds = os.environ.get(PAUSE_ENV)
    if seconds:
        time.sleep(float(seconds))


class CorruptEntry(Exception):
    """A cache entry that exists but cannot be trusted (bad JSON, checksum or missing file)."""


@dataclass
class Entry:
    """A verified record and the directory its files live in."""

    record: dict[str, Any]
    directory: Path

    @property
    def runner(self) -> str:
        return str(self.record["runner"])

    @property
    def ok(self) -> bool:
        return self.record.get("status") == "ok"

    def file(self, rel: str) -> Path:
        return self.directory / rel


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def seal(record: dict[str, Any], directory: Path) -> dict[str, Any]:
    """Add the manifest of files under `directory` and the record's own checksum."""
    files = {}
    for path in sorted(directory.rglob("*")):
        # a symlink is never sealed (or published): it could point at any file on the machine
        if path.is_file() and not path.is_symlink() and path.name != RECORD and not path.name.endswith(".tmp"):
            files[path.relative_to(directory).as_posix()] = _file_digest(path)
    sealed = {k: v for k, v in record.items() if k != "integrity"}
    sealed["files"] = files
    sealed["integrity"] = hashlib.sha256(canonical_json(sealed).encode()).hexdigest()
    return sealed


def read_entry(directory: Path) -> Entry:
    """Load and verify an entry; raise CorruptEntry with the reason when it cannot be trusted."""
    path = directory / RECORD
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptEntry(f"{path}: unreadable ({exc.__class__.__name__})") from exc
    if not isinstance(record, dict) or "integrity" not in record or "files" not in record:
        raise CorruptEntry(f"{path}: not a sealed record")
    body = {k: v for k, v in record.items() if k != "integrity"}
    if hashlib.sha256(canonical_json(body).encode()).hexdigest() != record["integrity"]:
        raise CorruptEntry(f"{path}: checksum mismatch")
    for rel, digest in record["files"].items():
        file = directory / rel
        if not file.is_file() or file.is_symlink() or _file_digest(file) != digest:
            raise CorruptEntry(f"{file}: missing or changed")
    return Entry(record, directory)


def copy_sealed(source: Entry, directory: Path) -> Entry:
    """Copy the record and exactly the files its seal lists into `directory` (created), then verify
    the copy: nothing unsealed (a stray file, a symlink) travels with an entry."""
    directory.mkdir(parents=True, exist_ok=True)
    for rel in [RECORD, *source.record["files"]]:
        parts = Path(rel).parts
        if Path(rel).is_absolute() or ".." in parts or not parts:
            raise CorruptEntry(f"{source.directory / RECORD}: file name {rel!r} points outside the entry")
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source.directory / rel, target)
    copied = read_entry(directory)
    if copied.record != source.record:
        raise CorruptEntry(f"{source.directory / RECORD}: changed while it was copied")
    return copied


def read_json(path: Path) -> Any:
    """The JSON value in a file; None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def write_json_atomic(path: Path, value: Any) -> bool:
    """Write JSON deterministically; skip the write when the content is unchanged. Returns True if written."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, indent=1) + "\n"
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return True


class Store:
    """Cache entries per runner and key, plus the frozen (committed) results."""

    def __init__(self, cache_dir: Path, frozen_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir
        self.frozen_dir = frozen_dir

    def entry_dir(self, runner: str, key: str) -> Path:
        return self.cache_dir / runner / key

    def new_workdir(self, runner: str) -> Path:
        """A private temporary directory for a run in progress (becomes an entry by `commit`)."""
        work = self.cache_dir / runner / f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        work.mkdir(parents=True)
        return work

    def commit(self, runner: str, key: str, workdir: Path, record: dict[str, Any]) -> Entry:
        """Seal the record into `workdir`, then move it into place as the entry for `key`."""
        sealed = seal(record, workdir)
        write_json_atomic(workdir / RECORD, sealed)
        _test_pause()
        return Entry(sealed, self._place(runner, key, workdir))

    def adopt(self, runner: str, key: str, source: Entry) -> Entry:
        """Copy a verified entry of another cache in as the entry for `key` (reportgen.merge):
        only the record and the files its seal lists are copied, the copy is verified again, and
        it appears by the same rename as a run's result, so a refused or interrupted import
        leaves nothing behind (a dead process's temporary directory goes with `remove_abandoned`)."""
        workdir = self.new_workdir(runner)
        try:
            copied = copy_sealed(source, workdir)
        except BaseException:
            self.discard(workdir)
            raise
        return Entry(copied.record, self._place(runner, key, workdir))

    def _place(self, runner: str, key: str, workdir: Path) -> Path:
        """Move a finished work directory into place as the entry for `key`, and point LATEST at it."""
        final = self.entry_dir(runner, key)
        if final.exists():  # a forced re-run replaces the entry: move the old one aside first
            # the name keeps the key, so `recover` can put it back if we die before the next rename
            old = final.with_name(f".old-{key}-{uuid.uuid4().hex[:8]}")
            os.rename(final, old)
            _test_pause()
            os.rename(workdir, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(workdir, final)
        pointer = self.cache_dir / runner / "LATEST"
        tmp = pointer.with_name(f".LATEST.{uuid.uuid4().hex}.tmp")
        tmp.write_text(key, encoding="utf-8")
        os.replace(tmp, pointer)
        return final

    def recover(self, runner: str) -> int:
        """Put back entries moved aside by a re-commit that died between its two renames.

        Call it holding the runner's lock (reportgen.lock): a live re-commit has the same gap.
        Returns how many entries were restored.
        """
        restored = 0
        for old in sorted((self.cache_dir / runner).glob(".old-*")):
            match = _OLD.fullmatch(old.name)
            final = self.entry_dir(runner, match["key"]) if match else None
            if final is not None and not final.exists():
                try:
                    read_entry(old)
                    os.rename(old, final)
                    restored += 1
                    continue
                except (CorruptEntry, OSError):
                    pass
            shutil.rmtree(old, ignore_errors=True)
        return restored

    def lookup(self, runner: str, key: str) -> Entry | None:
        """The verified entry for this exact key, None if absent; CorruptEntry if untrustworthy."""
        directory = self.entry_dir(runner, key)
        if not (directory / RECORD).exists():
            return None
        return read_entry(directory)

    def latest(self, runner: str) -> Entry | None:
        """The newest completed entry, whatever its key (shown, marked stale, when runs are off)."""
        pointer = self.cache_dir / runner / "LATEST"
        try:
            key = pointer.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        # while a killed re-commit awaits `recover`, its entry is still whole under its .old- name
        for directory in [self.entry_dir(runner, key), *sorted(pointer.parent.glob(f".old-{key}-*"))]:
            try:
                return read_entry(directory)
            except CorruptEntry:
                continue
        return None

    def last_seconds(self, runner: str) -> float | None:
        """How long the newest completed run took (its process's wall time), whatever its key; None if the
        runner has none here. Read as it is, unverified: it only orders runners (reportgen/schedule.py)."""
        try:
            key = (self.cache_dir / runner / "LATEST").read_text(encoding="utf-8").strip()
            seconds = read_json(self.entry_dir(runner, key) / RECORD)["provenance"]["process_wall_time_s"]
        except (OSError, TypeError, KeyError, ValueError):
            return None
        return float(seconds) if isinstance(seconds, (int, float)) else None

    def frozen(self, runner: str) -> Entry | None:
        if self.frozen_dir is None or not (self.frozen_dir / runner / RECORD).exists():
            return None
        return read_entry(self.frozen_dir / runner)

    def freeze(self, entry: Entry) -> Path:
        """Copy an entry into the frozen directory (to be committed), replacing the previous one."""
        assert self.frozen_dir is not None
        target = self.frozen_dir / entry.runner
        staging = self.frozen_dir / f".{entry.runner}.{uuid.uuid4().hex[:8]}"
        try:
            copy_sealed(entry, staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if target.exists():
            old = self.frozen_dir / f".{entry.runner}.old-{uuid.uuid4().hex[:8]}"
            os.rename(target, old)
            os.rename(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, target)
        return target

    def discard(self, workdir: Path) -> None:
        shutil.rmtree(workdir, ignore_errors=True)

    def remove_abandoned(self) -> int:
        """Delete temporary directories left by runs whose process is gone. Returns how many."""
        removed = 0
        for tmp in self.cache_dir.glob("*/.tmp-*"):
            pid = tmp.name.split("-")[1]
            alive = pid.isdigit() and _pid_alive(int(pid))
            if not alive:
                shutil.rmtree(tmp, ignore_errors=True)
                removed += 1
        for old in self.cache_dir.glob("*/.old-*"):
            # one whose key has no entry may be the only copy (a re-commit killed between its
            # renames): leave it to `recover`, which runs under the runner's lock
            match = _OLD.fullmatch(old.name)
            if match is None or (old.parent / match["key"]).exists():
                shutil.rmtree(old, ignore_errors=True)
        return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True
