"""The real site: `mkdocs build --strict` from this checkout, with every result computed during the build."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from reportgen.inline import references
from reportgen.pipeline import load_registry
from reportgen.settings import load_settings

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(built_site: Path) -> Path:
    return built_site  # tests/conftest.py: built once per session, shared with tests/browser/


def html(site: Path, uri: str) -> str:
    return (site / uri / "index.html").read_text(encoding="utf-8")


def test_every_runner_has_a_successful_page(site: Path) -> None:
    for name in load_registry(load_settings(REPO, environ={})):
        page = html(site, f"results/{name}")
        assert "运行结果：" in page, name
        assert "运行失败" not in page, name


def test_article_pages_show_computed_claims(site: Path) -> None:
    math = html(site, "draft-000/math")
    assert "文章：0.022 · 本机：0.1192 · ✗ 不符" in math
    assert "文章：-0.7616 · 本机：-0.96403 · ✗ 不符" in math
    assert 'class="arithmatex"' in math  # formulas go to MathJax
    project = html(site, "draft-001/project")
    assert "ValueError" in project  # the article's script, run as printed


def test_mermaid_diagram_is_kept_for_the_browser(site: Path) -> None:
    concepts = html(site, "draft-001/concepts")
    assert '<pre class="mermaid"><code>graph TD' in concepts
    assert "A[数据层] --&gt; B[模型层]" in concepts
    # Mermaid and MathJax are served by the site itself, so diagrams and formulas render offline, and each only
    # on the pages that use it (overrides/main.html)
    mermaid, mathjax = (f'src="../../javascripts/vendor/{lib}"' for lib in ("mermaid/mermaid.min.js",
                                                                              "mathjax/tex-mml-chtml.js"))
    assert mermaid in concepts and mathjax not in concepts  # a diagram, no formula
    math = html(site, "draft-000/math")
    assert mathjax in math and 'src="../../javascripts/mathjax.js"' in math and mermaid not in math
    faq = html(site, "draft-001/faq")
    assert "<script" in faq and mermaid not in faq and mathjax not in faq
    assert (site / "javascripts/vendor/mathjax/output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff").is_file()


def test_material_theme_in_chinese_with_dark_mode_toggle(site: Path) -> None:
    home = html(site, "")
    assert '<html lang="zh"' in home
    assert 'data-md-color-scheme="slate"' in home
    assert "切换到深色模式" in home
    assert "md-clipboard" in home or "content.code.copy" in home


def test_errata_lists_every_claim(site: Path) -> None:
    errata = html(site, "errata")
    anchors = re.findall(r'id="claim-([a-z0-9-]+)"', errata)
    assert len(anchors) == len(set(anchors)) >= 20
    assert "claim-activations-sigmoid" in {f"claim-{a}" for a in anchors}
    assert "史实与引用" in errata and "arxiv.org/abs/1512.03385" in errata


def search_tokens(site: Path) -> dict[str, set[str]]:
    index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    separator = re.compile(index["config"]["separator"])
    tokens: dict[str, set[str]] = {}
    for doc in index["docs"]:
        page = doc["location"].split("#")[0]
        words = {w for w in separator.split(doc["title"] + " " + doc["text"]) if w}
        tokens.setdefault(page, set()).update(words)
    return tokens


def test_chinese_search_finds_backpropagation(site: Path) -> None:
    tokens = search_tokens(site)
    pages = {page for page, words in tokens.items() if "反向传播" in words}
    assert "draft-001/math/" in pages
    assert {page for page, words in tokens.items() if "激活函数" in words} >= {"draft-000/math/"}


def test_every_placeholder_in_docs_resolves(site: Path) -> None:
    # --strict already fails on an unknown reference; this checks the pages actually use runners
    kinds = [kind for md in (REPO / "docs").rglob("*.md") for kind, _ in references(md.read_text(encoding="utf-8"))]
    assert kinds.count("claim") >= 20 and kinds.count("fact") >= 15


def test_each_example_is_an_executed_notebook(site: Path) -> None:
    notebook = html(site, "notebooks/activations")
    assert "run_example" in notebook and "0.119203" in notebook  # sigmoid(-2) from this build's run
    runner = html(site, "results/activations")
    assert 'href="../../notebooks/activations/"' in runner
    assert 'href="../../notebooks/activations/activations.ipynb"' in runner
    downloaded = json.loads((site / "notebooks/activations/activations.ipynb").read_text(encoding="utf-8"))
    assert downloaded["metadata"]["living_article"]["runner"] == "activations"
    assert "笔记本" in html(site, "") and 'href="notebooks/cnn/"' in html(site, "")
