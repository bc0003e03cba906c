"""The pieces the fault tests rely on, one at a time: the runner lock, recovery of a re-commit cut
short, what a runner may publish, reading a garbled result, and config values."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from toyproject import REPO

from reportgen import pipeline
from reportgen.child import ConfigError, build_config
from reportgen.execute import _read_result, unsafe_outputs
from reportgen.lock import LockTimeout, runner_lock
from reportgen.pipeline import bring_up_to_date, failure_line
from reportgen.settings import load_settings
from reportgen.store import CorruptEntry, Store, read_entry


def test_a_held_lock_times_out_naming_its_holder(tmp_path: Path) -> None:
    with runner_lock(tmp_path, "alpha", 5.0):
        started = time.monotonic()
        held = rf"runner alpha: process {os.getpid()} has held .*\.lock for more than 0\.2 s"
        with pytest.raises(LockTimeout, match=held), runner_lock(tmp_path, "alpha", 0.2):
            pass
        assert time.monotonic() - started < 2
        with pytest.raises(LockTimeout, match="the build was interrupted"), runner_lock(tmp_path, "alpha", 60.0, give_up=lambda: True):
            pass
    with runner_lock(tmp_path, "alpha", 0.2):  # released on leaving the block
        pass


def test_a_killed_holder_releases_the_lock(tmp_path: Path) -> None:
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[2]); from pathlib import Path\n"
        "from reportgen.lock import runner_lock\n"
        "with runner_lock(Path(sys.argv[1]), 'alpha', 5):\n"
        "    print('held', flush=True); time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(REPO)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with pytest.raises(LockTimeout), runner_lock(tmp_path, "alpha", 0.2):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with runner_lock(tmp_path, "alpha", 2.0):  # no stale lock after a SIGKILL
        pass


def test_a_build_that_cannot_get_the_lock_shows_the_stored_result(
    toy_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(toy_project, environ={})
    bring_up_to_date(settings)
    alpha = toy_project / "runners" / "alpha.py"
    alpha.write_text(alpha.read_text().replace("x: float = 2.0", "x: float = 3.0"))
    monkeypatch.setattr(pipeline, "LOCK_GRACE_S", 0.3 - 300.0)  # alpha's timeout is 300 s: wait 0.3 s
    messages: list[str] = []
    with runner_lock(settings.cache_dir, "alpha", 5.0):  # another build is running alpha
        outcomes = bring_up_to_date(settings, ["alpha"], log=lambda level, m: messages.append(f"{level}: {m}"))
    assert outcomes["alpha"].origin == "stale"  # the previous result, marked stale
    assert outcomes["alpha"].entry is not None and outcomes["alpha"].entry.record["result"]["metrics"]["square"] == 4.0
    assert any(m.startswith("warning: runner alpha: process") and "for more than 0.3 s" in m for m in messages)


def commit(store: Store, key: str, value: int) -> None:
    work = store.new_workdir("alpha")
    (work / "data.bin").write_bytes(bytes([value]) * 10)
    store.commit("alpha", key, work, {"runner": "alpha", "status": "ok", "result": {"metrics": {"v": value}}})


def test_recover_puts_back_an_entry_moved_aside(tmp_path: Path) -> None:
    store = Store(tmp_path)
    commit(store, "k1", 1)
    entry = store.entry_dir("alpha", "k1")
    aside = entry.with_name(".old-k1-0123abcd")
    os.rename(entry, aside)  # what a re-commit killed between its two renames leaves
    assert store.lookup("alpha", "k1") is None
    assert store.latest("alpha").record["result"]["metrics"]["v"] == 1  # still shown meanwhile
    assert store.remove_abandoned() == 0 and aside.is_dir()  # the only copy: not garbage
    assert store.recover("alpha") == 1
    assert store.lookup("alpha", "k1").record["result"]["metrics"]["v"] == 1
    commit(store, "k1", 2)
    stale_copy = entry.with_name(".old-k1-89abcdef")
    stale_copy.mkdir()
    store.remove_abandoned()  # its key has an entry again: a leftover, removed
    assert not stale_copy.exists()


def test_recover_discards_a_corrupt_copy(tmp_path: Path) -> None:
    store = Store(tmp_path)
    commit(store, "k1", 1)
    aside = store.entry_dir("alpha", "k1").with_name(".old-k1-0123abcd")
    os.rename(store.entry_dir("alpha", "k1"), aside)
    (aside / "data.bin").write_bytes(b"changed")
    assert store.recover("alpha") == 0
    assert not aside.exists() and store.lookup("alpha", "k1") is None  # simply stale: it runs again


def test_symlinks_are_never_sealed_or_trusted(tmp_path: Path) -> None:
    store = Store(tmp_path)
    work = store.new_workdir("alpha")
    (work / "leak.txt").symlink_to("/etc/hostname")
    (work / "ok.bin").write_bytes(b"ok")
    entry = store.commit("alpha", "k1", work, {"runner": "alpha", "status": "ok"})
    assert set(entry.record["files"]) == {"ok.bin"}
    (entry.directory / "ok.bin").unlink()
    (entry.directory / "ok.bin").symlink_to(tmp_path / "elsewhere.bin")
    (tmp_path / "elsewhere.bin").write_bytes(b"ok")  # same bytes, but not the entry's own file
    with pytest.raises(CorruptEntry):
        read_entry(entry.directory)


def test_unsafe_outputs_are_removed_and_named(tmp_path: Path) -> None:
    for name in ("page.md", "x.SVG", "a.html", "sub/s.js", "fig.png", "data.csv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / "link.png").symlink_to(tmp_path / "fig.png")
    os.mkfifo(tmp_path / "pipe")
    record = {"status": "ok", "result": {"figures": {"f": {"path": "fig.png"}, "g": {"path": "/etc/hostname"},
                                                      "h": {"path": "sub/../fig.png"}, "i": {"path": "nope.png"}}}}
    problems = unsafe_outputs(tmp_path, record)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["data.csv", "fig.png", "sub"]
    text = "; ".join(problems)
    for expected in ("a.html: .html files", "page.md: .md files", "sub/s.js: .js", "x.SVG: .SVG files", "link.png is a link",
                     "pipe is a link or special file", "figure 'g' names '/etc/hostname'", "figure 'h'", "figure 'i'"):
        assert expected in text
    assert "figure 'f'" not in text


@pytest.mark.parametrize(
    "content",
    [b"[1, 2]", b'"ok"', b"null", b'{"status": "ok"}', b'{"status": "weird", "result": {}}', b"\xff\xfe{}", b'{"stat'],
)
def test_a_garbled_result_is_a_bad_result(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "result.json").write_bytes(content)
    record = _read_result(tmp_path / "result.json")
    assert record["status"] == "error" and record["error"]["type"] == "BadResult"


def test_failure_line_is_one_line() -> None:
    record = {"error": {"type": "ValueError", "message": "first\n  second\r\nthird"}}
    assert failure_line("x", record) == "runner x failed: ValueError: first second third"


@dataclass(frozen=True)
class Fields:
    x: float = 2.0
    n: int = 3
    flag: bool = False
    name: str = "a"
    pair: tuple[float, ...] = (0.1, 0.9)
    mixed: tuple = ("a", 1)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"x": "1e-3"}, {"x": 0.001}), ({"x": 3}, {"x": 3.0}), ({"n": "7"}, {"n": 7}), ({"n": 4.0}, {"n": 4}),
        ({"flag": "off"}, {"flag": False}), ({"flag": True}, {"flag": True}), ({"name": 5}, {"name": "5"}),
        ({"pair": [1, 2]}, {"pair": (1.0, 2.0)}), ({"mixed": ["b", 2]}, {"mixed": ("b", 2)}),
    ],
)
def test_config_values_that_fit(overrides: dict, expected: dict) -> None:
    config = build_config(Fields, overrides, "toy")
    assert {k: getattr(config, k) for k in expected} == expected


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"x": "abc"}, "config toy.x='abc': expected a float (a number; default 2.0)"),
        ({"x": True}, "config toy.x=True: expected a float (a number; default 2.0)"),
        ({"n": 2.5}, "config toy.n=2.5: expected an int (a whole number; default 3)"),
        ({"flag": "maybe"}, "config toy.flag='maybe': expected a bool (true or false; default false)"),
        ({"name": None}, "config toy.name=None: expected a str (default 'a')"),
        ({"pair": "0.5"}, "config toy.pair='0.5': expected a list such as [0.1, 0.9]"),
        ({"pair": [0.5, "b"]}, "config toy.pair[1]='b': expected a float (a number; default 0.1)"),
        ({"nosuch": 1, "other": 2}, "unknown config key(s) toy.nosuch, toy.other; valid keys: flag, mixed, n, name, pair, x"),
    ],
)
def test_config_values_that_do_not_fit(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_config(Fields, overrides, "toy")
    assert str(err.value) == message


def test_a_config_error_is_recorded_without_a_traceback(toy_project: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(toy_project)}
    proc = subprocess.run(
        [sys.executable, "-m", "reportgen.child", "alpha", "--registry", "runners.registry", "--out", str(tmp_path),
         "--config", json.dumps({"x": "abc"})],
        cwd=toy_project, env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    error = json.loads((tmp_path / "result.json").read_text(encoding="utf-8"))["error"]
    assert error == {"type": "ConfigError", "message": "config alpha.x='abc': expected a float (a number; default 2.0)",
                     "traceback": ""}
