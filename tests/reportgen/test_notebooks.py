"""reportgen.notebooks: the executed notebook built from a record, its place in the site and the nav."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nbformat
import pytest
from toyproject import PNG

from reportgen.api import Result
from reportgen.fingerprint import Fingerprint
from reportgen.mkdocs_plugin import _file, add_notebooks_to_nav
from reportgen.notebooks import build_notebook, notebook_dir, notebook_text, write_if_changed
from reportgen.pipeline import Outcome
from reportgen.render import RunnerView
from reportgen.site import assemble
from reportgen.spec import RunnerSpec
from reportgen.store import Entry


def make_record() -> dict[str, Any]:
    r = Result()
    r.metric("square", 4.0)
    r.metric("label", "<i>x</i>")
    r.check("square", source="toy §1", statement="x² = 4", article="4", computed=4.0)
    r.table("powers", ["n", "x^n"], [[0, 1.0], [1, "<b>"]], caption="幂", title="x 的幂")
    r.figure("plot", "plot.png", caption="一张图")
    r.text("log", "line <script>alert(1)</script>")
    return {
        "runner": "toy",
        "status": "ok",
        "result": r.to_json(),
        "provenance": {
            "device": "cpu",
            "device_name": "Test CPU",
            "finished_at": "2026-01-01T00:00:00Z",
            "git_commit": "abc123",
        },
        "inputs": {"code": {"config": {"x": 2.0, "name": "a"}}},
        "key": "k1",
        "stdout": "hello\n",
        "stderr": "",
    }


def text(value: str | list[str]) -> str:
    return value if isinstance(value, str) else "".join(value)


def make_view(record: dict[str, Any] | None, origin: str = "cache") -> RunnerView:
    return RunnerView("toy", "玩具 <例子>", "toy §1", record, origin, ["runners/toy.py changed"])


@pytest.fixture
def entry_dir(tmp_path: Path) -> Path:
    (tmp_path / "plot.png").write_bytes(PNG)
    return tmp_path


def test_notebook_structure(entry_dir: Path) -> None:
    nb = build_notebook(make_view(make_record()), entry_dir)
    assert nb is not None
    nbformat.validate(nbformat.from_dict(nb))
    cells = nb["cells"]
    assert [c["id"] for c in cells] == [f"toy-{i}" for i in range(len(cells))]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert [text(c["source"]) for c in code] == [
        "from reportgen.jupyter import run_example, show_claims, show_figure\n"
        "from reportgen.jupyter import show_metrics, show_table, show_text\n"
        "\n"
        "result = run_example('toy', {'name': 'a', 'x': 2.0})",
        "show_metrics(result)",
        "show_claims(result)",
        "show_table(result, 'powers')",
        "show_figure(result, 'plot')",
        "show_text(result, 'log')",
    ]
    assert [c["execution_count"] for c in code] == [1, 2, 3, 4, 5, 6]
    headings = [text(c["source"]) for c in cells[1:] if c["cell_type"] == "markdown"]
    assert headings == [
        "## 运行（run）",
        "## 指标（metrics）",
        "## 文章中的数值与核对（claims）",
        "## x 的幂（table powers）",  # the reader's title, and the key as the heading's ASCII anchor
        "## 图：plot（figure）\n\n一张图",
        "## 输出：log（text）",
    ]
    assert code[0]["outputs"] == [{"name": "stdout", "output_type": "stream", "text": ["hello\n"]}]
    kinds = [[(o["output_type"], sorted(o["data"])) for o in c["outputs"]] for c in code[1:]]
    assert kinds == [
        [("display_data", ["text/html", "text/plain"])],
        [("display_data", ["text/html", "text/plain"])],
        [("display_data", ["text/html", "text/plain"])],
        [("display_data", ["image/png", "text/plain"])],
        [("display_data", ["text/plain"])],
    ]
    assert nb["metadata"]["living_article"] == {"key": "k1", "runner": "toy"}


def test_intro_states_where_the_outputs_come_from(entry_dir: Path) -> None:
    intro = text(build_notebook(make_view(make_record()), entry_dir)["cells"][0]["source"])
    assert intro.startswith("# 玩具 &lt;例子&gt; · Jupyter 笔记本\n\n文章出处：toy §1 · 运行器：`toy`\n")
    assert "2026年1月1日 00:00 UTC 在 Test CPU（cpu） 上运行，代码提交 `abc123`" in intro
    assert "没有另行计算" in intro and "在项目根目录" in intro
    assert "[toy.ipynb](toy.ipynb)" in intro
    assert "过期" not in intro
    stale = text(build_notebook(make_view(make_record(), origin="stale"), entry_dir)["cells"][0]["source"])
    assert "过期结果" in stale and "runners/toy.py changed" in stale


def test_outputs_are_the_recorded_values_escaped(entry_dir: Path) -> None:
    code = [
        c for c in build_notebook(make_view(make_record()), entry_dir)["cells"] if c["cell_type"] == "code"
    ]
    metrics, claims, table, figure, log = (
        {k: text(v) for k, v in c["outputs"][0]["data"].items()} for c in code[1:]
    )
    assert metrics["text/html"] == (
        "<table><thead><tr><th>名称</th><th>值</th></tr></thead><tbody>"
        "<tr><td>label</td><td>&lt;i&gt;x&lt;/i&gt;</td></tr><tr><td>square</td><td>4</td></tr></tbody></table>"
    )
    assert metrics["text/plain"] == "名称 | 值\nlabel | <i>x</i>\nsquare | 4"
    assert "<td>4</td><td>4.0</td><td>✓ 相符</td>" in claims["text/html"]
    assert table["text/html"].startswith("<p>幂</p><table>")
    assert "<td>&lt;b&gt;</td>" in table["text/html"] and "<b>" not in table["text/html"]
    assert base64.b64decode(figure["image/png"]) == PNG
    assert figure["text/plain"] == "一张图"
    assert log == {"text/plain": "line <script>alert(1)</script>"}


def test_device_argument_only_for_training_runners(entry_dir: Path) -> None:
    record = make_record()
    record["provenance"]["device"] = "cuda"
    source = text(build_notebook(make_view(record), entry_dir, uses_device=True)["cells"][2]["source"])
    assert source.endswith("result = run_example('toy', {'name': 'a', 'x': 2.0}, device='cuda')")


def test_no_notebook_without_a_successful_record(entry_dir: Path) -> None:
    assert build_notebook(make_view(None), entry_dir) is None
    failed = {"runner": "toy", "status": "error", "error": {"type": "RuntimeError", "message": "x"}}
    assert build_notebook(make_view(failed), entry_dir) is None


def test_notebook_text_is_deterministic(entry_dir: Path) -> None:
    first = notebook_text(build_notebook(make_view(make_record()), entry_dir))
    assert first == notebook_text(build_notebook(make_view(make_record()), entry_dir))
    assert first.endswith("}\n") and json.loads(first)["nbformat"] == 4
    assert nbformat.writes(nbformat.reads(first, as_version=4)) + "\n" == first  # nbformat's own layout


def test_write_if_changed(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.ipynb"
    assert write_if_changed(target, "x")
    assert not write_if_changed(target, "x")
    assert write_if_changed(target, "y") and target.read_text() == "y"
    assert [p.name for p in target.parent.iterdir()] == ["a.ipynb"]


def outcome(name: str, record: dict[str, Any], directory: Path) -> Outcome:
    spec = RunnerSpec(name, f"runners.{name}", name.upper(), "toy §1")
    return Outcome(spec, Fingerprint("c", "e", {}), Entry({**record, "runner": name}, directory), "cache")


def test_assemble_writes_notebooks_and_links_them(entry_dir: Path, tmp_path: Path) -> None:
    record = make_record()
    record["files"] = {"plot.png": "digest"}
    failed = {"status": "error", "error": {"type": "RuntimeError", "message": "x"}, "provenance": {}}
    outcomes = {"toy": outcome("toy", record, entry_dir), "bad": outcome("bad", failed, entry_dir)}
    out = notebook_dir(tmp_path / "cache")
    assert out == tmp_path / "notebooks"
    content = assemble(outcomes, {}, out)
    path = content.files["notebooks/toy.ipynb"]
    assert path == out / "toy.ipynb"
    assert content.pages["notebooks/toy/toy.ipynb"] == path.read_text(encoding="utf-8")
    assert "notebooks/bad.ipynb" not in content.files and not (out / "bad.ipynb").exists()
    assert (
        "Jupyter 笔记本：[查看本次运行的笔记本（含输出）](../notebooks/toy.ipynb) · "
        "[下载 toy.ipynb](../notebooks/toy/toy.ipynb)"
    ) in content.pages["results/toy.md"]
    assert "Jupyter 笔记本" not in content.pages["results/bad.md"]
    mtime = path.stat().st_mtime_ns
    os.utime(path, ns=(mtime - 10**9, mtime - 10**9))
    assemble(outcomes, {}, out)  # unchanged: not rewritten
    assert path.stat().st_mtime_ns == mtime - 10**9
    plain = assemble(outcomes, {})  # without a notebook directory (reportgen render): no notebooks
    assert not any(uri.startswith("notebooks/") for uri in [*plain.files, *plain.pages])
    assert "Jupyter 笔记本" not in plain.pages["results/toy.md"]


def test_notebooks_section_in_the_nav() -> None:
    nav: list[Any] = [{"首页": "index.md"}, {"运行结果": ["results/index.md"]}, {"勘误表": "errata.md"}]
    pages = [("A", "notebooks/a.ipynb"), ("B", "notebooks/b.ipynb")]
    add_notebooks_to_nav(nav, pages, "笔记本")
    add_notebooks_to_nav(nav, pages, "笔记本")  # idempotent (mkdocs serve rebuilds)
    assert nav[2] == {"笔记本": [{"A": "notebooks/a.ipynb"}, {"B": "notebooks/b.ipynb"}]}
    assert nav[3] == {"勘误表": "errata.md"}
    bare: list[Any] = ["index.md"]
    add_notebooks_to_nav(bare, [], "笔记本")
    assert bare == ["index.md"]
    add_notebooks_to_nav(bare, pages[:1], "笔记本")
    assert bare == ["index.md", {"笔记本": [{"A": "notebooks/a.ipynb"}]}]


def test_notebook_is_added_as_a_real_source_file(tmp_path: Path) -> None:
    # mkdocs-jupyter wraps files and reads src_dir: File.generated(abs_src_path=...) would lose the path
    config = SimpleNamespace(site_dir=str(tmp_path / "site"), use_directory_urls=True)
    path = tmp_path / "living" / "notebooks" / "toy.ipynb"
    file = _file(config, "notebooks/toy.ipynb", path)
    assert file.src_dir == (tmp_path / "living").as_posix() + "/"
    assert Path(file.abs_src_path) == path


TOY_JUPYTER = """
  - mkdocs-jupyter:
      include: ["notebooks/*.ipynb"]
      include_source: true
      cache: false
"""


def test_toy_site_renders_notebooks_with_mkdocs_jupyter(toy_project_with_failures: Path) -> None:
    root = toy_project_with_failures  # alpha and beta succeed; broken, hang and crash fail
    yml = root / "mkdocs.yml"
    yml.write_text(
        yml.read_text().replace("  - living-article\n", "  - living-article\n" + TOY_JUPYTER.lstrip("\n"))
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "-d", str(root / "site")],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    site = root / "site"
    alpha = (site / "notebooks" / "alpha" / "index.html").read_text(encoding="utf-8")
    assert "run_example" in alpha and "alpha says hello" in alpha  # the run's stdout
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in alpha and "<script>alert(1)" not in alpha
    assert 'href="alpha.ipynb"' in alpha  # download link, beside the page
    # the TOC and the skip link lead to headings (Chinese-only headings would get ids that differ)
    anchors = set(re.findall(r'href="#([^"]+)"', alpha))
    assert {"run", "metrics", "claims", "powerstable"} <= anchors <= set(re.findall(r'\bid="([^"]+)"', alpha))
    downloaded = json.loads((site / "notebooks" / "alpha" / "alpha.ipynb").read_text(encoding="utf-8"))
    assert downloaded == json.loads(
        (root / ".living" / "notebooks" / "alpha.ipynb").read_text(encoding="utf-8")
    )
    assert not any((site / "notebooks" / name).exists() for name in ("broken", "hang", "crash"))
    runner = (site / "results" / "alpha" / "index.html").read_text(encoding="utf-8")
    assert 'href="../../notebooks/alpha/"' in runner and 'href="../../notebooks/alpha/alpha.ipynb"' in runner
    home = (site / "index.html").read_text(encoding="utf-8")
    assert "笔记本" in home and 'href="notebooks/beta/"' in home and 'href="notebooks/broken/"' not in home


def test_mkdocs_jupyter_must_come_after_living_article(caplog: pytest.LogCaptureFixture) -> None:
    from reportgen.mkdocs_plugin import _renders_notebooks

    assert _renders_notebooks(
        SimpleNamespace(plugins={"search": 1, "living-article": 2, "mkdocs-jupyter": 3})
    )
    assert not _renders_notebooks(SimpleNamespace(plugins={"living-article": 1}))
    assert not _renders_notebooks(SimpleNamespace(plugins={"mkdocs-jupyter": 1, "living-article": 2}))
    assert "list mkdocs-jupyter after living-article" in caplog.text


def test_run_cell_runs_the_upstreams_first_as_the_build_ran_them(entry_dir: Path, tmp_path: Path) -> None:
    upstream = make_record()
    upstream["inputs"] = {"code": {"config": {"epochs": 1}}}
    upstream["provenance"]["device"] = "cuda"
    trainer = RunnerSpec("cnn", "runners.cnn", "CNN", "toy §1", uses_device=True)
    reader = RunnerSpec("cnn_onnx", "runners.cnn_onnx", "ONNX", "toy §2", needs=("cnn",))
    outcomes = {
        "cnn": Outcome(trainer, Fingerprint("c", "e", {}), Entry({**upstream, "runner": "cnn"}, entry_dir), "cache"),
        "cnn_onnx": Outcome(reader, Fingerprint("c", "e", {}), Entry({**make_record(), "runner": "cnn_onnx"}, entry_dir), "ran"),
    }
    content = assemble(outcomes, {}, notebook_dir(tmp_path / "cache"))
    notebook = json.loads(content.pages["notebooks/cnn_onnx/cnn_onnx.ipynb"])
    assert text(notebook["cells"][2]["source"]).endswith(
        "\n\ncnn = run_example('cnn', {'epochs': 1}, device='cuda')\n"
        "result = run_example('cnn_onnx', {'name': 'a', 'x': 2.0}, upstreams={'cnn': cnn})"
    )
    assert content.views["cnn_onnx"].needs == ("cnn",)
    assert "所依赖的运行器：[cnn](cnn.md)" in content.pages["results/cnn_onnx.md"]


def test_english_notebook(entry_dir: Path) -> None:
    view = RunnerView("toy", "Toy", "toy §1", make_record(), "stale", ["runners/toy.py changed"], language="en")
    cells = build_notebook(view, entry_dir)["cells"]
    intro = text(cells[0]["source"])
    assert intro.startswith("# Toy · Jupyter notebook\n\nIn the article: toy §1 · runner: `toy`\n")
    assert "on Test CPU (cpu), 1 January 2026, 00:00 UTC, at commit `abc123`" in intro
    assert intro.endswith("Note: this is a stale result (the code changed; not run again in this build). "
                          "Why: runners/toy.py changed")
    headings = [text(c["source"]) for c in cells[1:] if c["cell_type"] == "markdown"]
    assert headings == ["## Run", "## Metrics", "## Claims: the article's values, checked", "## x 的幂 (table powers)",
                        "## Figure: plot\n\n一张图", "## Output: log"]
    metrics = {k: text(v) for k, v in cells[4]["outputs"][0]["data"].items()}
    assert metrics["text/plain"] == "Name | Value\nlabel | <i>x</i>\nsquare | 4"
