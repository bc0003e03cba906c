"""optimizers runner: our SGD/Adam step against torch.optim driven with a hand-set gradient."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reportgen.context import RunContext
from runners import optimizers

ROOT = Path(__file__).resolve().parents[2]


def run(tmp_path: Path, **overrides: float) -> dict:
    ctx = RunContext(out_dir=tmp_path, device="cpu", device_name="cpu", seed=0)
    return optimizers.run(optimizers.Config(**overrides), ctx).to_json()


def torch_step(opt_cls: type, w0: float, grad: float, **kw: object) -> tuple[float, dict]:
    w = torch.tensor([w0], dtype=torch.float64, requires_grad=True)
    opt = opt_cls([w], **kw)
    w.grad = torch.tensor([grad], dtype=torch.float64)
    opt.step()
    return w.item(), {k: v.item() for k, v in opt.state[w].items() if torch.is_tensor(v)}


@pytest.mark.parametrize("w0, grad", [(0.0, 0.5), (1.0, -3.0)])
def test_first_step_against_torch(tmp_path: Path, w0: float, grad: float) -> None:
    m = run(tmp_path, w0=w0, grad=grad, steps=3)["metrics"]
    sgd_w1, _ = torch_step(torch.optim.SGD, w0, grad, lr=0.1)
    adam_w1, state = torch_step(torch.optim.Adam, w0, grad, lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    assert m["sgd_w1"] == pytest.approx(sgd_w1, abs=1e-7)
    assert m["sgd_update"] == pytest.approx(-0.1 * grad, abs=1e-7)
    assert m["adam_w1"] == pytest.approx(adam_w1, abs=1e-7)
    assert m["adam_m1"] == pytest.approx(state["exp_avg"], abs=1e-7)
    assert m["adam_v1"] == pytest.approx(state["exp_avg_sq"], abs=1e-7)
    assert m["adam_m_hat1"] == pytest.approx(state["exp_avg"] / (1 - 0.9), abs=1e-7)
    assert m["adam_v_hat1"] == pytest.approx(state["exp_avg_sq"] / (1 - 0.999), abs=1e-7)
    # the first Adam step is −α·sign(g) whatever |g| is
    assert m["adam_update"] == pytest.approx(-0.1 * math.copysign(1.0, grad), abs=1e-7)
    assert m["torch_max_abs_diff"] < 1e-12


def test_article_chain_and_verdicts(tmp_path: Path) -> None:
    result = run(tmp_path)
    m = result["metrics"]
    assert m["article_chain_w1"] == pytest.approx(-0.1 * 0.05 / (math.sqrt(0.0005) + 1e-8), abs=1e-12)
    assert m["article_chain_w1"] == pytest.approx(-0.2236, abs=1e-4)
    verdicts = {c["id"]: c["verdict"] for c in result["claims"]}
    assert verdicts == {
        "adam_m1": "agrees",
        "adam_v1": "differs",
        "adam_m_hat1": "differs",
        "adam_v_hat1": "differs",
        "adam_w1": "differs",
    }
    w1 = next(c for c in result["claims"] if c["id"] == "adam_w1")
    assert "-0.2236" in w1["reason"] and "sign" in w1["reason"]


def test_trajectories(tmp_path: Path) -> None:
    result = run(tmp_path, steps=20)
    series = result["series"]["trajectories"]
    assert series["x"] == list(range(21))
    assert set(series["ys"]) == {f"{k}_{s}" for k in ("SGD", "Adam") for s in ("x", "y", "loss")}
    assert series["ys"]["SGD_x"][0] == series["ys"]["Adam_x"][0] == optimizers.START[0]
    assert (tmp_path / result["figures"]["trajectories"]["path"]).is_file()
    assert {"adam_steps", "sgd_step"} <= set(result["tables"])
    json.dumps(result, allow_nan=False)
    full = run(tmp_path)["metrics"]
    assert full["trajectory_adam_final_loss"] < full["trajectory_sgd_final_loss"]


def test_other_w0_changes_verdict(tmp_path: Path) -> None:
    # the article's −0.014 would be right if W_0 were 0.086: the first step moves by −α
    claim = next(c for c in run(tmp_path, w0=0.086, steps=3)["claims"] if c["id"] == "adam_w1")
    assert claim["verdict"] == "agrees" and claim["reason"] == ""


def test_cli_all_three(tmp_path: Path) -> None:
    """`python -m reportgen.child NAME` for this file's runner and its two siblings, started side by side
    because each child pays torch's import (~2 s) before doing anything."""
    names = ("activations", "losses", "optimizers")
    children = {
        name: subprocess.Popen(
            [sys.executable, "-m", "reportgen.child", name, "--registry", "runners.registry", "--out", str(tmp_path / name),
             "--config", "{}"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for name in names
    }
    for name, child in children.items():
        output, _ = child.communicate(timeout=120)
        assert child.returncode == 0, output.decode(errors="replace")
        record = json.loads((tmp_path / name / "result.json").read_text(encoding="utf-8"))
        assert record["status"] == "ok" and record["runner"] == name
        assert record["result"]["claims"] and record["result"]["figures"]
