"""Shared fixtures: the real site, built once per session, and a tiny but complete living-article
project with toy runners.

The toy project is a small article of its own, written against the installed `reportgen`, with
toy runners that start fast (no torch), fail, hang or crash.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from toyproject import REPO, build_fresh, make_toy_project


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`mkdocs build --strict` of this checkout with an empty cache, once for tests/test_site.py and tests/browser/."""
    out = tmp_path_factory.mktemp("real-site")
    proc = build_fresh(REPO, out, timeout=900)
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
