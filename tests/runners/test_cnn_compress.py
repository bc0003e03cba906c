"""001 §3.2.6: quantization and pruning of the CNN, checked on their own and through the runner's table."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny import run_tiny
from torch import nn

from reportgen.context import Upstream
from runners import cnn_compress
from runners.cnn_model.net import Net, param_count

WEIGHTS = 320 - 32 + 18_496 - 64 + 36_928 - 64 + 36_928 - 64 + 650 - 10  # conv and linear weights, no biases


def fresh() -> nn.Module:
    torch.manual_seed(0)
    return Net().eval()


@pytest.mark.parametrize("sparsity", [0.5, 0.8, 0.9])
def test_pruning_reaches_the_requested_sparsity(sparsity: float) -> None:
    model = fresh()
    pruned = cnn_compress.prune_global(model, sparsity)
    zeros = sum(int((m.weight == 0).sum()) for m, _ in cnn_compress.prunable(pruned))
    assert zeros == round(sparsity * WEIGHTS)  # global_unstructured prunes round(amount × n) weights
    assert cnn_compress.weight_sparsity(pruned) == pytest.approx(sparsity, abs=0.5 / WEIGHTS)
    for (m, _), (m0, _) in zip(cnn_compress.prunable(pruned), cnn_compress.prunable(model), strict=True):
        assert torch.equal(m.bias, m0.bias)  # biases are not pruned
        kept = m.weight != 0
        assert torch.equal(m.weight[kept], m0.weight[kept])  # survivors unchanged
        assert not hasattr(m, "weight_orig") and not m._forward_pre_hooks  # prune.remove made it permanent
    # global: the smallest surviving |w| is at least the largest pruned |w| across all layers at once
    survived = torch.cat([m.weight[m.weight != 0].abs() for m, _ in cnn_compress.prunable(pruned)])
    removed = torch.cat([m0.weight[m.weight == 0].abs() for (m, _), (m0, _) in
                         zip(cnn_compress.prunable(pruned), cnn_compress.prunable(model), strict=True)])
    assert survived.min() >= removed.max()


def test_dynamic_quantization_covers_linear_layers_only() -> None:
    model = fresh()
    int8 = cnn_compress.quantize(model)
    assert isinstance(int8.conv1, nn.Conv2d) and type(int8.conv1) is nn.Conv2d
    assert isinstance(int8.fc1, torch.ao.nn.quantized.dynamic.Linear)
    assert isinstance(int8.fc2, torch.ao.nn.quantized.dynamic.Linear)
    assert sum(p.numel() for p in cnn_compress.parameters(int8)) == param_count(model) == 93_322
    x = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        assert (int8(x) - model(x)).abs().max() < 0.05  # int8 weights: small, not zero, error


def test_sizes_dense_gzip_and_sparse(tmp_path: Path) -> None:
    model = fresh()
    dense, gz, sparse = cnn_compress.sizes(model, tmp_path, "float")
    assert dense == (tmp_path / "float.pt").stat().st_size and dense > 4 * 93_322
    assert sparse is not None and sparse > dense  # a dense model pays for the mask
    p_dense, p_gz, p_sparse = cnn_compress.sizes(cnn_compress.prune_global(model, 0.9), tmp_path, "p90")
    assert abs(p_dense - dense) < 0.01 * dense  # zeros stored densely take as much room as any float
    assert p_sparse is not None and p_sparse < 0.2 * dense and p_gz < 0.3 * dense
    # mask (1 bit each) + float32 non-zeros, plus the container's overhead
    assert p_sparse >= 93_322 / 8 + 4 * (93_322 - round(0.9 * WEIGHTS))
    assert cnn_compress.sizes(cnn_compress.quantize(model), tmp_path, "int8")[2] is None


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory, cnn_upstream: Upstream):
    overrides = {"test_limit": 256, "download": False, "latency_runs": 3, "batch_runs": 2, "curve": [0.5, 0.9]}
    out = tmp_path_factory.mktemp("compress")
    return run_tiny(cnn_compress, out, overrides, {"cnn": cnn_upstream}), out, cnn_upstream


def test_compression_table(result) -> None:
    res, out, cnn = result
    table = res.tables["compression"]
    assert table.columns == cnn_compress.COLUMNS
    assert [r[0] for r in table.rows] == ["float32 原始", "int8 动态量化（Linear 层）", "剪枝 50%（全局 L1，非结构化）",
                                          "剪枝 80%（全局 L1，非结构化）", "剪枝 90%（全局 L1，非结构化）"]
    base, int8, *pruned = table.rows
    assert base[7] == 1.0 and base[1] == round(res.metrics["float32_bytes"] / 1e3, 1)
    assert int8[1] < 0.8 * base[1] and int8[3] == "—"
    for row, s in zip(pruned, (0.5, 0.8, 0.9), strict=True):
        assert row[1] == pytest.approx(base[1], rel=0.01)  # dense storage does not shrink
        assert row[3] < base[3] and row[2] < base[2]
        assert row[7] == pytest.approx(1 - s * WEIGHTS / 93_322, abs=1e-4)  # biases are kept
        assert row[1] * 1e3 == pytest.approx(res.metrics[f"pruned{round(s * 100)}_bytes"], abs=50)
        assert 0.0 <= row[4] <= 1.0 and row[5] > 0 and row[6] > 0
    for key, s in (("pruned50", 0.5), ("pruned80", 0.8), ("pruned90", 0.9)):
        assert res.metrics[f"{key}_weight_sparsity"] == pytest.approx(s, abs=0.5 / WEIGHTS)
    # the received model scores as the cnn runner measured it (NCHW vs its training layout: rounding only)
    assert res.metrics["test_accuracy"] == cnn.metrics["test_accuracy"] and res.metrics["test_images"] == 256
    assert base[4] == pytest.approx(res.metrics["test_accuracy"], abs=1 / 256 + 1e-4)
    assert res.metrics["quantized_layers"] == "fc1, fc2"
    assert res.metrics["quantized_param_fraction"] == pytest.approx((36_928 + 650) / 93_322)
    assert (out / res.figures["sparsity"].path).is_file()
    assert res.series["sparsity"].x == [0.0, 0.5, 0.9]
    assert not list(out.glob("*.pt"))  # checkpoints are measured, not published
    assert res.tables["epochs"].rows == cnn.result["tables"]["epochs"]["rows"]  # cnn's training, repeated


def test_size_claim(result) -> None:
    (claim,) = result[0].claims
    assert (claim.id, claim.source, claim.verdict) == ("compression_reduces_size", "001 §3.2.6", "agrees")
    assert "按稠密格式保存仍为" in claim.reason
