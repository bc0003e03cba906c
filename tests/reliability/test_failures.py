"""Every way a runner can fail becomes an error page with the reason, the rest of the site builds,
and `--strict` turns the failures into a non-zero exit with one line each. Nothing a runner prints
or produces becomes markup on the site."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from toys import EVIL, FAILING, HOSTILE, isolated_env, make_fault_project, mkdocs_build, network_guard

from reportgen.cli import main as reportgen

REASONS = {
    "broken": "RuntimeError: the example is broken on purpose",
    "hang": "Timeout: no result within the 1.5 s timeout",
    "crash": "Crashed: the runner process killed by signal SIGABRT without a result",
    "exit3": "Crashed: the runner process exited with status 3 without a result",
    "segv": "Crashed: the runner process killed by signal SIGSEGV without a result",
    "memhog": "MemoryError: the runner exceeded its 256 MB memory limit",
    "oomkill": "killed by signal SIGKILL without a result (it may have exceeded its 256 MB memory limit)",
    "badvalue": "ConfigError: config badvalue.x='abc': expected a float (a number; default 2.0)",
    "badkey": "ConfigError: unknown config key(s) badkey.zzz; valid keys: seed, x",
    "nodata": "MnistError: MNIST test files not found: t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz",
    "baddata": "MnistError: corrupt-data/t10k-images-idx3-ubyte.gz: MD5 mismatch",
    "evilfail": "RuntimeError: " + EVIL,
    "evilfiles": "BadResult: leak.txt is a link or special file",
}
PAGES = ("index.html", "results/evil/index.html", "results/evilfail/index.html", "errata/index.html", "results/index.html")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The fault project built once, with every network connection refused and recorded."""
    base = tmp_path_factory.mktemp("faults")
    root = make_fault_project(base / "toy")
    network_guard(base / "guard")
    return root, mkdocs_build(root, env=isolated_env(root, guard=base / "guard"))


def test_the_build_made_no_connection(built) -> None:
    root, proc = built
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = root.parent / "guard" / "connections.log"
    assert not log.exists(), log.read_text(encoding="utf-8")


def text_of(root: Path, uri: str) -> str:
    """A built page as the reader sees its text: entities decoded."""
    return html.unescape((root / "site" / uri).read_text(encoding="utf-8"))


def test_every_failure_is_an_error_page_with_its_reason(built) -> None:
    root, proc = built
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert set(REASONS) == set(FAILING)
    for name, reason in REASONS.items():
        page = text_of(root, f"results/{name}/index.html")
        assert "运行失败" in page, name
        assert reason.split(": ", 1)[-1] in page, name


def test_config_errors_are_a_message_not_a_traceback(built) -> None:
    root, _ = built
    for name in ("badvalue", "badkey"):
        page = text_of(root, f"results/{name}/index.html")
        assert REASONS[name] in page  # the error section shows type and message
        assert "Traceback" not in page


def test_every_other_page_builds(built) -> None:
    root, _ = built
    for name in ("alpha", "beta", "evil"):
        assert "运行结果：" in text_of(root, f"results/{name}/index.html"), name
    assert "4.00" in text_of(root, "index.html")
    overview = text_of(root, "results/index.html")
    for name in FAILING:
        assert f"runners.{name}" not in overview  # never a traceback dump in the overview


def test_strict_builds_fail_with_one_line_per_failure(built) -> None:
    root, _ = built
    strict = mkdocs_build(root, "--strict", site="site-strict")  # results are cached: this only renders
    # `reportgen build` always builds into <project>/site: give it a copy (cache included) to build
    copy = root.parent / "copy"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("site*"))
    cli = subprocess.run(
        [sys.executable, "-m", "reportgen", "--project", str(copy), "build", "--strict"],
        cwd=copy, capture_output=True, text=True, env=isolated_env(copy), timeout=300,
    )
    assert "running " not in cli.stderr  # the copied cache was reused
    for proc in (strict, cli):
        assert proc.returncode != 0
        for name, reason in REASONS.items():
            lines = [line for line in proc.stderr.splitlines() if f"runner {name} failed: " in line]
            assert len(lines) == 1, (name, lines)
            assert lines[0].endswith(reason) or reason in lines[0], (name, lines[0])
        # one warning per failure and nothing else (mkdocs prints its verdict on stdout)
        assert f"Aborted with {len(REASONS)} warnings in strict mode" in proc.stdout + proc.stderr


def test_bad_input_on_the_command_line(toy_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = ["--project", str(toy_project)]
    assert reportgen([*project, "--set", "alpha.x=abc", "run", "alpha"]) == 1
    err = capsys.readouterr().err
    assert "runner alpha failed: ConfigError: config alpha.x='abc': expected a float (a number; default 2.0)" in err
    assert "Traceback" not in err
    assert reportgen([*project, "--set", "alpha.zzz=1", "run", "alpha"]) == 1
    assert "unknown config key(s) alpha.zzz; valid keys: seed, x" in capsys.readouterr().err
    assert reportgen([*project, "--set", "alpah.x=1", "run"]) == 2
    assert capsys.readouterr().err.strip() == "reportgen: error: config for unknown runner(s): alpah; known: alpha, beta"
    assert reportgen([*project, "run", "alpah"]) == 2
    assert capsys.readouterr().err.strip() == "reportgen: error: unknown runner(s): alpah; known: alpha, beta"
    assert reportgen([*project, "--set", "alpha.x=3", "run", "alpha"]) == 0  # a good value still works


def test_config_for_an_unknown_runner_stops_the_build_with_one_line(toy_project: Path) -> None:
    yml = toy_project / "mkdocs.yml"
    yml.write_text(yml.read_text().replace("  - living-article\n", "  - living-article:\n      config:\n        alpah: {x: 1}\n"))
    proc = mkdocs_build(toy_project)
    assert proc.returncode != 0
    assert "living-article: config for unknown runner(s): alpah; known: alpha, beta" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unpublishable_files_fail_the_runner_and_are_not_published(built) -> None:
    root, _ = built
    page = text_of(root, "results/evilfiles/index.html")
    for problem in ("pwn.md: .md files are not published", "x.svg: .svg", "page.html: .html", "leak.txt is a link",
                    "figure 'up' names '../alpha/plot.png', which is not a file the runner wrote"):
        assert problem in page
    published = {p.name for p in (root / "site" / "results" / "evilfiles").iterdir()}
    assert published == {"index.html", "ok.png"}


def test_runner_output_never_becomes_markup(built) -> None:
    root, _ = built
    for uri in PAGES:
        raw = (root / "site" / uri).read_text(encoding="utf-8")
        for markup in ("<script>alert", "<img src=x", "<strong>bold", '<a href="http://x"'):
            assert markup not in raw, (uri, markup)
        assert 'class="arithmatex"' not in raw, uri  # $x$ stayed text, not a formula
    home = text_of(root, "index.html")
    # only the page's own placeholder was substituted; the runner's stayed text
    assert home.count("由运行器 alpha 计算") == 1
    for uri in PAGES[:3]:
        visible = text_of(root, uri)
        for piece in HOSTILE:
            assert piece in visible, (uri, piece)  # escaped, so the reader still sees it


def test_mermaid_labels_cannot_add_statements(built) -> None:
    raw = (built[0] / "site" / "results" / "evil" / "index.html").read_text(encoding="utf-8")
    blocks = re.findall(r'<pre class="mermaid"><code>(.*?)</code></pre>', raw, re.S)
    assert len(blocks) == 1
    lines = html.unescape(blocks[0]).splitlines()
    assert lines[0] == "graph TD"
    for line in lines[1:]:  # only node and edge statements, every label one quoted string
        assert re.fullmatch(r'    n_\w+\["[^"]*"\]|    n_\w+ --> n_\w+', line), line
    assert "#lt;script#gt;alert(1)#lt;/script#gt;" in blocks[0] and "#quot;]" in blocks[0]
