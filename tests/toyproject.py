"""A tiny but complete living-article project with toy runners, for tests of any folder.

The toy project is an article of its own: a `runners` package with a registry and toy runners
that start fast (no torch), fail, hang or crash, written against the installed `reportgen`
(nothing copied from this repository's runners).
Import it as `from toyproject import make_toy_project` (tests/ is on sys.path via its conftest).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PNG_HEX = (  # a 1×1 PNG, for runners and records that need a figure file
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)
PNG = bytes.fromhex(PNG_HEX)

REGISTRY_HEAD = '''"""The toy article's runners."""

from reportgen.spec import RunnerSpec
'''

REGISTRY_TAIL = '''
RUNNERS: dict[str, RunnerSpec] = {
    spec.name: spec
    for spec in [
        RunnerSpec("alpha", "runners.alpha", "阿尔法", "toy §1", packages=()),
        RunnerSpec("beta", "runners.beta", "贝塔", "toy §2", packages=()),
        RunnerSpec("broken", "runners.broken", "出错的例子", "toy §3", packages=()),
        RunnerSpec("hang", "runners.hang", "卡住的例子", "toy §4", timeout_s=1.5, packages=()),
        RunnerSpec("crash", "runners.crash", "崩溃的例子", "toy §5", packages=()),
    ]
}
'''

TOY_RUNNERS = {
    "alpha.py": '''
        from dataclasses import dataclass
        from reportgen.api import Result

        @dataclass(frozen=True)
        class Config:
            x: float = 2.0
            seed: int = 0

        def run(config, ctx):
            result = Result()
            result.metric("square", config.x ** 2)
            result.check("square", source="toy §1", statement="x² = 4", article="4", computed=config.x ** 2)
            result.check("wrong", source="toy §1", statement="x³ ≈ 9", article="9", computed=config.x ** 3)
            result.table("powers", ["n", "x^n"], [[n, config.x ** n] for n in range(3)], caption="幂")
            result.text("log", "line <script>alert(1)</script> {{ value: alpha.square }}")
            ctx.path("plot.png").write_bytes(bytes.fromhex(
                "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"))
            result.figure("plot", "plot.png", caption="一张图")
            print("alpha says hello")
            return result
    ''',
    "helper.py": '''
        def double(v):
            return 2 * v
    ''',
    "beta.py": '''
        from dataclasses import dataclass
        from reportgen.api import Result
        from runners.helper import double

        @dataclass(frozen=True)
        class Config:
            y: int = 3

        def run(config, ctx):
            result = Result()
            result.metric("double", double(config.y))
            return result
    ''',
    "broken.py": '''
        from dataclasses import dataclass

        @dataclass(frozen=True)
        class Config:
            pass

        def run(config, ctx):
            raise RuntimeError("the example is broken on purpose")
    ''',
    "hang.py": '''
        import time
        from dataclasses import dataclass

        @dataclass(frozen=True)
        class Config:
            pass

        def run(config, ctx):
            time.sleep(60)
    ''',
    "crash.py": '''
        import os
        from dataclasses import dataclass

        @dataclass(frozen=True)
        class Config:
            pass

        def run(config, ctx):
            os.abort()
    ''',
}

TOY_MKDOCS = """
site_name: Toy
theme:
  name: material
  language: zh
# no search plugin: jieba takes 0.8 s to load its dictionary in each build with Chinese text, and no test of a
# toy project reads a search index (tests/test_site.py reads the real site's)
plugins:
  - living-article
markdown_extensions:
  - admonition
  - attr_list
  - pymdownx.details
  - pymdownx.superfences
  - pymdownx.arithmatex:
      generic: true
nav:
  - 首页: index.md
  - 运行结果:
      - results/index.md
  - 勘误表: errata.md
"""

TOY_INDEX = """# 首页

平方是 {{ value: alpha.square | .2f }}，文章说 4 {{ claim: alpha.square }}。

{{ result: alpha }}

{{ figure: alpha.plot }}

{{ table: alpha.powers }}

贝塔：{{ value: beta.double }}；坏例子：{{ value: broken.anything }}

`{{ value: alpha.square }}` 在代码里不替换。
"""


def _runner_package(root: Path) -> Path:
    """An empty runners/ package (its registry is written by the caller)."""
    package = root / "runners"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""The toy article\'s runners."""\n', encoding="utf-8")
    return package


def make_toy_project(root: Path, runners: tuple[str, ...] = ("alpha", "beta", "broken", "hang", "crash")) -> Path:
    package = _runner_package(root)
    tail = REGISTRY_TAIL
    for name in ("alpha", "beta", "broken", "hang", "crash"):
        if name not in runners:
            tail = "\n".join(line for line in tail.splitlines() if f'"{name}"' not in line)
    (package / "registry.py").write_text(REGISTRY_HEAD + tail, encoding="utf-8")
    for filename, source in TOY_RUNNERS.items():
        (package / filename).write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    (root / "docs").mkdir()
    (root / "docs" / "index.md").write_text(TOY_INDEX, encoding="utf-8")
    (root / "mkdocs.yml").write_text(TOY_MKDOCS, encoding="utf-8")
    return root


# --- more runners, a fake GPU, synthetic projects (tests/reportgen/test_noop_build.py, benchmarks/site_build.py)

JUPYTER_PLUGIN = """  - mkdocs-jupyter:
      include: ["notebooks/*.ipynb"]
      execute: false
      include_source: true
      ignore_h1_titles: true
      cache_dir: .living/mkdocs-jupyter
"""


def add_jupyter(root: Path) -> Path:
    """List mkdocs-jupyter after living-article, as the real mkdocs.yml does (renders the notebooks)."""
    yml = root / "mkdocs.yml"
    text = yml.read_text(encoding="utf-8")
    yml.write_text(text.replace("  - living-article\n", "  - living-article\n" + JUPYTER_PLUGIN, 1), encoding="utf-8")
    return root


def add_runner(root: Path, name: str, source: str, spec_args: str = "packages=()", title: str = "") -> None:
    """Write runners/<name>.py and register it (`spec_args`: RunnerSpec keywords, e.g. "uses_device=True")."""
    (root / "runners" / f"{name}.py").write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    registry = root / "runners" / "registry.py"
    text = registry.read_text(encoding="utf-8")
    at = text.rindex("    ]\n}")
    line = f'        RunnerSpec("{name}", "runners.{name}", "{title or name}", "toy", {spec_args}),\n'
    registry.write_text(text[:at] + line + text[at:], encoding="utf-8")


FAKE_TORCH = '''
"""A stand-in for torch that reports one CUDA device: runners "train on a GPU" without one."""
__version__ = "0.0+fake"


class cuda:  # noqa: N801
    @staticmethod
    def is_available():
        return True

    @staticmethod
    def get_device_name(index=0):
        return "Fake GPU (tests/toyproject.py)"


class backends:  # noqa: N801
    mps = None


def manual_seed(seed):
    return None


def set_num_threads(threads):
    return None
'''


def add_fake_gpu(root: Path) -> None:
    """A fake `torch` package in the project root: runner processes (cwd and PYTHONPATH = root)
    import it instead of the real one, so `--device cuda` and `auto` select "cuda" on any machine."""
    (root / "torch").mkdir()
    (root / "torch" / "__init__.py").write_text(textwrap.dedent(FAKE_TORCH).lstrip(), encoding="utf-8")


SYNTHETIC_RUNNER = """
from dataclasses import dataclass
from reportgen.api import Result

@dataclass(frozen=True)
class Config:
    iterations: int = {iterations}  # a fixed amount of pure-Python work
    seed: int = {index}

def run(config, ctx):
    total = 0
    for i in range(config.iterations):
        total = (total * 31 + i) % 1_000_003
    result = Result()
    result.metric("checksum", total)
    result.metric("iterations", config.iterations)
    return result
"""

# the toy site's config with a section listing the synthetic pages ({pages}: their nav lines)
SYNTHETIC_MKDOCS = TOY_MKDOCS.replace("site_name: Toy", "site_name: Synthetic").replace(
    "  - 首页: index.md\n", "  - 首页: index.md\n  - 例子:\n{pages}\n"
)


def synthetic_name(index: int) -> str:
    return f"synth_{index:03d}"


def make_synthetic_project(root: Path, count: int, iterations: int) -> Path:
    """`count` independent runners, each doing the same fixed pure-Python work (`iterations` loop
    steps, no numpy or torch), each with a hand-written page of its own that shows its result."""
    package = _runner_package(root)
    registry = REGISTRY_HEAD + "RUNNERS: dict[str, RunnerSpec] = {\n    spec.name: spec\n    for spec in [\n    ]\n}\n"
    (package / "registry.py").write_text(registry, encoding="utf-8")
    (root / "docs" / "examples").mkdir(parents=True)
    (root / "docs" / "index.md").write_text(f"# 合成项目\n\n{count} 个独立的运行器。\n", encoding="utf-8")
    nav = []
    for index in range(count):
        name = synthetic_name(index)
        add_runner(root, name, SYNTHETIC_RUNNER.format(iterations=iterations, index=index), title=f"例子 {index}")
        page = f"# 例子 {index}\n\n校验和：{{{{ value: {name}.checksum }}}}\n\n{{{{ result: {name} }}}}\n"
        (root / "docs" / "examples" / f"{name}.md").write_text(page, encoding="utf-8")
        nav.append(f"      - 例子 {index}: examples/{name}.md")
    (root / "mkdocs.yml").write_text(SYNTHETIC_MKDOCS.format(pages="\n".join(nav)), encoding="utf-8")
    return root


def interruptible() -> None:
    """A `preexec_fn` for a child the test stops with Ctrl-C (SIGINT): default handling again, so Python
    installs its KeyboardInterrupt handler. Under a shell's background job (`pytest &`, nohup, some CI agents)
    SIGINT is ignored, the child would inherit that, and the Ctrl-C would never arrive."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def fresh_build_command(root: Path, out: Path) -> tuple[list[str], dict[str, str]]:
    """`mkdocs build --strict` of the article in `root` into out/site, with an empty cache in
    out/cache (every runner executes in this build), on the CPU, with no drift baseline; an article's
    per-machine tuning record (runners/cnn_model/tuning_key.py) goes to out/tuning, never the user's,
    since a record measured while the test suite loads the machine could pick a slow path."""
    env = {k: v for k, v in os.environ.items() if k not in ("LIVING_EXECUTE", "LIVING_DRIFT_BASELINE")}
    env.update({"LIVING_CACHE_DIR": str(out / "cache"), "LIVING_DEVICE": "cpu", "NO_MKDOCS_2_WARNING": "1",
                "LIVING_TUNING_DIR": str(out / "tuning")})
    return [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out / "site")], env


def build_fresh(root: Path, out: Path, timeout: int) -> subprocess.CompletedProcess[str]:
    """The build of `fresh_build_command`, waited for."""
    command, env = fresh_build_command(root, out)
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)


def idle_priority() -> None:
    """A `preexec_fn`: the child and everything it starts run only on CPU time nobody else wants (Linux's
    SCHED_IDLE; elsewhere the lowest nice level). A mere nice level still takes a tenth of a core from a busy
    test, and a torch test's threads then wait for each other."""
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return
        except OSError:
            pass
    os.nice(19)


class Background:
    """A command running in the background (with everything it starts), its output in a file: work the suite
    starts early and whose result a test reads later (tests/conftest.py). `idle`: at idle priority, for work
    that runs beside other tests; without, for work a test waits for at once."""

    def __init__(self, what: str, command: list[str], env: dict[str, str], cwd: Path, log: Path, timeout: float, *,
                 idle: bool) -> None:
        self.what, self.log, self.timeout = what, log, timeout
        with log.open("w", encoding="utf-8") as out:  # a file, not a pipe: nobody reads a pipe while it runs
            self.proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
                                         start_new_session=True, preexec_fn=idle_priority if idle else None)
        self.started = time.monotonic()

    def wait(self) -> str:
        """Its output, once it has ended; killed, and an AssertionError, past `timeout` from its start."""
        try:
            self.proc.wait(timeout=max(1.0, self.timeout - (time.monotonic() - self.started)))
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"{self.what} ran past {self.timeout:g} s:\n{self.output()[-4000:]}") from None
        return self.output()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # it and the processes it started
            self.proc.wait()


# An identity hook (RunnerSpec.identity) for toy runners: the choice a runner recorded in $TOY_TUNING, as a
# per-machine tuning record would hold it (tests/reportgen/test_identity.py, test_merge.py)
TUNING_HOOK = """
import json
import os
from pathlib import Path


def choice(root):
    path = Path(os.environ["TOY_TUNING"]) / "choice.json"
    return {"path": json.loads(path.read_text())["path"] if path.is_file() else "untuned"}
"""
