"""Rerun an example in Jupyter: what the site's notebooks (notebooks/<name>.ipynb) call.

    from reportgen.jupyter import run_example, show_metrics, show_table
    result = run_example("activations", {"x": -1.0})
    show_metrics(result)

`run_example` runs the runner in this process the way `python -m reportgen.child NAME` does
(config from overrides, device, seeds) and writes its files to a fresh directory. The runner is
looked up in the registry of the project that holds the working directory (its mkdocs.yml
says which). A runner that builds on others takes their examples: `run_example("b", upstreams=
{"a": a})`; the ones not given are run first with their defaults. The `show_*`
functions display what it found with the same output bundles the site's notebooks were built
with (`reportgen.notebooks`), so a rerun looks like the recorded outputs. Each `*_output`
function returns the display object without displaying it.
"""

from __future__ import annotations

import importlib
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportgen import notebooks
from reportgen.api import Result
from reportgen.child import build_config, registry_runners
from reportgen.context import RunContext, Upstream, seed_everything, select_device
from reportgen.settings import load_settings


@dataclass
class Example:
    """One run of a runner: its config, its Result and the directory holding its files."""

    name: str
    config: Any
    result: Result
    out_dir: Path
    device: str
    device_name: str
    language: str = "en"  # of the project's pages: the outputs' headers use it too

    def to_json(self) -> dict[str, Any]:
        return self.result.to_json()

    def as_upstream(self) -> Upstream:
        """This run as the stored result a downstream runner reads (ctx.upstream)."""
        files = {p.relative_to(self.out_dir).as_posix(): "" for p in self.out_dir.rglob("*") if p.is_file()}
        record = {"runner": self.name, "status": "ok", "result": self.to_json(), "files": files}
        return Upstream(self.name, self.out_dir, json.loads(json.dumps(record)))


class Output:
    """A display object with fixed MIME data: Jupyter shows the richest type it supports."""

    def __init__(self, bundle: dict[str, str]) -> None:
        self.bundle = dict(bundle)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return dict(self.bundle)

    def __repr__(self) -> str:
        return self.bundle.get("text/plain", "")


def project_runners(project: str | Path | None = None) -> tuple[dict[str, Any], str]:
    """The registry of the project holding `project` (default: the working directory), and the
    language of its pages."""
    settings = load_settings(Path(project) if project is not None else None)
    if str(settings.root) not in sys.path:
        sys.path.insert(0, str(settings.root))  # the article's package imports from the project
    return registry_runners(settings.registry), settings.language


def run_example(
    name: str,
    overrides: dict[str, Any] | None = None,
    *,
    device: str = "auto",
    out_dir: str | Path | None = None,
    upstreams: dict[str, Example] | None = None,
    project: str | Path | None = None,
) -> Example:
    """Run the example `name` with config overrides; files go to `out_dir` (default: a new temp dir).

    Training runners use `device` ("auto": CUDA, then MPS, then CPU; an unavailable device falls
    back to the CPU); the others always compute on the CPU, as in the build.
    """
    runners, language = project_runners(project)
    if name not in runners:
        raise ValueError(f"unknown example {name!r}; known: {', '.join(sorted(runners))}")
    spec = runners[name]
    given = dict(upstreams or {})
    for need in spec.needs:
        if need not in given:
            given[need] = run_example(need, device=device, project=project)
    module = importlib.import_module(spec.module)
    config = build_config(module.Config, dict(overrides or {}))
    seed = int(getattr(config, "seed", 0))
    used, device_name = select_device(device if spec.uses_device else "cpu")
    seed_everything(seed)
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix=f"living-{name}-"))
    out.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(out_dir=out, device=used, device_name=device_name, seed=seed,
                     upstreams={n: given[n].as_upstream() for n in spec.needs})
    result = module.run(config, ctx)
    return Example(name, config, result, out, used, device_name, language)


def metrics_output(example: Example) -> Output:
    return Output(notebooks.metrics_bundle(example.to_json(), example.language))


def claims_output(example: Example) -> Output:
    return Output(notebooks.claims_bundle(example.to_json(), example.language))


def table_output(example: Example, name: str) -> Output:
    return Output(notebooks.table_bundle(example.to_json(), name, example.language))


def figure_output(example: Example, name: str) -> Output:
    return Output(notebooks.figure_bundle(example.to_json(), name, example.out_dir))


def text_output(example: Example, name: str) -> Output:
    return Output(notebooks.text_bundle(example.to_json(), name))


def _show(output: Output) -> None:
    from IPython.display import display  # outside a kernel it prints the text/plain form

    display(output)


def show_metrics(example: Example) -> None:
    _show(metrics_output(example))


def show_claims(example: Example) -> None:
    _show(claims_output(example))


def show_table(example: Example, name: str) -> None:
    _show(table_output(example, name))


def show_figure(example: Example, name: str) -> None:
    _show(figure_output(example, name))


def show_text(example: Example, name: str) -> None:
    _show(text_output(example, name))
