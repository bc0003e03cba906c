"""losses runner: MSE and CE against torch; the GAN claims are judged, not computed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from reportgen.context import RunContext
from runners import losses


def run(tmp_path: Path, **overrides: tuple[float, ...]) -> dict:
    ctx = RunContext(out_dir=tmp_path, device="cpu", device_name="cpu", seed=0)
    return losses.run(losses.Config(**overrides), ctx).to_json()


def claims(result: dict) -> dict[str, dict]:
    return {c["id"]: c for c in result["claims"]}


def test_losses_against_torch(tmp_path: Path) -> None:
    m = run(tmp_path)["metrics"]
    y = torch.tensor([0.1, 0.9], dtype=torch.float64)
    p = torch.tensor([0.05, 0.95], dtype=torch.float64)
    assert m["mse_half_sum"] == pytest.approx(0.5 * F.mse_loss(p, y, reduction="sum").item(), abs=1e-15)
    assert m["mse_mean"] == pytest.approx(F.mse_loss(p, y).item(), abs=1e-15)
    assert m["mse_sum"] == pytest.approx(F.mse_loss(p, y, reduction="sum").item(), abs=1e-15)
    assert m["ce"] == pytest.approx(-(y * torch.log(p)).sum().item(), abs=1e-15)
    assert m["ce_log10"] == pytest.approx(-(y * torch.log10(p)).sum().item(), abs=1e-15)
    assert m["ce_log2"] == pytest.approx(-(y * torch.log2(p)).sum().item(), abs=1e-15)
    assert m["bce_mean"] == pytest.approx(F.binary_cross_entropy(p, y).item(), abs=1e-15)
    assert m["torch_max_abs_diff"] < 1e-15
    # no logarithm base gives the article's 0.031
    assert all(abs(m[k] - 0.031) > 0.05 for k in ("ce", "ce_log10", "ce_log2", "bce_mean"))


def test_gan_implied_values(tmp_path: Path) -> None:
    m = run(tmp_path)["metrics"]
    assert m["gan_d_of_gz_implied"] == pytest.approx(math.exp(-0.025), abs=1e-15)
    assert m["gan_l_d_lower_bound"] == pytest.approx(-math.log(1 - math.exp(-0.025)), rel=1e-12)
    assert m["gan_l_d_lower_bound"] == pytest.approx(3.70, abs=0.005)


def test_verdicts(tmp_path: Path) -> None:
    c = claims(run(tmp_path))
    assert {k: v["verdict"] for k, v in c.items()} == {
        "mse": "differs",
        "ce": "differs",
        "gan_g": "not_computable",
        "gan_d": "contradictory",
    }
    assert c["gan_g"]["computed"] is None and c["gan_g"]["reason"]
    assert c["gan_d"]["computed"] > 3.7 > 0.056
    assert all(v["source"] == "000 §2.4.2" for v in c.values())


def test_files_and_json(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert (tmp_path / result["figures"]["gan_losses"]["path"]).is_file()
    assert result["tables"]["losses"]["columns"] == ["损失", "公式", "计算值", "文章给出的值"]
    json.dumps(result, allow_nan=False)


def test_other_inputs_change_verdicts(tmp_path: Path) -> None:
    # ½·0.3² = 0.045 and −ln(0.9695) ≈ 0.031: inputs for which the article's numbers would hold
    assert claims(run(tmp_path, y_hat=(0.4, 0.9)))["mse"]["verdict"] == "agrees"
    ce = claims(run(tmp_path, y=(0.0, 1.0), y_hat=(0.5, 0.9695)))["ce"]
    assert ce["verdict"] == "agrees" and ce["reason"] == ""
    with pytest.raises(ValueError):
        run(tmp_path, y_hat=(0.5,))
