"""reportgen.store: atomic, verified cache entries and frozen results."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from reportgen import store as store_module
from reportgen.store import RECORD, CorruptEntry, Store, read_entry, write_json_atomic


def record(value: float = 1.5) -> dict[str, Any]:
    return {
        "runner": "alpha",
        "status": "ok",
        "result": {"metrics": {"square": value}, "figures": {"plot": {"path": "plot.png", "caption": ""}}},
        "provenance": {"device": "cpu", "finished_at": "2026-01-01T00:00:00Z"},
        "config": {"x": 2.0},
    }


def commit(store: Store, key: str, value: float = 1.5, png: bytes = b"png") -> Path:
    work = store.new_workdir("alpha")
    (work / "plot.png").write_bytes(png)
    (work / "sub").mkdir()
    (work / "sub" / "log.txt").write_text("hello", encoding="utf-8")
    store.commit("alpha", key, work, record(value))
    return store.entry_dir("alpha", key)


def dead_pid() -> int:
    for pid in (2**31 - 1, 2**31 - 2, 2**30 + 7):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except OSError:
            continue
    pytest.skip("found no pid that is certainly unused")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "cache", tmp_path / "frozen")


def test_commit_then_lookup(store: Store) -> None:
    directory = commit(store, "k1")
    entry = store.lookup("alpha", "k1")
    assert entry is not None
    assert entry.directory == directory
    assert {k: v for k, v in entry.record.items() if k not in ("files", "integrity")} == record()
    assert set(entry.record["files"]) == {"plot.png", "sub/log.txt"}
    assert len(entry.record["integrity"]) == 64
    assert entry.runner == "alpha" and entry.ok
    assert entry.file("plot.png").read_bytes() == b"png"
    assert (store.cache_dir / "alpha" / "LATEST").read_text(encoding="utf-8") == "k1"
    assert store.latest("alpha").record == entry.record
    assert store.lookup("alpha", "other") is None
    assert sorted(p.name for p in (store.cache_dir / "alpha").iterdir()) == ["LATEST", "k1"]


def _edit_record(directory: Path, change: Any) -> None:
    path = directory / RECORD
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_truncated_json_is_corrupt(store: Store) -> None:
    directory = commit(store, "k1")
    text = (directory / RECORD).read_text(encoding="utf-8")
    (directory / RECORD).write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(CorruptEntry, match="unreadable"):
        read_entry(directory)
    with pytest.raises(CorruptEntry):
        store.lookup("alpha", "k1")
    assert store.latest("alpha") is None


def test_changed_field_fails_checksum(store: Store) -> None:
    directory = commit(store, "k1")
    _edit_record(directory, lambda d: d["result"]["metrics"].update(square=9.0))
    with pytest.raises(CorruptEntry, match="checksum mismatch"):
        read_entry(directory)


def test_unsealed_record_is_corrupt(store: Store) -> None:
    directory = commit(store, "k1")
    _edit_record(directory, lambda d: d.pop("integrity"))
    with pytest.raises(CorruptEntry, match="not a sealed record"):
        read_entry(directory)


@pytest.mark.parametrize("damage", ["change", "delete"])
def test_changed_or_deleted_file_is_corrupt(store: Store, damage: str) -> None:
    directory = commit(store, "k1")
    if damage == "change":
        (directory / "sub" / "log.txt").write_text("tampered", encoding="utf-8")
    else:
        (directory / "plot.png").unlink()
    with pytest.raises(CorruptEntry, match="missing or changed"):
        read_entry(directory)


def test_interrupted_run_leaves_previous_entry(store: Store) -> None:
    commit(store, "k1")
    work = store.new_workdir("alpha")  # a run that was killed before commit
    (work / "plot.png").write_bytes(b"half")
    (work / RECORD).write_text('{"runner": "al', encoding="utf-8")
    assert store.lookup("alpha", "k2") is None
    assert (store.cache_dir / "alpha" / "LATEST").read_text(encoding="utf-8") == "k1"
    latest = store.latest("alpha")
    assert latest is not None and latest.record["result"]["metrics"]["square"] == 1.5
    assert read_entry(store.entry_dir("alpha", "k1")).ok


def test_forced_recommit_replaces_entry(store: Store) -> None:
    commit(store, "k1", value=1.5, png=b"old")
    commit(store, "k1", value=2.5, png=b"new")
    entry = store.lookup("alpha", "k1")
    assert entry.record["result"]["metrics"]["square"] == 2.5
    assert entry.file("plot.png").read_bytes() == b"new"
    assert sorted(p.name for p in (store.cache_dir / "alpha").iterdir()) == ["LATEST", "k1"]


def test_remove_abandoned_keeps_live_runs(store: Store) -> None:
    commit(store, "k1")
    dead = store.cache_dir / "alpha" / f".tmp-{dead_pid()}-x"
    live = store.cache_dir / "alpha" / f".tmp-{os.getpid()}-y"
    old = store.cache_dir / "alpha" / ".old-abc"
    for d in (dead, live, old):
        d.mkdir()
    assert store.remove_abandoned() == 1
    assert not dead.exists() and not old.exists()
    assert live.is_dir()
    assert store.lookup("alpha", "k1") is not None


def test_remove_abandoned_treats_foreign_process_as_alive(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    foreign = store.cache_dir / "alpha" / ".tmp-4242-x"
    foreign.mkdir(parents=True)

    def kill(pid: int, sig: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(store_module.os, "kill", kill)
    assert store.remove_abandoned() == 0
    assert foreign.is_dir()


def test_write_json_atomic_skips_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    assert write_json_atomic(path, {"b": 1, "a": [1, 2]}) is True
    os.utime(path, (1_000_000, 1_000_000))
    assert write_json_atomic(path, {"a": [1, 2], "b": 1}) is False
    assert path.stat().st_mtime == 1_000_000
    assert write_json_atomic(path, {"a": 3}) is True
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_freeze_and_read_back(store: Store) -> None:
    commit(store, "k1")
    entry = store.lookup("alpha", "k1")
    assert store.frozen("alpha") is None
    target = store.freeze(entry)
    assert target == store.frozen_dir / "alpha"
    frozen = store.frozen("alpha")
    assert frozen is not None and frozen.record == entry.record
    assert frozen.file("sub/log.txt").read_text(encoding="utf-8") == "hello"
    commit(store, "k2", value=3.0)
    store.freeze(store.lookup("alpha", "k2"))
    assert store.frozen("alpha").record["result"]["metrics"]["square"] == 3.0
    assert [p.name for p in store.frozen_dir.iterdir()] == ["alpha"]
    assert Store(store.cache_dir).frozen("alpha") is None


def test_last_seconds_is_the_newest_runs_wall_time_whatever_its_key(store: Store) -> None:
    assert store.last_seconds("alpha") is None  # never run here
    work = store.new_workdir("alpha")
    store.commit("alpha", "k1", work, {**record(), "provenance": {"process_wall_time_s": 12.5}})
    work = store.new_workdir("alpha")
    store.commit("alpha", "k2", work, {**record(), "provenance": {"process_wall_time_s": 3.25}})
    assert store.last_seconds("alpha") == 3.25
    (store.entry_dir("alpha", "k2") / RECORD).write_text("{", encoding="utf-8")  # torn: no estimate, no error
    assert store.last_seconds("alpha") is None
