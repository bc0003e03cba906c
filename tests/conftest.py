"""Shared fixtures: the real site, built once per session, and a tiny but complete living-article
project with toy runners.

The toy project is a small article of its own, written against the installed `reportgen`, with
toy runners that start fast (no torch), fail, hang or crash.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from toyproject import REPO, make_toy_project


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`mkdocs build --strict` of this checkout with an empty cache, once for tests/test_site.py and tests/browser/."""
    out = tmp_path_factory.mktemp("real-site")
    env = {
        **os.environ,
        "LIVING_CACHE_DIR": str(out / "cache"),  # empty cache: every runner executes in this build
        "LIVING_EXECUTE": "stale",
        "LIVING_DEVICE": "cpu",
        "NO_MKDOCS_2_WARNING": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out / "site")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "running pytorch_project" in proc.stderr  # computed during this build, not taken from a cache
    return out / "site"


@pytest.fixture
def toy_project(tmp_path: Path) -> Path:
    """A project with the fast runners alpha and beta only."""
    return make_toy_project(tmp_path / "toy", runners=("alpha", "beta"))


@pytest.fixture
def toy_project_with_failures(tmp_path: Path) -> Path:
    """A project whose runners also include one that raises, one that hangs and one that aborts."""
    return make_toy_project(tmp_path / "toy")
