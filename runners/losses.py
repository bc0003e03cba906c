"""000 §2.4.2: MSE, cross-entropy and the GAN losses for Y = [0.1, 0.9], Ŷ = [0.05, 0.95].

MSE and CE are computed with our own numpy formulas (checked against torch in the tests and by
`torch_max_abs_diff` here). The GAN losses need discriminator outputs D(·) that the article never
gives, so the runner reads back what the article's L_G implies and shows that its L_D cannot follow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from reportgen.api import Result, parse_stated_number
from reportgen.context import RunContext
from runners.plotting import use_cjk_font

matplotlib.use("Agg")  # headless: runners only ever write PNGs; pyplot is imported after this

SOURCE = "000 §2.4.2"
STATEMENT = (
    "假设真实标签 Y = [0.1, 0.9]，预测结果 Ŷ = [0.05, 0.95]，则：MSE函数的输出为 L(MSE) = 0.045；"
    "CE函数的输出为 L(CE) ≈ 0.031；GAN中的生成器损失为 L_G = -log(D(G(Z))) ≈ 0.025；"
    "GAN中的判别器损失为 L_D = -log(D(X)) - log(1 - D(G(Z))) ≈ 0.056"
)
ARTICLE = {"mse": "0.045", "ce": "0.031", "gan_g": "0.025", "gan_d": "0.056"}


@dataclass(frozen=True)
class Config:
    y: tuple[float, ...] = (0.1, 0.9)
    y_hat: tuple[float, ...] = (0.05, 0.95)


def mse_half_sum(y: np.ndarray, y_hat: np.ndarray) -> float:
    """The article's formula: L = 1/2 Σ (y_i − ŷ_i)²."""
    return float(0.5 * np.sum((y - y_hat) ** 2))


def cross_entropy(y: np.ndarray, y_hat: np.ndarray, base: float = math.e) -> float:
    """The article's formula: L = −Σ y_i log ŷ_i, in the given logarithm base."""
    return float(-np.sum(y * np.log(y_hat)) / math.log(base))


def generator_loss(d_of_gz: np.ndarray) -> np.ndarray:
    return -np.log(d_of_gz)


def discriminator_loss(d_of_x: float, d_of_gz: np.ndarray) -> np.ndarray:
    return -np.log(d_of_x) - np.log1p(-d_of_gz)


def torch_losses(y: np.ndarray, y_hat: np.ndarray) -> dict[str, float]:
    """The same quantities from torch, as an independent implementation to compare with."""
    ty, tp = torch.tensor(y, dtype=torch.float64), torch.tensor(y_hat, dtype=torch.float64)
    return {
        "mse_half_sum": 0.5 * F.mse_loss(tp, ty, reduction="sum").item(),
        "mse_mean": F.mse_loss(tp, ty).item(),
        "mse_sum": F.mse_loss(tp, ty, reduction="sum").item(),
        "ce": -(ty * torch.log(tp)).sum().item(),
        "bce_mean": F.binary_cross_entropy(tp, ty).item(),
    }


def plot_gan(d_gz_implied: float, l_g: float, l_d: float) -> Figure:
    import matplotlib.pyplot as plt

    use_cjk_font()
    p = np.linspace(1e-3, 1 - 1e-3, 999)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(p, generator_loss(p), label=r"$L_G = -\log D(G(Z))$")
    ax.plot(p, discriminator_loss(1.0, p), label=r"$L_D$, $D(X) = 1$")
    ax.plot(p, discriminator_loss(0.5, p), label=r"$L_D$, $D(X) = 0.5$")
    ax.axhline(l_g, color="C0", linestyle="--", linewidth=1, label=f"文章的 $L_G$ = {l_g:g}")
    ax.axhline(l_d, color="C1", linestyle="--", linewidth=1, label=f"文章的 $L_D$ = {l_d:g}")
    ax.axvline(d_gz_implied, color="gray", linestyle=":", linewidth=1)
    # where L_D can be at best once D(G(Z)) is fixed by the article's L_G (D(X) = 1)
    ax.plot([d_gz_implied], discriminator_loss(1.0, np.array([d_gz_implied])), "o", color="C1")
    ax.annotate(
        f"D(G(Z)) = {d_gz_implied:.3f}\n由文章的 $L_G$ 反推",
        xy=(d_gz_implied, l_g),
        xytext=(0.45, 0.012),
        arrowprops={"arrowstyle": "->", "color": "gray"},
    )
    ax.set_yscale("log")  # the article's values (0.025, 0.056) and the bound (~3.7) span decades
    ax.set_ylim(5e-3, 20)
    ax.set_xlabel("D(G(Z))")
    ax.set_ylabel("损失（自然对数）")
    ax.set_title("GAN 损失随判别器对生成样本的输出 D(G(Z)) 的变化")
    ax.legend(fontsize=8, loc="upper center")
    ax.grid(alpha=0.3, which="both")
    return fig


def run(config: Config, ctx: RunContext) -> Result:
    y = np.asarray(config.y, dtype=np.float64)
    y_hat = np.asarray(config.y_hat, dtype=np.float64)
    if y.shape != y_hat.shape:
        raise ValueError(f"y and y_hat must have the same length, got {y.shape} and {y_hat.shape}")
    result = Result()

    ours = {
        "mse_half_sum": mse_half_sum(y, y_hat),
        "mse_mean": float(np.mean((y - y_hat) ** 2)),
        "mse_sum": float(np.sum((y - y_hat) ** 2)),
        "ce": cross_entropy(y, y_hat),
        # binary CE also counts the (1−y)·log(1−ŷ) terms; shown because it is what F.binary_cross_entropy means
        "bce_mean": float(-np.mean(y * np.log(y_hat) + (1 - y) * np.log1p(-y_hat))),
    }
    theirs = torch_losses(y, y_hat)
    labels = {"mse_half_sum": "MSE（文章公式 ½Σ(y−ŷ)²）", "mse_mean": "MSE（均值）", "mse_sum": "MSE（求和）",
              "ce": "交叉熵（自然对数）", "bce_mean": "二元交叉熵（均值）"}
    for name, value in ours.items():
        result.metric(name, value, label=labels[name], role="main" if name in ("mse_half_sum", "ce") else "body")
    result.metric("ce_log10", cross_entropy(y, y_hat, base=10.0), label="交叉熵（log10）")
    result.metric("ce_log2", cross_entropy(y, y_hat, base=2.0), label="交叉熵（log2）")
    result.metric("torch_max_abs_diff", max(abs(ours[k] - theirs[k]) for k in ours), label="numpy 与 torch 的最大绝对差",
                  role="detail")

    # GAN: the article's L_G fixes D(G(Z)); with that, L_D is bounded below whatever D(X) is
    l_g_stated, _ = parse_stated_number(ARTICLE["gan_g"])
    l_d_stated, _ = parse_stated_number(ARTICLE["gan_d"])
    d_gz = math.exp(-l_g_stated)
    l_d_bound = -math.log1p(-d_gz)  # D(X) = 1 is the best case: −log D(X) ≥ 0
    # and the other way round: L_D ≈ 0.056 needs D(G(Z)) ≤ 1 − e^−0.056, i.e. L_G at least this
    l_g_bound = -math.log(-math.expm1(-l_d_stated))
    result.metric("gan_d_of_gz_implied", d_gz, label="由文章 L_G 反推的 D(G(Z))")
    result.metric("gan_l_d_lower_bound", l_d_bound, label="L_D 的下界（由文章 L_G 反推）", role="main")
    result.metric("gan_l_g_lower_bound_from_l_d", l_g_bound, label="L_G 的下界（由文章 L_D 反推）")

    m = result.metrics
    common = {"source": SOURCE, "statement": STATEMENT}
    mse_claim = result.check(
        "mse",
        article=ARTICLE["mse"],
        computed=m["mse_half_sum"],
        part="均方误差 MSE",
        reason=(
            f"按文章自己的公式 ½Σ(y−ŷ)² 得 {m['mse_half_sum']:.4g}；均值形式（torch 的 mse_loss）为 "
            f"{m['mse_mean']:.4g}，求和形式为 {m['mse_sum']:.4g}，都不是 {ARTICLE['mse']}。"
        ),
        **common,
    )
    ce_claim = result.check(
        "ce",
        article=ARTICLE["ce"],
        computed=m["ce"],
        part="交叉熵 CE",
        reason=(
            f"−Σ y·ln ŷ = {m['ce']:.4f}；换成 log10 为 {m['ce_log10']:.4f}，log2 为 {m['ce_log2']:.4f}，"
            f"二元交叉熵（均值）为 {m['bce_mean']:.4f}，没有一种得到 {ARTICLE['ce']}。"
        ),
        **common,
    )
    for claim in (mse_claim, ce_claim):
        if claim.verdict == "agrees":  # the reasons explain a mismatch; another config may agree
            claim.reason = ""
    readings = "，".join(f"−ln {p:g} = {-math.log(p):.3f}" for p in y_hat)
    result.not_computable(
        "gan_g",
        article=ARTICLE["gan_g"],
        part="生成器损失 L_G",
        reason=(
            "L_G 需要判别器对生成样本的输出 D(G(Z))，文章没有给出任何判别器、生成器或其输出；"
            f"Y 与 Ŷ 是标签和预测，不是 D(·)。即便把 Ŷ 的分量当作 D(G(Z))，也只得到 {readings}，"
            f"没有 {ARTICLE['gan_g']}。反推：L_G ≈ {ARTICLE['gan_g']} 意味着 D(G(Z)) = e^(−{ARTICLE['gan_g']}) "
            f"≈ {d_gz:.4f}。"
        ),
        **common,
    )
    result.contradictory(
        "gan_d",
        article=ARTICLE["gan_d"],
        part="判别器损失 L_D",
        computed=l_d_bound,
        reason=(
            f"文章的 L_G ≈ {ARTICLE['gan_g']} 意味着 D(G(Z)) ≈ {d_gz:.4f}，于是 −log(1 − D(G(Z))) ≈ "
            f"{l_d_bound:.3f}；而 −log D(X) ≥ 0，所以 L_D ≥ {l_d_bound:.3f}（D(X) = 1 时取等），"
            f"不可能 ≈ {ARTICLE['gan_d']}。反过来，L_D ≈ {ARTICLE['gan_d']} 要求 L_G ≥ {l_g_bound:.2f}。"
            "两个数不可能出自同一个判别器。"
        ),
        **common,
    )

    result.table(
        "losses",
        ["损失", "公式", "计算值", "文章给出的值"],
        [
            ["MSE（文章公式）", "½ Σ (y−ŷ)²", m["mse_half_sum"], ARTICLE["mse"]],
            ["MSE（均值，torch 默认）", "(1/n) Σ (y−ŷ)²", m["mse_mean"], ""],
            ["MSE（求和）", "Σ (y−ŷ)²", m["mse_sum"], ""],
            ["CE（自然对数）", "−Σ y ln ŷ", m["ce"], ARTICLE["ce"]],
            ["CE（log10）", "−Σ y log10 ŷ", m["ce_log10"], ""],
            ["CE（log2）", "−Σ y log2 ŷ", m["ce_log2"], ""],
            ["二元交叉熵（均值）", "−(1/n) Σ [y ln ŷ + (1−y) ln(1−ŷ)]", m["bce_mean"], ""],
            ["L_G", "−ln D(G(Z))", "无法计算（文章未给 D）", ARTICLE["gan_g"]],
            ["L_D 下界（由文章的 L_G 反推）", "−ln(1 − D(G(Z))), D(X) = 1", l_d_bound, ARTICLE["gan_d"]],
        ],
        caption=(
            f"Y = {list(config.y)}，Ŷ = {list(config.y_hat)}。numpy float64 计算，已与 torch 核对"
            f"（最大绝对误差 {m['torch_max_abs_diff']:.1e}）。"
        ),
        title="各种损失的计算值",
        role="main",
    )

    path = ctx.save_figure(plot_gan(d_gz, l_g_stated, l_d_stated), "gan_losses")
    result.figure(
        "gan_losses",
        path,
        (
            "L_G 与 L_D（D(X) = 1 和 0.5）随 D(G(Z)) 的变化，虚线为文章给出的 L_G 与 L_D。"
            f"L_G = {ARTICLE['gan_g']} 对应 D(G(Z)) ≈ {d_gz:.3f}，此处 L_D 曲线都在 {l_d_bound:.2f} 以上。"
        ),
        title="GAN 的两个损失不可能同时成立",
    )
    return result
