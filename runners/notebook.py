"""Rerun an example in Jupyter: what the site's notebooks (notebooks/<name>.ipynb) call.

    from runners.notebook import run_example, show_metrics, show_table
    result = run_example("activations", {"x": -1.0})
    show_metrics(result)

`run_example` runs the runner in this process the way `python -m runners NAME` does (config
from overrides, device, seeds) and writes its files to a fresh directory. The `show_*`
functions display what it found with the same output bundles the site's notebooks were built
with (`reportgen.notebooks`), so a rerun looks like the recorded outputs. Each `*_output`
function returns the display object without displaying it.
"""

from __future__ import annotations

import importlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportgen import notebooks
from runners.api import Result
from runners.context import RunContext, seed_everything, select_device
from runners.registry import RUNNERS


@dataclass
class Example:
    """One run of a runner: its config, its Result and the directory holding its files."""

    name: str
    config: Any
    result: Result
    out_dir: Path
    device: str
    device_name: str

    def to_json(self) -> dict[str, Any]:
        return self.result.to_json()


class Output:
    """A display object with fixed MIME data: Jupyter shows the richest type it supports."""

    def __init__(self, bundle: dict[str, str]) -> None:
        self.bundle = dict(bundle)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return dict(self.bundle)

    def __repr__(self) -> str:
        return self.bundle.get("text/plain", "")


def run_example(
    name: str,
    overrides: dict[str, Any] | None = None,
    *,
    device: str = "auto",
    out_dir: str | Path | None = None,
) -> Example:
    """Run the example `name` with config overrides; files go to `out_dir` (default: a new temp dir).

    Training runners use `device` ("auto": CUDA, then MPS, then CPU; an unavailable device falls
    back to the CPU); the others always compute on the CPU, as in the build.
    """
    from runners.__main__ import build_config  # the build's own config parsing

    if name not in RUNNERS:
        raise ValueError(f"unknown example {name!r}; known: {', '.join(sorted(RUNNERS))}")
    spec = RUNNERS[name]
    module = importlib.import_module(spec.module)
    config = build_config(module.Config, dict(overrides or {}))
    seed = int(getattr(config, "seed", 0))
    used, device_name = select_device(device if spec.uses_device else "cpu")
    seed_everything(seed)
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix=f"living-{name}-"))
    out.mkdir(parents=True, exist_ok=True)
    result = module.run(config, RunContext(out_dir=out, device=used, device_name=device_name, seed=seed))
    return Example(name, config, result, out, used, device_name)


def metrics_output(example: Example) -> Output:
    return Output(notebooks.metrics_bundle(example.to_json()))


def claims_output(example: Example) -> Output:
    return Output(notebooks.claims_bundle(example.to_json()))


def table_output(example: Example, name: str) -> Output:
    return Output(notebooks.table_bundle(example.to_json(), name))


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
