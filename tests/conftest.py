"""Shared fixtures: the real site, built once per session, and a tiny but complete living-article
project with toy runners.

The toy project is a small article of its own, written against the installed `reportgen`, with
toy runners that start fast (no torch), fail, hang or crash.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from toyproject import REPO, fresh_build_command, make_toy_project

SITE_TIMEOUT = 900  # seconds: a bound for a hung build, not a target


def idle_priority() -> None:
    """A `preexec_fn`: the child and everything it starts run only on CPU time nobody else wants (Linux's
    SCHED_IDLE; elsewhere the lowest nice level). The real site's cold build (about 115 CPU-s) starts with the
    session this way and the tests that read it run last: it computes while the other tests leave a core idle
    (most run one process at a time, or wait on one), and takes nothing from them when they do not. A mere nice
    level still takes a tenth of a core from a busy test, and a torch test's threads then wait for each other."""
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return
        except OSError:
            pass
    os.nice(19)


class SiteBuild:
    """The real site's `mkdocs build --strict`, with an empty cache, running in the background."""

    def __init__(self, out: Path) -> None:
        self.out = out
        command, env = fresh_build_command(REPO, out)
        self.log = out / "build.log"
        with self.log.open("w", encoding="utf-8") as log:  # a file, not a pipe: nobody reads a pipe while it runs
            self.proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
                                         start_new_session=True, preexec_fn=idle_priority)
        self.started = time.monotonic()

    def wait(self) -> str:
        """The build's output, once it has ended (killed past SITE_TIMEOUT from its start)."""
        try:
            self.proc.wait(timeout=max(1.0, SITE_TIMEOUT - (time.monotonic() - self.started)))
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f"the real site's build ran past {SITE_TIMEOUT} s:\n{self.output()[-4000:]}")
        return self.output()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the build and the runners it started
            self.proc.wait()


def needs_site(item: pytest.Item) -> bool:
    return "built_site" in getattr(item, "fixturenames", ())


HERE = Path(__file__).resolve().parent
COMPUTE_FOLDERS = (HERE / "runners", HERE / "benchmarks")  # every test there trains or times a model


def computes(item: pytest.Item) -> bool:
    """A test that keeps every core busy with torch's threads (marked `compute`, or in COMPUTE_FOLDERS)."""
    return item.get_closest_marker("compute") is not None or any(folder in item.path.parents for folder in COMPUTE_FOLDERS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "compute: trains models on every core; runs after the real site's build")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The order that lets the real site's build overlap the rest: first the tests that leave a core idle (toy
    projects, one process at a time) while the build runs beside them; then the tests that read the site, once it is
    built; then the tests that train models on every core. Those last never share the cores with the build: a torch
    step's threads wait for each other, and a build beside them (even at idle priority) slows them many times over.
    The order within each part is pytest's."""
    def part(item: pytest.Item) -> int:
        return 1 if needs_site(item) else 2 if computes(item) else 0

    items.sort(key=part)  # stable


@pytest.fixture(scope="session", autouse=True)
def site_build(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteBuild | None]:
    """Starts the real site's build with the session's first test, when some selected test reads the site."""
    if not any(needs_site(item) for item in request.session.items):
        yield None
        return
    build = SiteBuild(tmp_path_factory.mktemp("real-site"))
    try:
        yield build
    finally:
        build.stop()


@pytest.fixture(scope="session")
def built_site(site_build: SiteBuild | None) -> Path:
    """`mkdocs build --strict` of this checkout with an empty cache, once for tests/test_site.py and tests/browser/."""
    assert site_build is not None
    output = site_build.wait()
    assert site_build.proc.returncode == 0, output[-4000:]
    assert "running pytorch_project" in output  # computed during this build, not taken from a cache
    return site_build.out / "site"


@pytest.fixture
def toy_project(tmp_path: Path) -> Path:
    """A project with the fast runners alpha and beta only."""
    return make_toy_project(tmp_path / "toy", runners=("alpha", "beta"))


@pytest.fixture
def toy_project_with_failures(tmp_path: Path) -> Path:
    """A project whose runners also include one that raises, one that hangs and one that aborts."""
    return make_toy_project(tmp_path / "toy")
