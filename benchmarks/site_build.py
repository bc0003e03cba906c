"""How long the site takes to build: no-op rebuild vs. plain MkDocs, one edited runner, scaling.

    python benchmarks/site_build.py [--repeats 5] [--base 4] [--scale-repeats 3] [--quick]

Prints three figures, each with what was run (wall time of a whole `python -m mkdocs build`
process: interpreter start, imports, the build):

(a) A no-op rebuild of this project (the plugin finds every result in the cache and runs
    nothing) against a plain `mkdocs build` of the same pages: a second copy whose docs/ holds
    exactly what the plugin feeds MkDocs (hand-written pages with their `{{ … }}` placeholders
    already substituted, the generated results/*.md, errata, report and drift pages, result files
    and figures, the notebooks) and whose mkdocs.yml is the project's without `living-article`
    (everything else kept, mkdocs-jupyter and search included; `nav` and `extra_css` as the
    plugin leaves them). The two are built alternately, `--repeats` times each; medians, the
    ratio, and the target (ratio ≤ 1.2).
(b) The rebuild after one runner's source was edited (a comment appended to it, a different one
    each time): its time and which runners executed, next to the no-op rebuild's (none).
(c) Cold builds of synthetic projects (tests/toyproject.py `make_synthetic_project`): 1×, 2×,
    4× `--base` runners, each doing the same fixed pure-Python work (calibrated once to about
    1 s on this machine; the iteration count is printed) and each with a page of its own, built
    with an empty cache with jobs=1 and with jobs=os.cpu_count() (LIVING_JOBS), and the largest
    with twice as many jobs as cores; medians of `--scale-repeats` builds. For reference, the
    speed-up the machine itself gives: os.cpu_count() processes of the same loop at once
    against one after another (no reportgen involved).

Nothing of the real project is modified: (a) and (b) work on a temporary copy of what a build
reads: docs/, mkdocs.yml, runners/, results/ (frozen results) and data/ when present, and the
cache state under .living/ (cache/, manifest.json, notebooks/, mkdocs-jupyter/); `../shared`
(the read-only data folder beside the project) is linked beside the copy, so the data set
identity in the cache keys is the same. The copy's first build primes it: with a current
.living/cache it runs nothing; runners whose result is missing or stale run then (minutes for
training runners; the names are printed). Without a .living/cache at all, every runner runs in
that first build, with LIVING_PROFILE=quick unless LIVING_PROFILE is set (about two minutes
on a 2-core CPU), and the later builds use the same setting. LIVING_CACHE_DIR, LIVING_EXECUTE,
LIVING_JOBS and LIVING_DRIFT_BASELINE are removed from the builds' environment. reportgen is
imported from this checkout (PYTHONPATH). Everything runs offline.

`--quick` (a smoke run): 2 repeats, scaling base 2 with 1 repeat and about 0.3 s per runner.
`--source DIR` copies another project for (a) and (b); `--skip project|scaling` leaves a part out.
The numbers depend on the machine and its load: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from toyproject import make_synthetic_project, synthetic_name  # noqa: E402

from reportgen.settings import PLUGIN_NAME  # noqa: E402

TARGET = 1.2
DROPPED_ENV = ("LIVING_CACHE_DIR", "LIVING_EXECUTE", "LIVING_JOBS", "LIVING_DRIFT_BASELINE")
LIVING_STATE = ("cache", "manifest.json", "notebooks", "mkdocs-jupyter")

# Runs inside the copy (cwd): one plugin build that records what the plugin hands MkDocs and
# writes it as a plain project: docs/ (every file, pages substituted) and plain.json (nav, extra_css).
CAPTURE = r"""
import copy, json, sys
from pathlib import Path
from mkdocs.commands.build import build
from mkdocs.config import load_config
from reportgen import mkdocs_plugin as mp

out, site = Path(sys.argv[1]), sys.argv[2]
state, pages = {}, {}
on_files, on_page_markdown = mp.LivingArticlePlugin.on_files, mp.LivingArticlePlugin.on_page_markdown

def capture_files(self, files, config):
    files = on_files(self, files, config)
    for f in files:
        target = out / "docs" / f.src_uri
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.content_bytes)
    state["nav"], state["extra_css"] = copy.deepcopy(config.nav), list(config.extra_css)
    return files

def capture_page(self, markdown, page, config, files):
    text = on_page_markdown(self, markdown, page, config, files)
    pages[page.file.src_uri] = text
    return text

mp.LivingArticlePlugin.on_files, mp.LivingArticlePlugin.on_page_markdown = capture_files, capture_page
build(load_config("mkdocs.yml", site_dir=site))
for uri, text in pages.items():
    if uri.endswith(".md"):
        (out / "docs" / uri).write_text(text, encoding="utf-8")
(out / "plain.json").write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")
"""


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["NO_MKDOCS_2_WARNING"] = "1"
    env.update(extra)
    return env


def mkdocs_build(root: Path, env: dict[str, str]) -> tuple[float, str]:
    """Wall seconds of `python -m mkdocs build` in `root`, and its log (stderr)."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "-d", str(root / "site")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"mkdocs build failed in {root}:\n{proc.stderr[-3000:]}")
    return seconds, proc.stderr


def executed(log: str) -> list[str]:
    """Runners the plugin executed in a build (its `running NAME (why)` lines)."""
    return re.findall(r"running (\S+) \(", log)


def copy_project(source: Path, dest: Path) -> Path:
    """Copy what a build of the project at `source` reads (see the module docstring)."""
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copy2(source / "mkdocs.yml", dest / "mkdocs.yml")
    for name in ("docs", "runners", "results"):
        if (source / name).is_dir():
            shutil.copytree(source / name, dest / name, ignore=ignore, symlinks=True)
    if (source / "data").exists():
        (dest / "data").symlink_to(source / "data")
    if (source.parent / "shared").exists() and not (dest.parent / "shared").exists():
        (dest.parent / "shared").symlink_to(source.parent / "shared")
    (dest / ".living").mkdir()
    for name in LIVING_STATE:
        source = source / ".living" / name
        if source.is_dir():
            shutil.copytree(source, dest / ".living" / name, symlinks=True)
        elif source.is_file():
            shutil.copy2(source, dest / ".living" / name)
    return dest


def _without_blocks(text: str, keys: tuple[str, ...]) -> str:
    """mkdocs.yml text without the top-level blocks `keys` (key line, its indented lines)."""
    kept, skipping = [], False
    for line in text.splitlines():
        top = bool(line) and not line[0].isspace() and not line.startswith("#")
        if top:
            skipping = any(line.startswith(f"{key}:") for key in keys)
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n"


def _without_plugin(text: str, name: str) -> str:
    """mkdocs.yml text without the list item `- name` (and its options) under `plugins:`."""
    kept, skipping, indent = [], False, 0
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(f"- {name}") and stripped[len(name) + 2 :].strip() in ("", ":"):
            skipping, indent = True, len(line) - len(stripped)
            continue
        if skipping and (not stripped or len(line) - len(stripped) > indent):
            continue
        skipping = False
        kept.append(line)
    return "\n".join(kept) + "\n"


def make_plain(copy: Path, plain: Path, env: dict[str, str]) -> None:
    """The plain project of (a), from one captured plugin build of `copy`."""
    plain.mkdir(parents=True)
    shutil.copytree(copy / "docs", plain / "docs")  # excluded files too (facts.yml, the jieba dictionary)
    proc = subprocess.run(
        [sys.executable, "-c", CAPTURE, str(plain), str(copy / "site")],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if proc.returncode != 0:
        raise SystemExit(f"capturing the plugin's pages failed:\n{proc.stderr[-3000:]}")
    state = json.loads((plain / "plain.json").read_text(encoding="utf-8"))
    text = _without_plugin((copy / "mkdocs.yml").read_text(encoding="utf-8"), PLUGIN_NAME)
    text = _without_blocks(text, ("nav", "extra_css"))
    text += yaml.safe_dump({"extra_css": state["extra_css"], "nav": state["nav"]}, allow_unicode=True, sort_keys=False)
    (plain / "mkdocs.yml").write_text(text, encoding="utf-8")
    if (copy / ".living" / "mkdocs-jupyter").is_dir():  # its converted-notebook cache, warm as in the copy
        shutil.copytree(copy / ".living" / "mkdocs-jupyter", plain / ".living" / "mkdocs-jupyter")


def site_pages(site: Path) -> set[str]:
    return {p.relative_to(site).as_posix() for p in site.rglob("*.html")}


def same_html(a: Path, b: Path) -> bool:
    """Both sites have the same HTML pages, byte for byte."""
    pages = site_pages(a)
    return pages == site_pages(b) and all((a / p).read_bytes() == (b / p).read_bytes() for p in pages)


def same_search(a: Path, b: Path) -> bool:
    """Both search indexes hold the same entries (MkDocs lists generated pages last: order differs)."""
    index = [json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8")) for site in (a, b)]
    entries = [sorted(json.dumps(doc, sort_keys=True) for doc in i["docs"]) for i in index]
    return index[0]["config"] == index[1]["config"] and entries[0] == entries[1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def fmt(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


def noop_and_edit(source: Path, work: Path, repeats: int, edit_repeats: int) -> None:
    env = child_env()
    if not (source / ".living" / "cache").is_dir():
        env.setdefault("LIVING_PROFILE", "quick")
    copy = copy_project(source, work / "project")
    seconds, log = mkdocs_build(copy, env)
    ran = executed(log)
    print(f"priming build of the copy: {seconds:.1f} s, executed {len(ran)} runner(s): {', '.join(ran) or 'none'}")
    plain = work / "plain"
    make_plain(copy, plain, env)
    plain_env = child_env()
    mkdocs_build(plain, plain_env)  # warm-up of both (page cache, mkdocs-jupyter cache)
    mkdocs_build(copy, env)
    same = same_html(copy / "site", plain / "site")
    plugin_times, plain_times, noop_logs = [], [], []
    for _ in range(repeats):  # alternate, so drifting machine load hits both alike
        seconds, log = mkdocs_build(copy, env)
        plugin_times.append(seconds)
        noop_logs.append(executed(log))
        plain_times.append(mkdocs_build(plain, plain_env)[0])
    pages = len(site_pages(copy / "site"))
    ratio = median(plugin_times) / median(plain_times)
    print()
    print(f"(a) no-op rebuild vs. plain mkdocs build of the same pages ({pages} HTML pages, byte-identical in both: {same})")
    print(f"    plugin, no-op  `python -m mkdocs build` of a copy with a current cache: median {median(plugin_times):.2f} s  [{fmt(plugin_times)}]")
    print(f"    plain          `python -m mkdocs build` without living-article:       median {median(plain_times):.2f} s  [{fmt(plain_times)}]")
    verdict = "met" if ratio <= TARGET else "NOT met"
    print(f"    ratio {ratio:.3f} (target ≤ {TARGET}: {verdict}); runners executed in the no-op builds: {sorted({n for r in noop_logs for n in r}) or 'none'}")
    print(f"    search index: same entries in both (order aside): {same_search(copy / 'site', plain / 'site')}")

    victim = pick_runner(copy)
    source = copy / "runners" / f"{victim}.py"
    edit_times, edit_ran = [], []
    for i in range(edit_repeats):
        with source.open("a", encoding="utf-8") as handle:
            handle.write(f"\n# benchmark edit {i} {time.time_ns()}\n")
        seconds, log = mkdocs_build(copy, env)
        edit_times.append(seconds)
        edit_ran.append(executed(log))
    print()
    print(f"(b) rebuild after editing one runner (a comment appended to runners/{victim}.py before each build)")
    noop_ran = sorted({n for r in noop_logs for n in r}) or "none"
    print(f"    no-op rebuild (from (a)):  median {median(plugin_times):.2f} s  [{fmt(plugin_times)}], runners executed: {noop_ran}")
    print(f"    {victim} edited:  median {median(edit_times):.2f} s  [{fmt(edit_times)}], runners executed per build: {edit_ran}")
    wall = recorded_wall(copy, victim)
    if wall is not None:
        print(f"    ({victim}'s own process wall time, from its latest record: {wall:.2f} s)")


def _latest_record(root: Path, name: str) -> dict[str, Any] | None:
    directory = root / ".living" / "cache" / name
    try:
        key = (directory / "LATEST").read_text(encoding="utf-8").strip()
        return dict(json.loads((directory / key / "result.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def recorded_wall(root: Path, name: str) -> float | None:
    record = _latest_record(root, name)
    wall = (record or {}).get("provenance", {}).get("process_wall_time_s")
    return float(wall) if isinstance(wall, (int, float)) else None


def pick_runner(root: Path) -> str:
    """The fastest successful runner whose source file no other runner imports (so an edit
    should re-run it alone)."""
    import runpy

    registry = runpy.run_path(str(root / "runners" / "registry.py"))["RUNNERS"]
    users: dict[str, int] = {}
    for name in registry:
        files = ((_latest_record(root, name) or {}).get("inputs") or {}).get("code", {}).get("files", {})
        for rel in files:
            users[rel] = users.get(rel, 0) + 1
    candidates = []
    for name in registry:
        record = _latest_record(root, name)
        wall = recorded_wall(root, name)
        if record and record.get("status") == "ok" and wall is not None and users.get(f"runners/{name}.py") == 1:
            candidates.append((wall, name))
    if not candidates:
        raise SystemExit("no runner with a successful cached result to edit")
    return min(candidates)[1]


def calibrate(target_s: float) -> int:
    """Loop iterations of the synthetic runners' work that take about `target_s` here (one core)."""
    probe = 2_000_000
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(probe):
            total = (total * 31 + i) % 1_000_003
        timings.append(time.perf_counter() - started)
    return max(1000, int(probe * target_s / median(timings)))


def fit_line(xs: list[int], ys: list[float]) -> tuple[float, float, float]:
    """Least-squares line y = a + b·x; returns a, b and the largest deviation from it (fraction of y)."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    a = my - b * mx
    return a, b, max(abs(y - (a + b * x)) / y for x, y in zip(xs, ys, strict=True))


def hardware_speedup(iterations: int, processes: int, repeats: int = 3) -> str:
    """How much faster `processes` copies of the synthetic work finish side by side than one after another."""
    code = f"t = 0\nfor i in range({iterations}):\n    t = (t * 31 + i) % 1_000_003\n"

    def wall(n: int) -> float:
        started = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]
        for proc in procs:
            proc.wait()
        return time.perf_counter() - started

    ratios = []
    for _ in range(repeats):
        one, many = wall(1), wall(processes)
        ratios.append(processes * one / many)
    return f"median {median(ratios):.2f} [{fmt(ratios)}]"


def scaling(work: Path, base: int, repeats: int, seconds_per_runner: float) -> None:
    cores = os.cpu_count() or 1
    iterations = calibrate(seconds_per_runner)
    sizes = [base, 2 * base, 4 * base]
    job_counts = sorted({1, cores})
    extra = (sizes[-1], 2 * cores)  # more jobs than cores: no faster
    print()
    print(f"(c) cold builds (empty cache) of synthetic projects: N independent runners, each {iterations:,} iterations")
    print(f"    of a pure-Python loop (calibrated to ~{seconds_per_runner:g} s on one core here), each with its own page;")
    print(f"    `python -m mkdocs build` with LIVING_JOBS=1 and ={cores} (os.cpu_count()); median of {repeats} build(s) each")
    reference = hardware_speedup(iterations, cores)
    times: dict[tuple[int, int], list[float]] = {}
    runner_walls: dict[int, list[float]] = {}
    rest: dict[int, list[float]] = {}  # jobs=1 build time minus its runners' process wall times
    for r in range(repeats):
        for n, jobs in [(n, jobs) for n in sizes for jobs in job_counts] + [extra]:  # each repeat builds each once
            root = make_synthetic_project(work / f"synth-{n}-{jobs}-{r}", n, iterations)
            seconds, log = mkdocs_build(root, child_env(LIVING_JOBS=str(jobs)))
            ran = executed(log)
            if len(ran) != n:
                raise SystemExit(f"expected {n} runners to execute, saw {len(ran)}")
            times.setdefault((n, jobs), []).append(seconds)
            if jobs == 1:
                walls = [recorded_wall(root, synthetic_name(i)) or 0.0 for i in range(n)]
                runner_walls.setdefault(n, []).append(median(walls))
                rest.setdefault(n, []).append(seconds - sum(walls))
            shutil.rmtree(root)
    t = {key: median(values) for key, values in times.items()}
    header = (
        f"    {'runners':>7} {'pages':>5} | {'jobs=1 s':>8} {'Δs/runner':>9} | {f'jobs={cores} s':>9} {'Δs/runner':>9}"
        f" | {'speed-up':>8} | {'one runner s':>12} {'rest s':>6}"
    )
    print(header)
    print("    " + "-" * (len(header) - 4))
    for i, n in enumerate(sizes):
        pages = 2 * n + 5  # a hand-written and a results page per runner; index, results index, report, drift, errata
        step = [
            f"{(t[(n, jobs)] - t[(sizes[i - 1], jobs)]) / (n - sizes[i - 1]):>9.3f}" if i else f"{'':>9}"
            for jobs in (1, cores)
        ]
        print(
            f"    {n:>7} {pages:>5} | {t[(n, 1)]:>8.2f} {step[0]} | {t[(n, cores)]:>9.2f} {step[1]}"
            f" | {t[(n, 1)] / t[(n, cores)]:>8.2f} | {median(runner_walls[n]):>12.2f} {median(rest[n]):>6.2f}"
        )
    for jobs in job_counts:
        a, b, worst = fit_line(sizes, [t[(n, jobs)] for n in sizes])
        print(f"    jobs={jobs}: time ≈ {a:.2f} s + {b:.3f} s × runners (least squares; largest deviation {worst:.1%})")
    n, jobs = extra
    print(f"    jobs={jobs} (2× the cores), {n} runners: {t[extra]:.2f} s (speed-up over jobs=1: {t[(n, 1)] / t[extra]:.2f})")
    print(f"    for reference, the machine itself: {cores} loop processes at once vs. one, no reportgen: speed-up {reference}")
    print("    Δs/runner: added seconds per added runner from the row above; one runner s: median of the")
    print("    runners' own process wall times (python start + work) in the jobs=1 builds; rest s: a jobs=1")
    print("    build's time minus the sum of its runners' process wall times (MkDocs, reportgen, process spawns)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="builds of each kind in (a), default 5")
    parser.add_argument("--edit-repeats", type=int, default=3, help="edited-runner builds in (b), default 3")
    parser.add_argument("--base", type=int, default=4, help="runners of the smallest synthetic project, default 4")
    parser.add_argument("--scale-repeats", type=int, default=3, help="cold builds of each size and job count, default 3")
    parser.add_argument("--work-seconds", type=float, default=1.0, help="CPU work per synthetic runner, default 1.0")
    parser.add_argument("--source", type=Path, default=REPO, help="the project (a) and (b) copy, default this checkout")
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer repeats, smaller scaling")
    parser.add_argument("--skip", choices=("project", "scaling"), action="append", default=[], help="leave out a part")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.edit_repeats, args.base, args.scale_repeats = 2, 1, 2, 1
        args.work_seconds = 0.3
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPU core(s), project {args.source.resolve()}")
    with tempfile.TemporaryDirectory(prefix="site-build-bench-") as tmp:
        work = Path(tmp)
        if "project" not in args.skip:
            noop_and_edit(args.source.resolve(), work, args.repeats, args.edit_repeats)
        if "scaling" not in args.skip:
            scaling(work, args.base, args.scale_repeats, args.work_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
