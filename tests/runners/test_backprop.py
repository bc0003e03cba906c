"""001 §4.3: hand-written gradients against autograd, and the verdicts on the article's algebra."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reportgen.context import RunContext
from runners import backprop
from runners.backprop import Config, gradients, torch_gradients

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory):
    ctx = RunContext(out_dir=tmp_path_factory.mktemp("backprop"), device="cpu", device_name="cpu", seed=0)
    return backprop.run(Config(), ctx)


def test_numpy_gradients_match_autograd_on_article_and_random_weights() -> None:
    rng = np.random.default_rng(0)
    cases = [{"W1": backprop.W1, "b1": backprop.B1, "W2": np.array([[0.7, 0.8]]), "b2": np.array([0.1])}]
    # random weights too, so agreement is not an accident of the article's numbers
    cases += [
        {
            "W1": rng.normal(size=(2, 2)),
            "b1": rng.normal(size=(2, 1)),
            "W2": rng.normal(size=(1, 2)),
            "b2": rng.normal(size=(1,)),
        }
        for _ in range(5)
    ]
    for params in cases:
        ours, ref = gradients(*params.values()), torch_gradients(params)
        for k in ours:
            assert ours[k].shape == params[k].shape
            np.testing.assert_allclose(ours[k], ref[k], rtol=0, atol=1e-12)


def test_metrics(result) -> None:
    m = result.metrics
    assert m["torch_max_abs_diff"] < 1e-12
    assert m["loss_after"] < m["loss_before"] < m["loss_after_article_sign"]


def test_claim_verdicts(result) -> None:
    verdicts = {c.id: c.verdict for c in result.claims}
    assert verdicts == {
        "a1": "not_computable",
        "d1": "contradictory",
        "d2": "contradictory",
        "update": "not_computable",
    }
    d2 = next(c for c in result.claims if c.id == "d2")
    assert isinstance(d2.computed, str) and "-0.3" in d2.computed


def test_shapes_table(result) -> None:
    rows = {r[0]: r for r in result.tables["shapes"].rows}
    assert rows["W¹·X"][3] is False
    assert rows["d¹·Xᵀ"][3] is True and rows["d¹·Xᵀ"][4] == "2×3"
    assert rows["W¹ − α·d¹·Xᵀ"][3] is False
    # numpy would broadcast this one; it still is not a defined matrix difference
    assert rows["b¹ − α·d¹"][3] is False and "广播" in rows["b¹ − α·d¹"][4]


def test_no_reading_reproduces_article_a1(result) -> None:
    rows = result.tables["readings"].rows
    assert len(rows) == 9
    assert not any(r[4] for r in rows)


def test_cli_writes_ok_result(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "reportgen.child", "backprop", "--registry", "runners.registry", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    data = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert data["status"] == "ok", (proc.stderr, data.get("error"))
    assert data["result"]["metrics"]["torch_max_abs_diff"] < 1e-12
