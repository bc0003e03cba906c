"""000 §2.6.4 and 001 §9.3 (计算资源需求): what it costs to hold and train the models gpt_params counts.

For each model: the memory of its weights (fp32, bf16) and of mixed-precision Adam training state;
training compute by C ≈ 6·N·D for the tokens its paper reports; that compute as time on this
machine's measured matrix-multiply rate and on one H100 at a stated utilisation; and the number of
141 GB GPUs needed just to hold the training state. Every constant is in CONSTANTS with its source,
so a reader can redo the arithmetic. The parameter counts come from the gpt_params runner
(RunnerSpec.needs), so the two pages count the same models.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import matplotlib
import torch

from reportgen.api import Result
from reportgen.context import RunContext
from runners.gpt_model.configs import PUBLISHED
from runners.plotting import use_cjk_font

matplotlib.use("Agg")  # headless: pyplot is imported after this


@dataclass(frozen=True)
class Constant:
    name: str
    value: float
    unit: str
    source: str


CONSTANTS = {
    "fp32_bytes": Constant("fp32 每个参数的字节数", 4, "B", "IEEE 754 binary32"),
    "bf16_bytes": Constant("bf16 每个参数的字节数", 2, "B", "bfloat16 格式（16 位）"),
    "adam_state_bytes": Constant(
        "混合精度 Adam 训练状态，每个参数的字节数", 16, "B",
        "Rajbhandari et al. 2020（ZeRO，arXiv:1910.02054）§3.1：fp16/bf16 权重 2 + 梯度 2 + fp32 主权重 4 + "
        "Adam 一阶矩 4 + 二阶矩 4；不含激活值与临时缓冲"),
    "flop_per_param_token": Constant(
        "训练每个参数每个 token 的浮点运算数（C ≈ 6·N·D 的 6）", 6, "FLOP",
        "Kaplan et al. 2020（arXiv:2001.08361）§2.1：前向 2N、反向 4N，忽略与上下文长度有关的注意力项；"
        "GPT-3 论文表 D.1 同样按 6 计"),
    "h100_peak": Constant("H100 SXM 稠密 BF16 峰值", 989.4e12, "FLOP/s",
                          "NVIDIA H100 Tensor Core GPU Architecture 白皮书（SXM5：989.4 TFLOPS 稠密，1,979 含稀疏）"),
    "utilisation": Constant(
        "假设的模型算力利用率（MFU）", 0.40, "",
        "假设值；参考：PaLM 540B 在 TPU v4 上 46.2%（Chowdhery et al. 2022，arXiv:2204.02311），"
        "Megatron-LM 在 A100 上达到峰值的 52%（Narayanan et al. 2021，arXiv:2104.04473）"),
    "gpu_memory": Constant("一块 GPU 的显存", 141e9, "B", "NVIDIA H200：141 GB HBM3e（按 141×10⁹ 字节计）"),
    "gpt3_paper_compute": Constant("GPT-3 175B 论文报告的训练计算量", 3.14e23, "FLOP", "Brown et al. 2020，表 D.1"),
}
SECONDS_PER_YEAR = 365.25 * 86400


@dataclass(frozen=True)
class Config:
    matmul_size: int = 0  # n of the n×n×n product timed (0: 2048 on a CPU, 8192 on a GPU)
    repeats: int = 5  # the best of these is the rate
    seed: int = 0


def matmul_rate(device: str, n: int, repeats: int, dtype: torch.dtype) -> float:
    """Best FLOP/s of torch.mm on two n×n matrices (2n³ operations), after one warm-up product."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=generator).to(device=device, dtype=dtype)
    best = math.inf
    for attempt in range(repeats + 1):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        torch.mm(a, b)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if attempt:  # the first product warms caches and picks kernels
            best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best


def readable_seconds(seconds: float) -> str:
    """1.2e9 s → "38.0 年"; days, hours or seconds below a year."""
    if seconds >= SECONDS_PER_YEAR:
        return f"{seconds / SECONDS_PER_YEAR:,.1f} 年"
    if seconds >= 86400:
        return f"{seconds / 86400:,.1f} 天"
    if seconds >= 3600:
        return f"{seconds / 3600:,.1f} 小时"
    if seconds >= 60:
        return f"{seconds / 60:,.1f} 分钟"
    return f"{seconds:,.1f} 秒"


def costs(params: int, tokens: int | None, rate: float) -> dict[str, float | int | None]:
    """Memory, compute and time of one model with `params` parameters trained on `tokens` tokens."""
    c = {k: v.value for k, v in CONSTANTS.items()}
    state = params * c["adam_state_bytes"]
    per_billion = c["flop_per_param_token"] * params * 1e9  # compute of 10⁹ training tokens
    compute = c["flop_per_param_token"] * params * tokens if tokens else None
    h100 = c["h100_peak"] * c["utilisation"]
    return {
        "weights_fp32_bytes": params * c["fp32_bytes"],
        "weights_bf16_bytes": params * c["bf16_bytes"],
        "training_state_bytes": state,
        "gpus_for_state": math.ceil(state / c["gpu_memory"]),
        "flop_per_billion_tokens": per_billion,
        "per_billion_tokens_machine_seconds": per_billion / rate,
        "per_billion_tokens_h100_seconds": per_billion / h100,
        "train_flop": compute,
        "train_machine_seconds": compute / rate if compute else None,
        "train_h100_seconds": compute / h100 if compute else None,
    }


def _figure(names: list[str], table: dict[str, dict[str, float | int | None]], rate: float, device: str) -> object:
    import matplotlib.pyplot as plt

    use_cjk_font()
    fig, (ax_mem, ax_time) = plt.subplots(1, 2, figsize=(11.0, 4.2))
    x = range(len(names))
    width = 0.27
    for offset, key, label in ((-width, "weights_bf16_bytes", "权重，bf16"), (0, "weights_fp32_bytes", "权重，fp32"),
                               (width, "training_state_bytes", "混合精度 Adam 训练状态")):
        ax_mem.bar([i + offset for i in x], [float(table[n][key]) / 1e9 for n in names], width, label=label)
    ax_mem.axhline(CONSTANTS["gpu_memory"].value / 1e9, color="black", linestyle="--", linewidth=1, label="一块 141 GB GPU")
    ax_mem.set(yscale="log", ylabel="GB（10⁹ 字节）", title="容纳模型所需内存")
    for offset, key, label in ((-width / 2, "per_billion_tokens_machine_seconds", f"本机（{device}，{rate / 1e9:.0f} GFLOP/s）"),
                               (width / 2, "per_billion_tokens_h100_seconds", f"一块 H100，{CONSTANTS['h100_peak'].value / 1e12:,.1f} TFLOP/s 的 {CONSTANTS['utilisation'].value:.0%}")):
        ax_time.bar([i + offset for i in x], [float(table[n][key]) / 3600 for n in names], width, label=label)
    ax_time.set(yscale="log", ylabel="每 10⁹ 个训练 token 的小时数", title="训练时间，C ≈ 6·N·D")
    for ax in (ax_mem, ax_time):
        ax.set_xticks(list(x), names, rotation=20)
        ax.grid(alpha=0.3, axis="y", which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def run(config: Config, ctx: RunContext) -> Result:
    result = Result()
    counts = ctx.upstream("gpt_params").metrics
    on_gpu = ctx.device.startswith("cuda")
    n = config.matmul_size or (8192 if on_gpu else 2048)
    dtype = torch.bfloat16 if on_gpu else torch.float32  # what training would use on this device
    ctx.progress(f"timing torch.mm {n}×{n} ({dtype}) on {ctx.device}")
    rate = matmul_rate(ctx.device, n, config.repeats, dtype)
    ctx.provenance["threads"] = torch.get_num_threads()
    result.metric("matmul_flop_per_s", rate)
    result.text("matmul", f"torch.mm，{n}×{n} 乘 {n}×{n}，{str(dtype).removeprefix('torch.')}，{ctx.device}（{ctx.device_name}），"
                f"{torch.get_num_threads()} 个线程，{config.repeats} 次取最快：{rate / 1e9:,.1f} GFLOP/s")

    result.table("constants", ["常数", "值", "单位", "来源"],
                 [[c.name, c.value, c.unit, c.source] for c in CONSTANTS.values()], title="常数及其来源",
                 caption="本页用到的全部常数及其来源；下表每一格都只由这些常数、参数量与本机测得的矩阵乘速率算出。")
    table, names = {}, []
    rows = []
    for model in PUBLISHED:
        params = int(counts[f"{model.key}_params"])
        cost = costs(params, model.tokens, rate)
        table[model.name] = cost
        names.append(model.name)
        for key, value in cost.items():
            if value is not None:
                result.metric(f"{model.key}_{key}", value)
        train = "论文未报告" if model.tokens is None else f"{model.tokens / 1e9:,.0f}B"
        rows.append([
            model.name, params, f"{float(cost['weights_fp32_bytes']) / 1e9:,.1f}", f"{float(cost['weights_bf16_bytes']) / 1e9:,.1f}",
            f"{float(cost['training_state_bytes']) / 1e9:,.1f}", cost["gpus_for_state"], train,
            "—" if cost["train_flop"] is None else f"{float(cost['train_flop']):.3g}",
            "—" if cost["train_machine_seconds"] is None else readable_seconds(float(cost["train_machine_seconds"])),
            "—" if cost["train_h100_seconds"] is None else readable_seconds(float(cost["train_h100_seconds"])),
            readable_seconds(float(cost["per_billion_tokens_machine_seconds"])),
            readable_seconds(float(cost["per_billion_tokens_h100_seconds"])),
        ])
    result.table(
        "costs",
        ["模型", "参数量 N", "权重 fp32 (GB)", "权重 bf16 (GB)", "训练状态 (GB)", "装下训练状态的 141 GB GPU 数",
         "训练 token 数 D", "训练计算量 6·N·D (FLOP)", "本机用时", "一块 H100 用时", "本机每 10 亿 token", "H100 每 10 亿 token"],
        rows, title="各模型的内存、计算量与训练时间", role="main",
        caption="GB 为 10⁹ 字节。训练状态只算权重、梯度与 Adam 状态，不含激活值；GPU 数只是装下这些状态的下限，"
                "不是训练所需的卡数。GPT-2 论文没有报告训练 token 数，所以只给每 10 亿 token 的用时。",
    )
    gpt3 = table["GPT-3 175B"]
    paper = CONSTANTS["gpt3_paper_compute"].value
    result.metric("gpt3_compute_vs_paper", float(gpt3["train_flop"] or 0) / paper)
    # the years on one H100 follow from the constants alone; the years on this machine are a timing (in the table)
    result.metric("gpt3_train_h100_years", float(gpt3["train_h100_seconds"] or 0) / SECONDS_PER_YEAR)
    result.metric("gpt3_training_state_gb", float(gpt3["training_state_bytes"]) / 1e9)
    result.metric("utilisation", CONSTANTS["utilisation"].value)
    result.figure("costs", ctx.save_figure(_figure(names, table, rate, ctx.device), "costs"), title="内存与训练时间（对数坐标）",
                  role="main",
                  caption="左：装下各模型所需的内存（对数坐标；虚线为一块 141 GB GPU）。右：每 10 亿训练 token 的用时"
                          "（对数坐标），本机按测得的矩阵乘速率（假设训练全程达到该速率，是乐观的下限），H100 按 "
                          f"{CONSTANTS['utilisation'].value:.0%} 的峰值。")
    return result
