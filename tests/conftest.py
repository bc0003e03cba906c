"""Shared fixtures: the real site, built once per session, and a tiny but complete living-article
project with toy runners.

The toy project is a small article of its own, written against the installed `reportgen`, with
toy runners that start fast (no torch), fail, hang or crash.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from filelock import FileLock
from toyproject import REPO, Background, fresh_build_command, make_toy_project

SITE_TIMEOUT = 900  # seconds: a bound for a hung build, not a target
HERE = Path(__file__).resolve().parent
COMPUTE_FOLDERS = (HERE / "runners", HERE / "benchmarks")  # every test there trains or times a model
SITE = pytest.StashKey[Background]()  # the real site's build, once started
STARTED = pytest.StashKey[dict[str, Background | None]]()  # the `background` work of each test, by node id

# pytest-xdist's workers (`-n`, in pyproject.toml's addopts) share the cores: each test's torch gets its share of
# them, set before anything imports torch, and inherited by the processes the tests start. Two workers with
# torch's default of a thread per core made each torch step wait for a thread that another worker held.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))  # 0: one process runs every test
if WORKERS:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cores // WORKERS)))


def needs_site(item: pytest.Item) -> bool:
    return "built_site" in getattr(item, "fixturenames", ())


def computes(item: pytest.Item) -> bool:
    """A test that keeps every core busy with torch's threads (marked `compute`, or in COMPUTE_FOLDERS)."""
    return item.get_closest_marker("compute") is not None or any(folder in item.path.parents for folder in COMPUTE_FOLDERS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "compute: trains models with torch's threads on every core it has; in one "
                                       "process, runs after the real site's tests")
    config.addinivalue_line("markers", "busy: starts processes on every core (no torch threads); in one process, "
                                       "runs after the site's tests, beside the background work")
    config.addinivalue_line("markers", "background(start=f): `f(folder, idle=...) -> Background` begins the test's "
                                       "work, in one process beside the site's tests; the test reads it through the "
                                       "`background` fixture")


# the parts of the suite, in the order they run in one process, and in the order xdist's workers get their units
SERIAL_ORDER = ("light", "site", "busy", "background", "compute")
UNIT_ORDER = ("site", "background", "compute", "busy", "light")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The order that lets the suite's long computations overlap the rest.

    In one process (`-n0`), in three parts:

    1. the tests that leave a core idle (toy projects, one process at a time), while the real site's cold build
       (about 115 CPU-s) runs beside them at idle priority;
    2. the tests that read the site, once it is built (mostly one browser process), then those marked `busy`
       (processes on every core, but no torch threads), while the work of the tests marked `background` runs
       beside them, at idle priority too; beside the build, the busy fault-injection test took twice as long and
       delayed the build by as much;
    3. the tests that keep every core busy: first those marked `background`, which wait for their work to end,
       then the others. Nothing runs beside them: a torch step's threads wait for each other, and a build beside
       them, even at idle priority, made the benchmark's smoke run three times slower.

    On xdist's workers (`--dist loadfile`), each module is a unit of work, handed out in this order: first the
    modules that read the site, whose workers build it together (`built_site`: every core on the build, which
    is a longer chain than any other), then the longest computations, the busy test and the light tests last,
    which even out the workers' ends."""
    def part(item: pytest.Item) -> str:
        if needs_site(item):
            return "site"
        if item.get_closest_marker("busy") is not None:
            return "busy"
        if item.get_closest_marker("background") is not None:
            return "background"
        return "compute" if computes(item) else "light"

    order = UNIT_ORDER if WORKERS else SERIAL_ORDER
    items.sort(key=lambda item: order.index(part(item)))  # stable: pytest's order within each part


def start_site_build(session: pytest.Session, out: Path, *, idle: bool) -> Background:
    command, env = fresh_build_command(REPO, out)
    build = Background("the real site's build", command, env, REPO, out / "build.log", SITE_TIMEOUT, idle=idle)
    session.stash[SITE] = build
    return build


def build_once_for_every_worker(session: pytest.Session, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The build of the first xdist worker that needs the site; the others wait for the lock, then read its
    returncode file and log."""
    shared = tmp_path_factory.getbasetemp().parent  # the session's folder, of every worker
    out = shared / "real-site"
    with FileLock(shared / "real-site.lock"):
        if not out.exists():
            out.mkdir()
            build = start_site_build(session, out, idle=False)  # the workers wait for it: every core is its own
            try:
                build.wait()
            finally:
                (out / "returncode").write_text(str(build.proc.poll()), encoding="utf-8")
    # no returncode: the worker that built it died while building (its lock was released with it)
    assert (out / "returncode").is_file(), "the real site's build did not finish: its worker died"
    return out


@pytest.fixture(scope="session", autouse=True)
def background_work(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """In one process, starts the real site's build with the session's first test, at idle priority, when some
    selected test reads the site; stops whatever background work is still running at the end."""
    session = request.session
    if not WORKERS and any(needs_site(item) for item in session.items):
        start_site_build(session, tmp_path_factory.mktemp("real-site"), idle=True)
    try:
        yield
    finally:
        for work in [session.stash.get(SITE, None), *session.stash.get(STARTED, {}).values()]:
            if work is not None:
                work.stop()


def start_background(session: pytest.Session, tmp_path_factory: pytest.TempPathFactory, nodeid: str | None = None,
                     ) -> None:
    """Begin the work of every selected test marked `background` beside the tests that follow, at idle priority
    (once); or, with `nodeid`, that test's work, which it waits for at once."""
    started = session.stash.setdefault(STARTED, {})
    for item in session.items:
        marker = item.get_closest_marker("background")
        if marker is not None and item.nodeid not in started and nodeid in (None, item.nodeid):
            start: Callable[..., Background | None] = marker.kwargs["start"]
            started[item.nodeid] = start(tmp_path_factory.mktemp("background"), idle=nodeid is None)


@pytest.fixture(scope="session")
def built_site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`mkdocs build --strict` of this checkout with an empty cache, once for tests/test_site.py and tests/browser/."""
    session = request.session
    if WORKERS:
        out = build_once_for_every_worker(session, tmp_path_factory)
        returncode = (out / "returncode").read_text(encoding="utf-8")
        output = (out / "build.log").read_text(encoding="utf-8", errors="replace")
    else:
        build = session.stash.get(SITE, None) or start_site_build(session, tmp_path_factory.mktemp("real-site"),
                                                                  idle=False)
        output, returncode, out = build.wait(), str(build.proc.returncode), build.log.parent
        start_background(session, tmp_path_factory)  # the site's tests begin: the cores are free again
    assert returncode == "0", output[-4000:]
    assert "running pytorch_project" in output  # computed during this build, not taken from a cache
    return out / "site"


@pytest.fixture
def background(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Background | None:
    """The test's `background` work, started beside the site's tests (or now, when it was not)."""
    start_background(request.session, tmp_path_factory, request.node.nodeid)
    return request.session.stash[STARTED][request.node.nodeid]


@pytest.fixture
def toy_project(tmp_path: Path) -> Path:
    """A project with the fast runners alpha and beta only."""
    return make_toy_project(tmp_path / "toy", runners=("alpha", "beta"))


@pytest.fixture
def toy_project_with_failures(tmp_path: Path) -> Path:
    """A project whose runners also include one that raises, one that hangs and one that aborts."""
    return make_toy_project(tmp_path / "toy")
