"""`mkdocs serve` first, results as they come: a real server on 127.0.0.1, a page open in Chromium.

The slow toy runner waits for a file the test writes (no sleep decides anything): the page shows
it as pending, then, once the runner finished in the background, the same open page shows its
number, reloaded by MkDocs' livereload with no restart. Ctrl-C while a runner is in flight stops
it and leaves nothing half-written in the cache; what had finished stays and is not run again.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser
from toyproject import add_runner, interruptible, make_toy_project

from reportgen.pipeline import current
from reportgen.settings import load_settings

WAITER = """
import os
import time
from dataclasses import dataclass
from pathlib import Path
from reportgen.api import Result

@dataclass(frozen=True)
class Config:
    pass

def run(config, ctx):
    go = Path(os.environ["TOY_GO"])
    deadline = time.monotonic() + 120
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    result = Result()
    result.metric("answer", 42 if go.exists() else -1)
    return result
"""
PAGE = "# 首页\n\n平方：{{ value: alpha.square }}\n\n慢的答案：{{ value: slow.answer }}\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    root: Path
    url: str
    proc: subprocess.Popen[str]
    go: Path
    cache: Path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    root = make_toy_project(tmp_path / "toy", runners=("alpha",))
    add_runner(root, "slow", WAITER)
    (root / "docs" / "index.md").write_text(PAGE, encoding="utf-8")
    port, go, cache = free_port(), tmp_path / "go", tmp_path / "cache"
    env = {**os.environ, "TOY_GO": str(go), "LIVING_CACHE_DIR": str(cache), "NO_MKDOCS_2_WARNING": "1"}
    env.pop("LIVING_EXECUTE", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mkdocs", "serve", "-a", f"127.0.0.1:{port}"],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=interruptible,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120  # a bound, not a target: the server answers once it built
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            break
        except OSError:
            time.sleep(0.1)
    try:
        yield Served(root, url, proc, go, cache)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def test_the_page_shows_pending_then_the_result_without_a_restart(served: Served, browser: Browser) -> None:
    page = browser.new_page()
    try:
        page.goto(served.url)
        body = page.locator("article")
        assert "计算中（slow）" in body.inner_text()
        served.go.write_text("go", encoding="utf-8")  # the slow runner may finish now
        # livereload reloads this page once the result landed and the site was rebuilt
        page.wait_for_function("document.querySelector('article').innerText.includes('慢的答案：42')", timeout=120_000)
        assert "计算中" not in body.inner_text()
        assert "平方：4" in body.inner_text()
    finally:
        page.close()


def test_ctrl_c_mid_run_leaves_no_partial_entry_and_keeps_what_finished(served: Served) -> None:
    settings = load_settings(served.root, environ={"LIVING_CACHE_DIR": str(served.cache)})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(served.cache.glob("slow/.tmp-*")):
        time.sleep(0.05)  # until the slow runner is in flight
    assert list(served.cache.glob("slow/.tmp-*")), "the slow runner never started"
    while time.monotonic() < deadline and current(settings)["alpha"].stale:
        time.sleep(0.05)  # alpha is quick: it finished (or finishes now)
    served.proc.send_signal(signal.SIGINT)
    served.proc.communicate(timeout=60)
    assert not list(served.cache.glob("*/.tmp-*")) and not list(served.cache.glob("*/.old-*"))
    outcomes = current(settings)
    assert outcomes["alpha"].origin == "cache"  # finished before Ctrl-C: not run again
    assert outcomes["slow"].origin == "missing"  # cut off: nothing stored
