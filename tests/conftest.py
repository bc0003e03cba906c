"""Shared fixtures: the real site, built once per session, and a tiny but complete living-article
project with toy runners.

The toy project is a small article of its own, written against the installed `reportgen`, with
toy runners that start fast (no torch), fail, hang or crash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from toyproject import REPO, Background, fresh_build_command, make_toy_project

SITE_TIMEOUT = 900  # seconds: a bound for a hung build, not a target
HERE = Path(__file__).resolve().parent
COMPUTE_FOLDERS = (HERE / "runners", HERE / "benchmarks")  # every test there trains or times a model
STARTED = pytest.StashKey[dict[str, Background | None]]()  # the `background` work of each test, by node id


def needs_site(item: pytest.Item) -> bool:
    return "built_site" in getattr(item, "fixturenames", ())


def computes(item: pytest.Item) -> bool:
    """A test that keeps every core busy with torch's threads (marked `compute`, or in COMPUTE_FOLDERS)."""
    return item.get_closest_marker("compute") is not None or any(folder in item.path.parents for folder in COMPUTE_FOLDERS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "compute: trains models on every core; runs after the real site's build")
    config.addinivalue_line("markers", "busy: starts processes on every core (no torch threads); runs after the site's "
                                       "tests, beside the background work")
    config.addinivalue_line("markers", "background(start=f): `f(folder) -> Background` begins the test's work beside "
                                       "the site's tests; the test reads it through the `background` fixture")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The order that lets the suite's long computations overlap the rest, in three parts:

    1. the tests that leave a core idle (toy projects, one process at a time), while the real site's cold build
       (about 115 CPU-s) runs beside them at idle priority;
    2. the tests that read the site, once it is built (mostly one browser process), then those marked `busy`
       (processes on every core, but no torch threads), while the work of the tests marked `background` runs
       beside them, at idle priority too; beside the build, the busy fault-injection test took twice as long and
       delayed the build by as much;
    3. the tests that keep every core busy: first those marked `background`, which wait for their work to end,
       then the others. Nothing runs beside them: a torch step's threads wait for each other, and a build beside
       them, even at idle priority, made the benchmark's smoke run three times slower.

    The order within each part is pytest's."""
    def part(item: pytest.Item) -> float:
        if needs_site(item):
            return 1
        if item.get_closest_marker("busy") is not None:
            return 1.2
        if item.get_closest_marker("background") is not None:
            return 1.5
        return 2 if computes(item) else 0

    items.sort(key=part)  # stable


@pytest.fixture(scope="session", autouse=True)
def site_build(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Background | None]:
    """Starts the real site's build with the session's first test, when some selected test reads the site;
    stops whatever background work is still running at the end."""
    build = None
    if any(needs_site(item) for item in request.session.items):
        out = tmp_path_factory.mktemp("real-site")
        command, env = fresh_build_command(REPO, out)
        build = Background("the real site's build", command, env, REPO, out / "build.log", SITE_TIMEOUT)
    try:
        yield build
    finally:
        for work in [build, *request.session.stash.get(STARTED, {}).values()]:
            if work is not None:
                work.stop()


def start_background(session: pytest.Session, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Begin the work of every selected test marked `background` (once)."""
    if STARTED in session.stash:
        return
    started: dict[str, Background | None] = {}
    session.stash[STARTED] = started
    for item in session.items:
        marker = item.get_closest_marker("background")
        if marker is not None:
            start: Callable[[Path], Background | None] = marker.kwargs["start"]
            started[item.nodeid] = start(tmp_path_factory.mktemp("background"))


@pytest.fixture(scope="session")
def built_site(site_build: Background | None, request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`mkdocs build --strict` of this checkout with an empty cache, once for tests/test_site.py and tests/browser/."""
    assert site_build is not None
    output = site_build.wait()
    assert site_build.proc.returncode == 0, output[-4000:]
    assert "running pytorch_project" in output  # computed during this build, not taken from a cache
    start_background(request.session, tmp_path_factory)  # the site's tests begin: the cores are free again
    return site_build.log.parent / "site"


@pytest.fixture
def background(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Background | None:
    """The test's `background` work, started beside the site's tests (or now, when no test reads the site)."""
    start_background(request.session, tmp_path_factory)
    return request.session.stash[STARTED][request.node.nodeid]


@pytest.fixture
def toy_project(tmp_path: Path) -> Path:
    """A project with the fast runners alpha and beta only."""
    return make_toy_project(tmp_path / "toy", runners=("alpha", "beta"))


@pytest.fixture
def toy_project_with_failures(tmp_path: Path) -> Path:
    """A project whose runners also include one that raises, one that hangs and one that aborts."""
    return make_toy_project(tmp_path / "toy")
