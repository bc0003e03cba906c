"""Toy projects for the reliability tests: runners that fail in every way we know, and one whose
every output is hostile markup. Built on tests/conftest.py's make_toy_project (same child
protocol, same fast toy runners)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from toyproject import PNG_HEX, REPO, TOY_RUNNERS, make_toy_project

# Everything a page could be tricked into treating as markup, placeholder, formula or diagram syntax.
HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "**bold** [link](http://x)",
    "{{ value: alpha.square }}",
    "{% raw %}",
    "$x$",
    "A --> B",
    '"]',
    "end",
    "click A call alert()",
]
EVIL = " ".join(HOSTILE)
EVIL_LINES = "\n".join(HOSTILE)

FAULT_RUNNERS = {
    "exit3.py": """
        import sys
        from dataclasses import dataclass

        @dataclass(frozen=True)
        class Config:
            pass

        def run(config, ctx):
            print("leaving early")
            sys.exit(3)  # SystemExit is not an Exception: no result.json is written
    """,
    "segv.py": """
        import ctypes
        from dataclasses import dataclass

        @dataclass(frozen=True)
        class Config:
            pass

        def run(config, ctx):
            ctypes.string_at(0)  # reads address 0: a real SIGSEGV
    """,
    "memhog.py": """
        from dataclasses import dataclass

        @dataclass(frozen=True)
        class Config:
            megabytes: int = 2048

        def run(config, ctx):
            hog = bytearray(config.megabytes << 20)
            return hog
    """,
    "oomkill.py": """
        import os
        import signal
        from dataclasses import dataclass

        @dataclass(frozen=True)
        class Config:
            pass

        def run(config, ctx):
            os.kill(os.getpid(), signal.SIGKILL)  # what the kernel's OOM killer does
    """,
    "nodata.py": """
        from dataclasses import dataclass
        from runners.mnist.loader import load_mnist

        @dataclass(frozen=True)
        class Config:
            data_dir: str = "no-such-data"

        def run(config, ctx):
            load_mnist(config.data_dir, download=False)
    """,
    "baddata.py": """
        from dataclasses import dataclass
        from runners.mnist.loader import load_mnist

        @dataclass(frozen=True)
        class Config:
            data_dir: str = "corrupt-data"

        def run(config, ctx):
            load_mnist(config.data_dir, download=False)
    """,
    "evil.py": f"""
        from dataclasses import dataclass
        from reportgen.api import Result

        EVIL = {EVIL!r}
        EVIL_LINES = {EVIL_LINES!r}

        @dataclass(frozen=True)
        class Config:
            pass

        def run(config, ctx):
            print(EVIL_LINES)
            result = Result()
            result.metric(EVIL, 1.0)
            result.metric("label", EVIL)
            result.table("tab", [EVIL, "n"], [[EVIL, 1], [EVIL_LINES, EVIL]], caption=EVIL)
            result.check("c1", source=EVIL, statement=EVIL, article=EVIL, computed=EVIL, reason=EVIL)
            result.not_computable("c2", source=EVIL, statement=EVIL_LINES, article="4", reason=EVIL)
            ctx.path("plot.png").write_bytes(bytes.fromhex({PNG_HEX!r}))
            result.figure("fig", "plot.png", caption=EVIL)
            result.text("log", EVIL_LINES)
            result.text("note", EVIL)
            bad_id = 'B"]; click A call alert()'
            nodes = [{{"id": "A", "label": EVIL, "detail": EVIL_LINES}}, {{"id": bad_id, "label": "end"}}]
            result.graph("net", nodes, [["A", bad_id]], caption=EVIL)
            return result
    """,
    "evilfiles.py": f"""
        import os
        from dataclasses import dataclass
        from reportgen.api import Result

        @dataclass(frozen=True)
        class Config:
            pass

        def run(config, ctx):
            result = Result()
            ctx.path("pwn.md").write_text("# pwned\\n\\n<script>alert(3)</script>\\n")
            ctx.path("x.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(2)</script></svg>')
            ctx.path("page.html").write_text("<script>alert(4)</script>")
            os.symlink("/etc/hostname", ctx.path("leak.txt"))
            ctx.path("ok.png").write_bytes(bytes.fromhex({PNG_HEX!r}))
            result.figure("up", "../alpha/plot.png", caption="another runner's file")
            return result
    """,
    "evilfail.py": f"""
        import sys
        from dataclasses import dataclass

        EVIL = {EVIL!r}

        @dataclass(frozen=True)
        class Config:
            pass

        def run(config, ctx):
            print(EVIL)
            print(EVIL, file=sys.stderr)
            raise RuntimeError(EVIL)
    """,
}

EXTRA_SPECS = """
        RunnerSpec("exit3", "runners.exit3", "提前退出", "toy §6", packages=()),
        RunnerSpec("segv", "runners.segv", "段错误", "toy §7", packages=()),
        RunnerSpec("memhog", "runners.memhog", "内存超限", "toy §8", packages=(), memory_mb=256),
        RunnerSpec("oomkill", "runners.oomkill", "被杀", "toy §9", packages=(), memory_mb=256),
        RunnerSpec("badvalue", "runners.badvalue", "坏配置值", "toy §10", packages=()),
        RunnerSpec("badkey", "runners.badkey", "未知配置项", "toy §11", packages=()),
        RunnerSpec("nodata", "runners.nodata", "缺数据", "toy §12", packages=()),
        RunnerSpec("baddata", "runners.baddata", "坏数据", "toy §13", packages=()),
        RunnerSpec("evil", "runners.evil", "恶意输出", "toy §14", packages=()),
        RunnerSpec("evilfail", "runners.evilfail", "恶意错误", "toy §15", packages=()),
        RunnerSpec("evilfiles", "runners.evilfiles", "恶意文件", "toy §16", packages=()),
    ]
"""

MKDOCS = """
site_name: Toy
theme:
  name: material
  language: zh
plugins:  # no search: see TOY_MKDOCS in tests/toyproject.py
  - living-article:
      config:
        badvalue: {x: abc}
        badkey: {zzz: 1}
markdown_extensions:
  - admonition
  - attr_list
  - md_in_html
  - tables
  - pymdownx.details
  - pymdownx.arithmatex:
      generic: true
  - pymdownx.superfences:
      custom_fences:
        - name: mermaid
          class: mermaid
          format: !!python/name:pymdownx.superfences.fence_code_format
nav:
  - 首页: index.md
  - 运行结果:
      - results/index.md
  - 勘误表: errata.md
"""

INDEX = """# 首页

平方是 {{ value: alpha.square | .2f }}。标签：{{ value: evil.label }}。核对：{{ claim: evil.c1 }} {{ claim: evil.c2 }}

{{ result: evil }}

{{ figure: evil.fig }}

{{ table: evil.tab }}

{{ text: evil.log }}

{{ text: evil.note | prose }}

{{ diagram: evil.net }}

{{ claims: evil }}

{{ provenance: evil }}

{{ result: evilfail }}
"""

FAILING = ("broken", "hang", "crash", "exit3", "segv", "memhog", "oomkill", "badvalue", "badkey", "nodata", "baddata", "evilfail", "evilfiles")


def make_fault_project(root: Path) -> Path:
    """The toy project plus a runner for every failure mode and the hostile runners."""
    make_toy_project(root)
    package = root / "runners"
    # the article's real MNIST loader, so the data faults are the ones a reader would meet
    shutil.copytree(REPO / "runners" / "mnist", package / "mnist", ignore=shutil.ignore_patterns("__pycache__"))
    for filename, source in FAULT_RUNNERS.items():
        (package / filename).write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    for name in ("badvalue", "badkey"):  # alpha's code under another name; mkdocs.yml gives them bad config
        (package / f"{name}.py").write_text(textwrap.dedent(TOY_RUNNERS["alpha.py"]).lstrip(), encoding="utf-8")
    registry = package / "registry.py"
    text = registry.read_text(encoding="utf-8")
    registry.write_text(text.replace("\n    ]\n", EXTRA_SPECS, 1), encoding="utf-8")
    corrupt = root / "corrupt-data"
    corrupt.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (corrupt / name).write_bytes(b"\x1f\x8b not really mnist")
    (root / "mkdocs.yml").write_text(MKDOCS, encoding="utf-8")
    (root / "docs" / "index.md").write_text(INDEX, encoding="utf-8")
    return root


def network_guard(directory: Path) -> Path:
    """Write a sitecustomize.py that blocks the network in every Python process started with
    `directory` on PYTHONPATH (the build, and the runners it starts); return its log's path."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(__file__).with_name("netguard.py"), directory / "sitecustomize.py")
    return directory / "connections.log"


def isolated_env(tmp: Path, guard: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment for a build: no MNIST or download cache from this machine; with `guard`
    (a network_guard directory), no network either."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVING_")}
    env.update({"LIVING_DATA_CACHE": str(tmp / "no-download-cache"), "NO_MKDOCS_2_WARNING": "1"}, **extra)
    if guard is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(guard), str(REPO)])
        env["LIVING_NET_LOG"] = str(guard / "connections.log")
    return env


def mkdocs_build(
    root: Path, *extra: str, env: dict[str, str] | None = None, site: str = "site"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "-f", str(root / "mkdocs.yml"), "-d", str(root / site), *extra],
        cwd=root,
        capture_output=True,
        text=True,
        env=env if env is not None else isolated_env(root),
        timeout=300,
    )
