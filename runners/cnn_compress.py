"""001 §3.2.6 模型压缩: dynamic int8 quantization and magnitude pruning of the trained §2.5 CNN.

The model is the cnn runner's (its weights file, RunnerSpec.needs): this runner trains nothing.

Every row of the table is measured in this run: the file torch.save writes, its gzip size, a
sparse encoding (bit mask + non-zero values), test accuracy and latency. Dense storage keeps one
float per weight whether it is zero or not, so pruning alone does not shrink the file: only a
compressed or sparse encoding turns zeros into saved bytes, and the page shows all three.
"""

from __future__ import annotations

import copy
import gzip
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

from reportgen.api import Result
from reportgen.context import RunContext
from runners.cnn_model import inference, weights
from runners.plotting import use_cjk_font

matplotlib.use("Agg")  # before pyplot is imported (in _figure): no display on the build machine

SOURCE = "001 §3.2.6"
STATEMENT = "模型压缩：对模型进行压缩，减少模型体积。"  # the article's bullet under 模型部署
COLUMNS = ["模型", "磁盘大小 (KB)", "gzip 后 (KB)", "稀疏存储 (KB)", "测试准确率", "单张延迟 (ms)", "每批延迟 (ms)", "非零参数比例"]


@dataclass(frozen=True)
class Config(inference.EvalConfig):
    sparsities: tuple[float, ...] = (0.5, 0.8, 0.9)  # rows of the table
    curve: tuple[float, ...] = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98)  # points of the accuracy figure
    batch: int = 64
    latency_runs: int = 100
    batch_runs: int = 20
    threads: int = 1  # for timing; see runners/cnn_onnx.py (OpenMP under contention on a shared machine)


def quantize(model: nn.Module) -> nn.Module:
    """int8 weights for Linear layers; activations are quantized on the fly per batch ("dynamic")."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch points eager-mode quantization users to torchao (not installed here)
        warnings.simplefilter("ignore")
        return quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)


def prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    return [(m, "weight") for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def prune_global(model: nn.Module, sparsity: float) -> nn.Module:
    """Zero the smallest |w| across all conv and linear weights at once (biases kept), then make it permanent."""
    pruned = copy.deepcopy(model)
    prune.global_unstructured(prunable(pruned), pruning_method=prune.L1Unstructured, amount=sparsity)
    for module, name in prunable(pruned):
        prune.remove(module, name)  # weight_orig * mask → a plain weight tensor with zeros in it
    return pruned


def parameters(model: nn.Module) -> list[torch.Tensor]:
    """Every weight and bias as float; a dynamically quantized Linear keeps its int8 weight in packed form."""
    found = []
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if callable(weight):  # torch.ao.nn.quantized.dynamic.Linear: weight() / bias() unpack
            found += [weight().dequantize(), module.bias()]
        elif isinstance(weight, torch.Tensor):
            found += [weight.detach()] + ([module.bias.detach()] if module.bias is not None else [])
    return found


def weight_sparsity(model: nn.Module) -> float:
    """Share of zeros among the prunable weights (what `amount` asks for)."""
    weights = [m.weight.detach().flatten() for m, _ in prunable(model)]
    return float((torch.cat(weights) == 0).float().mean())


def sizes(model: nn.Module, folder: Path, name: str) -> tuple[int, int, int | None]:
    """Bytes of the torch.save'd state_dict, of its gzip, and of a bit-mask + non-zeros encoding (float models)."""
    dense = folder / f"{name}.pt"
    torch.save(model.state_dict(), dense)
    gz = folder / f"{name}.pt.gz"
    gz.write_bytes(gzip.compress(dense.read_bytes(), compresslevel=9, mtime=0))
    state = model.state_dict()
    if not all(isinstance(v, torch.Tensor) and v.is_floating_point() for v in state.values()):
        return dense.stat().st_size, gz.stat().st_size, None
    sparse = {k: (torch.from_numpy(np.packbits(v.flatten().numpy() != 0)), v[v != 0], tuple(v.shape)) for k, v in state.items()}
    torch.save(sparse, folder / f"{name}.sparse.pt")
    return dense.stat().st_size, gz.stat().st_size, (folder / f"{name}.sparse.pt").stat().st_size


def _figure(result: Result, ctx: RunContext, curve: list[tuple[float, float]], base: float, int8: float) -> None:
    import matplotlib.pyplot as plt

    use_cjk_font()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    ax.plot([s for s, _ in curve], [a for _, a in curve], "o-", label="全局 L1 剪枝（不再训练）")
    ax.axhline(base, color="gray", linestyle="--", label=f"float32 原模型（{base:.2%}）")
    ax.axhline(int8, color="tab:green", linestyle=":", label=f"int8 动态量化，Linear 层（{int8:.2%}）")
    ax.set(xlabel="卷积与全连接权重的稀疏度", ylabel="测试准确率", title="准确率随稀疏度的变化")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    result.figure("sparsity", ctx.save_figure(fig, "sparsity"),
                  "剪枝比例（卷积与全连接权重中置零的比例）与测试准确率；剪枝后没有再训练。虚线为原模型，点线为 int8 动态量化。",
                  title="剪得越多，准确率掉得越多", role="main")


def run(config: Config, ctx: RunContext) -> Result:
    result = Result()
    cnn = ctx.upstream("cnn")
    model = weights.load_trained(weights.weights_file(cnn))  # CPU, NCHW: quantized kernels and timings are CPU ones
    weights.report_training(result, cnn)
    test = inference.eval_split(config)
    with inference.threads(config.threads) as threads:
        ctx.provenance["threads"] = threads
        _compress(result, config, ctx, model, test, threads)
    return result


def _compress(result: Result, config: Config, ctx: RunContext, model: nn.Module, test: inference.EvalSplit,
              threads: int) -> None:
    xt, yt = test.x, test.y
    result.metric("test_images", len(yt), label="评估图片数", unit="张")
    total = sum(p.numel() for p in parameters(model))
    int8 = quantize(model)
    quantized = [n for n, m in int8.named_modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    covered = sum(p.numel() for n, p in model.named_parameters() if n.split(".")[0] in quantized)
    variants: list[tuple[str, str, nn.Module]] = [("float32", "float32 原始", model), ("int8", "int8 动态量化（Linear 层）", int8)]
    variants += [(f"pruned{round(s * 100)}", f"剪枝 {s:.0%}（全局 L1，非结构化）", prune_global(model, s)) for s in config.sparsities]

    rows: list[list[Any]] = []
    by_key: dict[str, list[Any]] = {}
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        # files go to a scratch folder: only their sizes matter, and the site should not publish checkpoints
        for key, label, variant in variants:
            dense, gz, sparse = sizes(variant, Path(tmp), key)
            acc, _ = inference.accuracy(variant, xt, yt)
            one = inference.median_seconds(lambda v=variant: v(xt[:1]), config.latency_runs)
            batch = inference.median_seconds(lambda v=variant: v(xt[: config.batch]), config.batch_runs)
            nonzero = sum(int((p != 0).sum()) for p in parameters(variant)) / total
            by_key[key] = [label, dense / 1e3, gz / 1e3, "—" if sparse is None else sparse / 1e3, acc, one * 1e3, batch * 1e3, nonzero]
            rows.append([label, round(dense / 1e3, 1), round(gz / 1e3, 1), "—" if sparse is None else round(sparse / 1e3, 1),
                         round(acc, 4), inference.sig3(one * 1e3), inference.sig3(batch * 1e3), round(nonzero, 4)])
            main = "main" if key in ("float32", "int8") else "body"
            result.metric(f"{key}_bytes", dense, label=f"{label}：文件大小", unit="字节", role=main)
            result.metric(f"{key}_gzip_bytes", gz, label=f"{label}：gzip 后大小", unit="字节")
            if sparse is not None:
                result.metric(f"{key}_sparse_bytes", sparse, label=f"{label}：稀疏存储大小", unit="字节")
            result.metric(f"{key}_accuracy", acc, label=f"{label}：测试准确率", role=main)
            result.metric(f"{key}_nonzero_fraction", nonzero, label=f"{label}：非零参数比例")
            result.metric(f"{key}_image_latency_seconds", one, label=f"{label}：单张图片延迟", unit="秒", role="detail")
            result.metric(f"{key}_batch_latency_seconds", batch, label=f"{label}：一批延迟", unit="秒", role="detail")
            if key.startswith("pruned"):
                result.metric(f"{key}_weight_sparsity", weight_sparsity(variant), label=f"{label}：权重稀疏度")
        curve = [(0.0, by_key["float32"][4])] + [(s, inference.accuracy(prune_global(model, s), xt, yt)[0]) for s in config.curve]
    result.table("compression", COLUMNS, rows, caption=(
        f"全部在本次运行中测得。磁盘大小：torch.save(state_dict) 写出的文件；gzip：该文件 gzip -9 后；稀疏存储：每个浮点张量存一张位掩码（每个元素 1 bit）"
        f"加非零值（float32），int8 模型的权重是打包格式，不适用。准确率在 {len(yt):,} 张评估图片上计算。"
        f"延迟为中位数（批大小 1 计时 {config.latency_runs} 次、批大小 {config.batch} 计时 {config.batch_runs} 次，{threads} 个线程，CPU）。"
        "非零参数比例按全部权重与偏置计（int8 模型按反量化后的值）。"), title="量化与剪枝：体积、准确率与延迟", role="main")
    result.metric("quantized_layers", ", ".join(quantized), label="被量化的层")
    result.metric("quantized_param_fraction", covered / total, label="被量化的参数所占比例")
    result.metric("params_total", total, label="参数总数")
    result.add_series("sparsity", "sparsity", [s for s, _ in curve], {"test_accuracy": [a for _, a in curve]},
                      title="准确率随稀疏度的变化")
    _figure(result, ctx, curve, by_key["float32"][4], by_key["int8"][4])
    _claim(result, by_key, config)


def _claim(result: Result, by_key: dict[str, list[Any]], config: Config) -> None:
    base = by_key["float32"][1]
    top = by_key[f"pruned{round(max(config.sparsities) * 100)}"]
    int8 = by_key["int8"][1]
    smaller = int8 < base and isinstance(top[3], float) and top[3] < base
    result.check(
        "compression_reduces_size", source=SOURCE, statement=STATEMENT, article="减少模型体积",
        computed="减少模型体积" if smaller else "未减少模型体积",
        reason=(f"本机实测（KB，torch.save 的 state_dict）：原模型 {base:.1f}；int8 动态量化后 {int8:.1f}（{int8 / base:.0%}）；"
                f"{top[0]}后按稠密格式保存仍为 {top[1]:.1f}，gzip 后 {top[2]:.1f}，稀疏存储 {top[3] if isinstance(top[3], str) else f'{top[3]:.1f}'}，"
                f"准确率 {by_key['float32'][4]:.2%} → 量化 {by_key['int8'][4]:.2%}、剪枝 {top[4]:.2%}。"
                "量化直接减小体积；剪枝只有配合压缩或稀疏格式存储才减小体积。"),
        part="压缩能否减小模型体积",
    )
