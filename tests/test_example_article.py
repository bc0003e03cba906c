"""The example article in examples/monte-carlo-pi: proof that reportgen builds articles other than
this repository's own.

The example is built once per module with `mkdocs build --strict` in its own folder, from the
installed package, with an empty cache, so both of its runners execute during the build.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from toyproject import build_fresh

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
EXAMPLE = EXAMPLES / "monte-carlo-pi"
CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")
ARTICLE = re.compile(r"<article[^>]*>(.*?)</article>", re.S)
# the pages reportgen generates, and the example's two hand-written pages (which hold generated badges)
GENERATED = ["results", "results/sample", "results/estimate", "results/report", "results/drift", "errata",
             "notebooks/sample", "notebooks/estimate"]
HAND_WRITTEN = ["", "convergence"]


@dataclass
class Build:
    site: Path
    stderr: str


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    out = tmp_path_factory.mktemp("example-site")
    proc = build_fresh(EXAMPLE, out, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return Build(out / "site", proc.stderr)


def page(build: Build, uri: str) -> str:
    return (build.site / uri / "index.html").read_text(encoding="utf-8")


def main_content(html: str) -> str:
    match = ARTICLE.search(html)
    assert match is not None, "no <article> element"
    return match.group(1)


def badge(html: str, verdict: str) -> str:
    match = re.search(rf'<span class="living-claim living-{verdict}"[^>]*>(.*?)</span>', html, re.S)
    assert match is not None, f"no {verdict} claim badge"
    return match.group(1)


def test_both_runners_ran_in_the_build_upstream_first(build: Build) -> None:
    assert "running sample" in build.stderr
    assert "running estimate" in build.stderr
    assert build.stderr.index("running sample") < build.stderr.index("running estimate")
    manifest = json.loads((build.site / "results" / "manifest.json").read_text(encoding="utf-8"))
    assert {r["name"]: r["status"] for r in manifest["runners"]} == {"sample": "ok", "estimate": "ok"}


def test_downstream_page_shows_the_number_it_read_from_upstream(build: Build) -> None:
    manifest = json.loads((build.site / "results" / "manifest.json").read_text(encoding="utf-8"))
    metrics = {r["name"]: {k: v["value"] for k, v in r["metrics"].items()} for r in manifest["runners"]}
    n = metrics["sample"]["n_points"]
    assert metrics["estimate"]["n_points"] == n
    estimate = main_content(page(build, "results/estimate"))
    assert re.search(rf"<td>n&#95;points</td>\s*<td>{n}</td>", estimate)
    home = main_content(page(build, ""))
    assert re.search(rf'read the <span class="living-value"[^>]*>{n:,}</span> points that <code>sample</code>', home)
    pi = metrics["estimate"]["pi_estimate"]
    assert f">{pi:.5f}</span>" in home
    assert abs(pi - 3.14159) < 0.05


def test_claims_agree_and_differ_with_english_verdicts(build: Build) -> None:
    agrees = badge(main_content(page(build, "")), "agrees")
    differs = badge(main_content(page(build, "convergence")), "differs")
    # the words are reportgen's to choose; they must be English: the icon, then a Latin word
    assert re.search(r"✓\s*[A-Za-z]", agrees), agrees
    assert re.search(r"✗\s*[A-Za-z]", differs), differs
    assert not CJK.search(agrees + differs), (agrees, differs)
    errata = main_content(page(build, "errata"))
    assert 'id="claim-estimate-pi"' in errata
    assert 'id="claim-estimate-tenfold"' in errata


def test_figures_are_published_and_referenced(build: Build) -> None:
    for runner, name, pages in (("sample", "points", ["", "results/sample"]),
                                ("estimate", "convergence", ["convergence", "results/estimate"])):
        png = build.site / "results" / runner / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        for uri in pages:
            sources = re.findall(r'<img [^>]*src="([^"]+)"', main_content(page(build, uri)))
            resolved = [(build.site / uri / src).resolve() for src in sources]
            assert png.resolve() in resolved, (uri, sources)


def test_an_artifact_is_kept_for_the_downstream_runner_but_not_published(build: Build) -> None:
    assert not list(build.site.rglob("*.npy"))  # sample's points: ctx.artifact, read by estimate only
    cached = list((build.site.parent / "cache" / "sample").glob("*/artifacts/points.npy"))
    assert len(cached) == 1


def test_each_runner_has_a_notebook_page(build: Build) -> None:
    for runner in ("sample", "estimate"):
        notebook = main_content(page(build, f"notebooks/{runner}"))
        assert "run_example" in notebook
        assert "data:image/png;base64," in notebook  # the figure of the build's own run
        download = json.loads((build.site / "notebooks" / runner / f"{runner}.ipynb").read_text(encoding="utf-8"))
        assert download["metadata"]["living_article"]["runner"] == runner
        assert f'href="../../notebooks/{runner}/"' in page(build, f"results/{runner}")


@pytest.mark.parametrize("uri", GENERATED + HAND_WRITTEN)
def test_pages_have_no_cjk_character(build: Build, uri: str) -> None:
    content = main_content(page(build, uri))
    found = sorted(set(CJK.findall(content)))
    assert not found, f"{uri or 'index'}: {''.join(found)[:80]}"


def test_navigation_and_page_frame_have_no_cjk_character(build: Build) -> None:
    html = page(build, "")
    frame = html.replace(main_content(html), "")  # the header, the navigation (笔记本 section included), the footer
    found = sorted(set(CJK.findall(frame)))
    assert not found, "".join(found)


def _python_files(folder: Path) -> list[Path]:
    skip = {".living", "site"}
    return [p for p in sorted(folder.rglob("*.py")) if not skip & set(p.relative_to(folder).parts)]


def test_example_uses_nothing_of_the_other_article() -> None:
    files = _python_files(EXAMPLES)
    assert files
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            assert not [n for n in names if n == "runners" or n.startswith("runners.")], path
    # and nothing copied: no file of the example is byte for byte one of runners/ or reportgen/
    theirs = {hashlib.sha256(p.read_bytes()).hexdigest() for d in ("runners", "reportgen") for p in (REPO / d).rglob("*.py")}
    assert not [p for p in files if hashlib.sha256(p.read_bytes()).hexdigest() in theirs]
    assert "package: pi_runners" in (EXAMPLE / "mkdocs.yml").read_text(encoding="utf-8")
