"""The GitHub Actions workflow: tested on every push and pull request, published only from the default branch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / ".github" / "workflows" / "site.yml"


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
    assert set(jobs) == {"test", "build", "deploy"}
    assert "needs" not in jobs["test"]
    assert jobs["build"]["needs"] == "test"
    assert jobs["deploy"]["needs"] == "build"


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


def test_build_job_restores_the_result_cache_and_builds_strictly(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["build"]
    (cache,) = uses(job, "actions/cache")
    assert ".living/cache" in cache["with"]["path"].split()
    assert "hashFiles('runners/**', 'pyproject.toml')" in cache["with"]["key"]
    assert cache["with"]["restore-keys"].strip()  # a partial hit still saves most runs
    names = [step.get("uses", step.get("run", "")) for step in steps(job)]
    build_at = next(i for i, n in enumerate(names) if "mkdocs build --strict" in n)
    cache_at = names.index(cache["uses"])
    upload_at = next(i for i, n in enumerate(names) if n.startswith("actions/upload-pages-artifact@"))
    assert cache_at < build_at < upload_at
    assert uses(job, "actions/upload-pages-artifact")[0]["with"]["path"] == "site"
    assert "LIVING_DRIFT_BASELINE" in runs(job)  # the published manifest, when there is one


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
