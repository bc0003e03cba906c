"""activations runner: values against the math module, derivatives against torch autograd."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from reportgen.context import RunContext
from runners import activations


def run(tmp_path: Path, **overrides: float) -> dict:
    ctx = RunContext(out_dir=tmp_path, device="cpu", device_name="cpu", seed=0)
    return activations.run(activations.Config(**overrides), ctx).to_json()


def verdicts(result: dict) -> dict[str, str]:
    return {c["id"]: c["verdict"] for c in result["claims"]}


def test_default_values_against_math(tmp_path: Path) -> None:
    result = run(tmp_path)
    m = result["metrics"]
    s = 1.0 / (1.0 + math.exp(2.0))
    assert m["x"] == -2.0
    assert m["relu"] == 0.0 and m["d_relu"] == 0.0
    assert m["sigmoid"] == pytest.approx(s, abs=1e-15)
    assert m["d_sigmoid"] == pytest.approx(s * (1 - s), abs=1e-15)
    assert m["tanh"] == pytest.approx(math.tanh(-2.0), abs=1e-15)
    assert m["d_tanh"] == pytest.approx(1 - math.tanh(-2.0) ** 2, abs=1e-15)
    assert m["numpy_torch_max_abs_diff"] < 1e-12
    assert verdicts(result) == {"relu": "agrees", "sigmoid": "differs", "tanh": "differs"}


def test_reasons_are_computed(tmp_path: Path) -> None:
    claims = {c["id"]: c for c in run(tmp_path)["claims"]}
    assert f"{math.log(0.022 / 0.978):.3f}" in claims["sigmoid"]["reason"]
    assert f"{math.tanh(-1.0):.4f}" in claims["tanh"]["reason"]


def test_own_functions_match_torch_and_are_stable() -> None:
    x = np.array([-1000.0, -30.0, -2.0, 0.0, 1e-9, 2.0, 30.0, 1000.0])
    t = torch.tensor(x, requires_grad=True)
    for name, (f, df) in activations.OURS.items():
        y = activations.TORCH[name](t)
        (g,) = torch.autograd.grad(y.sum(), t)
        with np.errstate(over="raise", invalid="raise"):  # the stable formulas never overflow
            np.testing.assert_allclose(f(x), y.detach().numpy(), rtol=0, atol=1e-15)
            np.testing.assert_allclose(df(x), g.numpy(), rtol=0, atol=1e-15)


def test_files_and_json(tmp_path: Path) -> None:
    result = run(tmp_path)
    for name in ("curves", "derivatives"):
        assert (tmp_path / result["figures"][name]["path"]).is_file()
    table = result["tables"]["values"]
    assert table["columns"] == ["函数", "f(x)", "f'(x)", "文章给出的值"]
    assert [r[0] for r in table["rows"]] == ["ReLU", "Sigmoid", "Tanh"]
    json.dumps(result, allow_nan=False)


def test_other_x_changes_verdicts(tmp_path: Path) -> None:
    result = run(tmp_path, x=-1.0, points=11)
    assert verdicts(result)["tanh"] == "agrees"
    assert next(c for c in result["claims"] if c["id"] == "tanh")["reason"] == ""
    # "f(x) = 0" is exact, so a positive input no longer agrees
    assert verdicts(run(tmp_path, x=0.3, points=11))["relu"] == "differs"
