"""000 §2.3.3: the article's GAN at exactly its sizes, trained with the losses of its §2.4.2.

G = Linear(100, 784) + sigmoid, D = Linear(784, 1) + sigmoid. L_D = −log D(x) − log(1 − D(G(z))) and
L_G = −log D(G(z)) (batch means). The fixed-noise samples after every epoch show what a single
linear layer can learn; the article's weight shapes are checked against the real modules.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.nn import functional as F

from reportgen.api import Claim, Result
from reportgen.context import RunContext
from runners.mnist.loader import load_mnist
from runners.plotting import use_cjk_font
from runners.training import loop, options
from runners.training.architecture import LAYER_COLUMNS, graph_of, layer_rows, trace
from runners.training.metric_labels import LABELS, metric

matplotlib.use("Agg")  # headless: runners only ever write PNGs; pyplot is imported after this

SOURCE = "000 §2.3.3"
STATEMENT = (
    "假设生成器的输入噪声维度为 100，生成器的输出维度为 784。判别器的输入维度为 784。"
    "生成器的权重矩阵为 784x100，偏置矩阵为 1x784。判别器的权重矩阵为 784x1，偏置矩阵为 1。"
)
OBJECTIVE_STATEMENT = (
    "§2.3.3：生成器损失 L_G = -D(G(Z))；判别器损失 L_D = -D(X) - D(G(Z))；优化目标：最小化 L_G + L_D"
    "（前一段伪代码：最小化 D(X) + D(G(Z))）。§2.4.2：L_G = -log(D(G(Z)))，L_D = -log(D(X)) - log(1 - D(G(Z)))"
)

BETA2 = 0.999  # Adam's second-moment decay, both networks (torch's default)


@dataclass(frozen=True)
class Config:
    profile: str = "auto"  # auto: full on an accelerator, quick on a CPU
    data_dir: str = ""
    download: bool = True
    seed: int = 0
    quick_train: int = 8000  # training images in the quick profile
    epochs: int = 20  # full profile
    quick_epochs: int = 5
    batch_size: int = 64
    lr: float = 2e-4  # Adam, both networks
    beta1: float = 0.5
    noise_dim: int = 100
    samples: int = 16  # fixed noise vectors drawn once, shown after every epoch


class Generator(nn.Module):
    def __init__(self, noise_dim: int = 100, pixels: int = 784) -> None:
        super().__init__()
        self.fc = nn.Linear(noise_dim, pixels)
        self.act = nn.Sigmoid()  # ours: keeps pixels in [0, 1] like the data; the article names none

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(z))


class Discriminator(nn.Module):
    def __init__(self, pixels: int = 784) -> None:
        super().__init__()
        self.fc = nn.Linear(pixels, 1)
        self.act = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x.reshape(x.shape[0], -1))).squeeze(1)


@dataclass
class Step:
    """One alternating update; per-sample D outputs are kept so the losses can be checked by hand."""

    l_d: torch.Tensor
    l_g: torch.Tensor
    d_real: torch.Tensor  # D(x), before D's update
    d_fake: torch.Tensor  # D(G(z)), before D's update (what L_D used)
    d_fake_after: torch.Tensor  # D(G(z)) after D's update (what L_G used)


def train_step(g: Generator, d: Discriminator, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
               real: torch.Tensor, z: torch.Tensor) -> Step:
    fake = g(z)
    d_real, d_fake = d(real), d(fake.detach())
    # binary_cross_entropy is −mean(log p) with log clamped at −100, so D = 0 or 1 cannot give inf
    l_d = F.binary_cross_entropy(d_real, torch.ones_like(d_real)) + F.binary_cross_entropy(d_fake, torch.zeros_like(d_fake))
    opt_d.zero_grad(set_to_none=True)
    l_d.backward()
    opt_d.step()
    d_fake_after = d(fake)
    l_g = F.binary_cross_entropy(d_fake_after, torch.ones_like(d_fake_after))  # −log D(G(z)): non-saturating
    opt_g.zero_grad(set_to_none=True)
    l_g.backward()  # also fills D's grads; opt_d.zero_grad clears them before D's next step
    opt_g.step()
    return Step(l_d.detach(), l_g.detach(), d_real.detach(), d_fake.detach(), d_fake_after.detach())


def tile(images: np.ndarray, cols: int, pad: int = 2) -> np.ndarray:
    """k×28×28 images → one array, `cols` per row, separated by `pad` blank (0, drawn white) pixels."""
    (h, w), rows = images.shape[1:], math.ceil(len(images) / cols)
    out = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad))
    for k, img in enumerate(images):
        r, c = divmod(k, cols)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = img
    return out


def plot_grid(images: np.ndarray, title: str) -> Figure:
    import matplotlib.pyplot as plt

    use_cjk_font()
    fig, ax = plt.subplots(figsize=(3.2, 3.4))
    ax.imshow(tile(images, math.ceil(math.sqrt(len(images)))), cmap="gray_r", vmin=0, vmax=1)
    ax.set(title=title, xticks=[], yticks=[])
    return fig


def plot_progress(per_epoch: list[np.ndarray]) -> Figure:
    """Row k: the fixed-noise samples after epoch k."""
    import matplotlib.pyplot as plt

    use_cjk_font()
    cols = len(per_epoch[0])
    fig, ax = plt.subplots(figsize=(0.45 * cols + 1.0, 0.45 * len(per_epoch) + 0.6))
    ax.imshow(tile(np.concatenate(per_epoch), cols), cmap="gray_r", vmin=0, vmax=1)
    ax.set_yticks([2 + 30 * k + 14 for k in range(len(per_epoch))], [f"第 {k + 1} 轮" for k in range(len(per_epoch))])
    ax.set(xticks=[], title="每轮训练后，同一组固定噪声生成的图像")
    return fig


def plot_losses(steps: list[int], l_d: list[float], l_g: list[float], per_epoch: int) -> Figure:
    import matplotlib.pyplot as plt

    use_cjk_font()
    fig, ax = plt.subplots(figsize=(7.0, 3.6))
    ax.plot(steps, l_d, linewidth=0.7, label="L_D = -log D(x) - log(1 - D(G(z)))")
    ax.plot(steps, l_g, linewidth=0.7, label="L_G = -log D(G(z))")
    ax.axhline(2 * math.log(2), color="gray", linestyle=":", linewidth=1, label="2 log 2（D = 1/2 时）")
    ax.set(xlabel=f"训练步数（每轮 {per_epoch} 步）", ylabel="损失")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def shape(t: torch.Tensor) -> str:
    return "x".join(str(n) for n in t.shape)


def record_shapes(result: Result, g: Generator, d: Discriminator) -> None:
    result.check("g_weight", source=SOURCE, statement=STATEMENT, article="784x100", computed=shape(g.fc.weight),
                 part="生成器权重的形状",
                 reason="torch 的 Linear 按（输出×输入）存权重，与文章对生成器的写法一致。")
    bias = g.fc.bias
    result.claims.append(Claim(
        "g_bias", SOURCE, STATEMENT, "1x784", shape(bias), "agrees" if bias.numel() == 784 else "differs", None,
        f"torch 存的是 {bias.numel()} 维向量；在 y = zWᵀ + b 中它作为 1x{bias.numel()} 的行向量广播到整批，"
        "与文章的 1x784 是同样的 784 个数，只是写法不同，所以算作一致。",
        part="生成器偏置的形状",
    ))
    result.check("d_weight", source=SOURCE, statement=STATEMENT, article="784x1", computed=shape(d.fc.weight),
                 part="判别器权重的形状",
                 reason="torch 按（输出×输入）存为 1x784，与 784x1 是同样的 784 个数、互为转置。文章对生成器用"
                        "（输出×输入）写成 784x100，对判别器却用（输入×输出）写成 784x1，两处写法自相矛盾；"
                        "按生成器那处的写法，判别器应是 1x784。")
    result.check("d_bias", source=SOURCE, statement=STATEMENT, article="1", computed=shape(d.fc.bias), part="判别器偏置的形状")
    result.contradictory(
        "objective", source="000 §2.3.3 / §2.4.2", statement=OBJECTIVE_STATEMENT,
        article="L_G = -D(G(Z))，L_D = -D(X) - D(G(Z))，最小化 L_G + L_D",
        computed="L_D = -log D(x) - log(1 - D(G(z)))，L_G = -log D(G(z))（交替各自最小化）", part="训练目标",
        reason="文章两处给出的目标互相矛盾。§2.3.3 的 L_D = -D(X) - D(G(Z)) 让判别器把生成数据也判得越高越好"
               "（它对 D(G(Z)) 的梯度为 -1），这与判别器「区分真假」的目标相反，其最优解是处处 D = 1，什么也区分不了；"
               "而且「最小化 L_G + L_D」让双方一起最小化同一个量，没有对抗（不是 min-max 博弈）；前一段伪代码"
               "「最小化 D(X) + D(G(Z))」又与 L_D 的符号相反。§2.4.2 给出的才是标准 GAN 损失：判别器最小化 "
               "-log D(X) - log(1 - D(G(Z)))，生成器最小化 -log D(G(Z))（非饱和形式），两者交替更新。本页按 §2.4.2 训练。",
    )


def run(config: Config, ctx: RunContext) -> Result:
    result = Result()
    profile = options.resolve_profile(config.profile, ctx.device)
    result.text("allocator", options.tune_allocator(), title="内存分配器设置", role="detail")
    torch.manual_seed(config.seed)  # the weights; run() is also called directly by the tests

    data = load_mnist(config.data_dir, download=config.download)
    data = data.subset(train=config.quick_train if profile == "quick" else None)
    epochs = config.quick_epochs if profile == "quick" else config.epochs
    n_train = len(data.train.labels)
    result.text("data_source", data.description, title="所用数据", caption="训练用的是哪些 MNIST 图片，从哪里读到。")
    ctx.provenance["threads"] = torch.get_num_threads()  # reductions split by thread: part of the key (registry)
    # the settings the page states (the article gives none); its prose is in docs/draft-000/algorithms.md
    for name, value in (("profile", profile), ("epochs", epochs), ("train_images", n_train),
                        ("device", ctx.device), ("data_official", data.official), ("lr", config.lr),
                        ("beta1", config.beta1), ("beta2", BETA2), ("batch_size", config.batch_size), ("noise_dim", config.noise_dim)):
        if name in LABELS:
            metric(result, name, value)
        else:
            result.metric(name, value, label={"beta1": "Adam 的 β1", "beta2": "Adam 的 β2", "noise_dim": "噪声维数"}[name])

    x_train = loop.to_device_images(data.train.images, ctx.device).reshape(n_train, -1)
    g, d = Generator(config.noise_dim).to(ctx.device), Discriminator().to(ctx.device)
    g_calls = trace(g, torch.zeros(1, config.noise_dim, device=ctx.device))
    d_calls = trace(d, x_train[:1])
    for name, calls, prefix, detail in (("generator", g_calls, "g", str(config.noise_dim)), ("discriminator", d_calls, "d", "784")):
        title = "生成器的结构" if name == "generator" else "判别器的结构"
        result.graph(name, *graph_of(calls, detail, prefix=prefix), title=title, caption="从真实模块读出（批大小 1）。")
    renamed = [dict(c, name=f"{who}.{c['name']}") for who, calls in (("G", g_calls), ("D", d_calls)) for c in calls]
    result.table("layers", LAYER_COLUMNS, layer_rows(renamed), title="各层的输出形状与参数量",
                 caption="G 为生成器，D 为判别器（批大小 1）。")
    record_shapes(result, g, d)

    opt_g = options.adam(g.parameters(), ctx.device, lr=config.lr, betas=(config.beta1, BETA2))
    opt_d = options.adam(d.parameters(), ctx.device, lr=config.lr, betas=(config.beta1, BETA2))
    metric(result, "optimizer", options.describe_optimizer(opt_g))
    order = torch.Generator().manual_seed(config.seed)
    noise = torch.Generator(device=ctx.device).manual_seed(config.seed + 1)  # per-step z, on the device
    # drawn on the CPU: the same fixed samples whichever device trains
    fixed_z = torch.randn(config.samples, config.noise_dim, generator=torch.Generator().manual_seed(config.seed)).to(ctx.device)

    rows, l_d_all, l_g_all, grids, train_seconds = [], [], [], [], 0.0
    per_epoch = -(-n_train // config.batch_size)
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        progress = loop.Progress(per_epoch, f"gan epoch {epoch}/{epochs}")
        stats: list[torch.Tensor] = []  # stacked once per epoch: no device sync per step
        for step, idx in enumerate(loop.batch_indices(n_train, config.batch_size, order, ctx.device), 1):
            z = torch.randn(len(idx), config.noise_dim, generator=noise, device=ctx.device)
            try:
                s = train_step(g, d, opt_g, opt_d, x_train[idx], z)
            except RuntimeError:  # binary_cross_entropy rejects a nan D output: report the divergence instead
                loop.check_diverged([row[:2] for row in stats], [g, d], step, epoch, "L_D or L_G")
                raise
            stats.append(torch.stack([s.l_d, s.l_g, s.d_real.mean(), s.d_fake.mean()]))
            progress.update()
        epoch_stats = torch.stack(stats).cpu().numpy().astype(np.float64)
        loop.check_finite(torch.from_numpy(epoch_stats[:, :2]), 1, epoch, "L_D or L_G")  # every step, at the sync
        train_seconds += time.perf_counter() - started
        l_d_all += epoch_stats[:, 0].tolist()
        l_g_all += epoch_stats[:, 1].tolist()
        rows.append([epoch, *epoch_stats.mean(axis=0).tolist()])
        with torch.no_grad():
            grids.append(g(fixed_z).reshape(-1, 28, 28).cpu().numpy())
        rel = ctx.save_figure(plot_grid(grids[-1], f"第 {epoch} 轮后"), f"samples_epoch_{epoch}")
        result.figure(f"samples_epoch_{epoch}", rel, caption=f"第 {epoch} 轮后，固定噪声生成的 {config.samples} 张图",
                      title=f"第 {epoch} 轮后的生成样本", role="detail" if epoch < epochs else "body")

    metric(result, "train_seconds", round(train_seconds, 3))
    for name, col, label in (("final_l_d", 1, "最后一轮的平均 L_D"), ("final_l_g", 2, "最后一轮的平均 L_G"),
                             ("d_real_mean", 3, "最后一轮 D(x) 的均值"), ("d_fake_mean", 4, "最后一轮 D(G(z)) 的均值")):
        result.metric(name, rows[-1][col], label=label, role="main")
    result.table("epochs", ["轮次", "平均 L_D", "平均 L_G", "D(x) 均值", "D(G(z)) 均值"], rows,
                 caption="D(G(z)) 为判别器更新前的值（即 L_D 所用的值）", title="每轮的损失与判别器输出")
    steps = list(range(len(l_d_all)))
    result.add_series("losses", "step", steps, {"L_D": [round(v, 6) for v in l_d_all], "L_G": [round(v, 6) for v in l_g_all]},
                      title="每一步的 L_D 与 L_G")
    result.figure("progress", ctx.save_figure(plot_progress(grids), "progress"),
                  caption="每行是一轮训练后同一组固定噪声生成的图像", title="生成器一轮轮学会写数字", role="main")
    result.figure("losses", ctx.save_figure(plot_losses(steps, l_d_all, l_g_all, per_epoch), "losses"),
                  caption="每一步的 L_D 与 L_G", title="训练过程：判别器与生成器的损失", role="main")
    return result
