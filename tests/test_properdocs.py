"""The site builds with ProperDocs, the maintained fork of MkDocs 1.x (same plugin API, reads mkdocs.yml),
as it does with MkDocs: on the results the session build computed, so no runner runs again."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from toyproject import REPO


def test_the_site_builds_strictly_with_properdocs(built_site: Path, tmp_path: Path) -> None:
    properdocs = shutil.which("properdocs")
    if properdocs is None:
        pytest.skip("properdocs is not installed (it is in the test extras: pip install -e '.[test]')")
    out = built_site.parent  # tests/toyproject.build_fresh: out/site, out/cache, out/tuning
    env = {k: v for k, v in os.environ.items() if k not in ("LIVING_EXECUTE", "LIVING_DRIFT_BASELINE")}
    # the session build's cache and tuning record: the same keys, so every result is found
    env.update({"LIVING_CACHE_DIR": str(out / "cache"), "LIVING_DEVICE": "cpu", "LIVING_TUNING_DIR": str(out / "tuning"),
                "NO_MKDOCS_2_WARNING": "1"})
    site = tmp_path / "site"
    proc = subprocess.run([properdocs, "build", "--strict", "-f", "mkdocs.yml", "-d", str(site)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "running " not in proc.stderr  # every result came from the session build's cache
    pages = {p.relative_to(site).as_posix() for p in site.rglob("*.html")}
    assert pages == {p.relative_to(built_site).as_posix() for p in built_site.rglob("*.html")}
    home = (site / "index.html").read_text(encoding="utf-8")
    assert '<html lang="zh"' in home and "md-header" in home  # Material for MkDocs, in Chinese
    assert "文章：0.022 · 本机：0.1192 · ✗ 不符" in (site / "draft-000" / "math" / "index.html").read_text(encoding="utf-8")
