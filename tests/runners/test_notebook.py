"""reportgen.jupyter on this article's runners: what the site's notebooks call, run for real outside a kernel."""

from __future__ import annotations

import base64
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reportgen import jupyter
from reportgen.jupyter import Example, Output, run_example
from reportgen.notebooks import build_notebook
from reportgen.render import RunnerView

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Example:
    return run_example("activations", {"x": -1.0}, out_dir=tmp_path_factory.mktemp("activations"))


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    captured: list[Any] = []
    monkeypatch.setattr("IPython.display.display", lambda *objs, **kw: captured.extend(objs))
    return captured


def test_run_example_runs_the_runner_with_overrides(example: Example) -> None:
    assert example.config.x == -1.0
    assert example.device == "cpu"  # activations is not a training runner
    assert example.result.metrics["sigmoid"] == pytest.approx(1 / (1 + math.e))
    assert (example.out_dir / "curves.png").is_file()


def test_outputs_are_rich_display_objects(example: Example) -> None:
    metrics = jupyter.metrics_output(example)._repr_mimebundle_()
    assert "<td>sigmoid</td><td>0.268941</td>" in metrics["text/html"]
    assert "sigmoid | 0.268941" in metrics["text/plain"]
    figure = jupyter.figure_output(example, "curves")._repr_mimebundle_()
    assert base64.b64decode(figure["image/png"]) == (example.out_dir / "curves.png").read_bytes()
    claims = jupyter.claims_output(example)._repr_mimebundle_()
    assert "<th>文章数值</th>" in claims["text/html"]
    with pytest.raises(KeyError, match="no table 'nope'"):
        jupyter.table_output(example, "nope")


def test_show_functions_display_and_return_nothing(example: Example, shown: list[Any]) -> None:
    # they display (returning the object too would show it twice in Jupyter: once more as Out[n])
    assert jupyter.show_metrics(example) is None
    jupyter.show_table(example, "values")
    jupyter.show_figure(example, "curves")
    assert [type(o) for o in shown] == [Output, Output, Output]
    assert "image/png" in shown[2]._repr_mimebundle_()


def test_show_outside_a_kernel_prints_plain_text(
    example: Example, capsys: pytest.CaptureFixture[str]
) -> None:
    jupyter.show_metrics(example)
    assert "sigmoid | 0.268941" in capsys.readouterr().out


def test_bad_names_and_config_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown example 'nope'"):
        run_example("nope")
    with pytest.raises(ValueError, match="unknown config key"):
        run_example("activations", {"no_such_key": 1})


def source(cell: dict[str, Any]) -> str:
    return "".join(cell["source"])


def test_rerunning_a_built_notebook_reproduces_its_outputs(tmp_path: Path, shown: list[Any]) -> None:
    """The build's record → notebook; executing its code cells here gives the recorded outputs."""
    out = tmp_path / "run"
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
    cmd = [sys.executable, "-m", "reportgen.child", "activations", "--registry", "runners.registry", "--out", str(out), "--config", "{}"]
    subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True, timeout=300)
    record = json.loads((out / "result.json").read_text(encoding="utf-8"))
    record["inputs"] = {"code": {"config": {}}}
    nb = build_notebook(RunnerView("activations", "激活函数", "000 §2.4.1", record, "ran"), out)
    assert nb is not None
    namespace: dict[str, Any] = {}
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    exec(source(code[0]), namespace)  # the notebook's own first cell
    assert namespace["result"].result.metrics == record["result"]["metrics"]
    for cell in code[1:]:
        shown.clear()
        exec(source(cell), namespace)
        recorded = {
            k: "".join(v) if isinstance(v, list) else v for k, v in cell["outputs"][0]["data"].items()
        }
        assert [o._repr_mimebundle_() for o in shown] == [recorded], source(cell)
