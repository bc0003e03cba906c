"""000 §2.5: the article's Keras CNN on MNIST, ported to PyTorch layer for layer and trained here.

TensorFlow is not installed, so nothing here claims to have run Keras. The article's compile
line (categorical_crossentropy with integer labels) is checked by the shape rule it breaks,
demonstrated with torch; the model itself is trained with the loss the labels call for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import matplotlib
import numpy as np
import torch

from runners import training
from reportgen.api import Result
from runners.architecture import LAYER_COLUMNS, graph_of, layer_rows, trace
from runners.cnn_model import (
    Net,
    graphed_step,
    kernel_status,
    make_optimizer,
    model_is_fused,
    param_count,
    prepare_model,
    train_epoch,
)
from reportgen.context import RunContext
from runners.mnist import load_mnist

matplotlib.use("Agg")  # before pyplot is imported (in the figure helpers): no display on the build machine

SOURCE = "000 §2.5.2"
COMPILE_FIT = """\
model.compile(optimizer="adam",
              loss="categorical_crossentropy",
              metrics=["accuracy"])

# 训练模型
model.fit(x_train, y_train, epochs=5, batch_size=64)"""  # verbatim from the article


@dataclass(frozen=True)
class Config:
    profile: str = "auto"  # auto: full on an accelerator, quick on a CPU
    epochs: int = 5  # the article's fit(epochs=5)
    batch_size: int = 64
    lr: float = 1e-3  # Keras Adam defaults
    eps: float = 1e-7
    train_limit: int = 0  # 0: every training image the profile allows
    test_limit: int = 0
    quick_train: int = 8000
    quick_epochs: int = 2
    data_dir: str = ""
    download: bool = True
    seed: int = 0
    channels_last: bool = True  # NHWC on CPU: ~1.3x faster steps here (benchmarks/cnn_throughput.py)
    cuda_graphs: bool = True  # on a GPU, replay each full-batch step as one CUDA graph
    # on a CPU, train each conv → pool → ReLU block as one C kernel (runners/conv_pool.py, runners/winograd_pool.py)
    fused_conv_pool: bool = True
    # "bf16": forward pass under bfloat16 autocast, ~1.4x faster steps on a CPU with native bf16
    # (benchmarks/cnn_throughput.py --bf16) but not the article's float32 arithmetic: opt-in
    precision: str = "float32"


def loss_shape_demo(labels: np.ndarray, logits: torch.Tensor) -> tuple[list[list[str]], str]:
    """Feed integer labels (N,) to categorical cross-entropy the ways one could; return rows and the shape error."""
    y = torch.from_numpy(labels.astype(np.int64))
    log_p = torch.log_softmax(logits, dim=1)
    n, k = logits.shape

    def attempt(fn: Callable[[], torch.Tensor]) -> str:
        try:
            return f"{float(fn()):.4f}"
        except (RuntimeError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"

    # Keras' categorical_crossentropy is -sum(y_true * log(y_pred), axis=-1): y_true must be (N, 10)
    formula = attempt(lambda: -(y.float() * log_p).sum(-1).mean())
    rows = [
        [f"F.cross_entropy(logits, 标签.float())，标签 ({n},) 当作概率", attempt(lambda: torch.nn.functional.cross_entropy(logits, y.float()))],
        [f"−Σ y_true·log(y_pred)，y_true = 整数标签 ({n},)", formula],
        [f"同上，y_true 扩成 ({n}, 1)（会静默广播）", attempt(lambda: -(y.float()[:, None] * log_p).sum(-1).mean())],
        [f"同上，y_true = one-hot ({n}, {k})（categorical 的正确用法）", attempt(lambda: -(torch.nn.functional.one_hot(y, k) * log_p).sum(-1).mean())],
        ["F.cross_entropy(logits, 整数标签)（即 sparse_categorical_crossentropy）", attempt(lambda: torch.nn.functional.cross_entropy(logits, y))],
    ]
    return rows, formula


def _loss_claim(result: Result, labels: np.ndarray, logits: torch.Tensor) -> None:
    rows, formula = loss_shape_demo(labels, logits)
    result.table("loss_shapes", ["写法", "结果（损失或错误）"], rows,
                 caption=f"用本次训练好的模型在前 {len(labels)} 张训练图片上的输出，试验整数标签与交叉熵的各种组合（torch 实测）。")
    shape = f"标签 ({len(labels)},) 与输出 ({logits.shape[0]}, {logits.shape[1]})"
    result.check(
        "categorical_crossentropy", source=SOURCE, statement=COMPILE_FIT,
        article="可以训练（文中给出训练与评估步骤）", computed=f"形状不兼容：{shape}；{formula}",
        reason="mnist.load_data() 的 y_train 是形状 (N,) 的整数标签，而 categorical_crossentropy 按 −Σ y_true·log(y_pred) "
        "计算，要求 y_true 是与输出同形的 one-hot (N, 10)。本机没有 TensorFlow，未运行 Keras；这里用 torch 演示同一形状规则："
        f"按该公式把 (N,) 标签与 (N, 10) 输出相乘即报错（{formula}）；torch 的 F.cross_entropy 只在目标与输出同形时"
        f"把目标当概率，否则当类别下标，于是浮点标签报 {rows[0][1]}。"
        "Keras 对此的公开报错形如 “Shapes (None, 1) and (None, 10) are incompatible”（标签先被扩成 (N, 1)）。"
        "改法二选一：loss=\"sparse_categorical_crossentropy\"，或先 to_categorical(y_train, 10)。本页训练用的是前者的等价物。",
    )


def _port_notes(config: Config, channels_last: bool, fused: bool) -> str:
    return (
        "数据布局：Keras 默认通道在后（28×28×1），PyTorch 的 Conv2d 按通道在前（1×28×28）定义，输入改为 N×1×28×28"
        + ("；在 CPU 上张量和权重再按 channels_last（NHWC）存放，只改内存排列、不改数学。" if channels_last else "。")
        + ("训练时两个“卷积 → 池化 → ReLU”块各合并为一个 C 内核：第一块直接卷积（runners/conv_pool.py），省去 26×26×32 的中间结果；"
           "第二块用 Winograd F(2×2, 3×3) 算卷积（runners/winograd_pool.py），每个 2×2 输出块正好是一个池化窗口，"
           "乘加运算约为直接卷积的 37 %，11×11×64 的中间结果也不落地。函数相同，只在 float32 舍入上与 PyTorch 的算子不同"
           "（舍入不同可让数学上相等的两个窗口值换一个取最大，梯度随之落在另一位置，同为合法的次梯度）；"
           "评估与结构图仍走原来的层。内核输出已是 NHWC，其后各层照样按 NHWC 计算，权重则保持原排列（实测更快）。"
           if fused else "")
        + "ReLU 与 2×2 最大池化的次序：这里先池化再 ReLU。两者可交换（ReLU 单调，max(relu(a), relu(b)) = relu(max(a, b))，"
        "梯度也落在同一位置），输出与梯度和文中的次序逐位相同（测试核对），ReLU 只需处理四分之一的数，所以上面的结构图里池化在 ReLU 之前。"
        "Flatten：Keras 按 高×宽×通道 展平，这里按 通道×高×宽，相当于 Dense(64) 的输入做了一个固定置换，不影响训练。"
        "输出层：Dense(10, softmax) 改为输出 logits 的 Linear(64, 10)，softmax 并入损失 CrossEntropyLoss（数值更稳，模型相同）。"
        "损失：标签是整数，所以用稀疏形式的交叉熵（等价于 Keras 的 sparse_categorical_crossentropy），而不是文中的 "
        "categorical_crossentropy（见上方的核对）。"
        "初始化：保留 PyTorch 的默认初始化（卷积与全连接权重 kaiming_uniform(a=√5)，偏置为均匀分布），"
        "Keras 默认是 glorot_uniform 权重、零偏置，因此同一种子下两者的数值不会逐位相同。"
        f"优化器：Adam(lr={config.lr:g}, eps={config.eps:g})，eps 取 Keras 的默认值 1e-7（PyTorch 默认 1e-8）；"
        "Keras 把 eps 加在未做偏差修正的 √v 上，PyTorch 加在修正后的 √v̂ 上，差别只在 eps 的有效大小，可以忽略。"
        f"训练：batch {config.batch_size}，每轮重新打乱；不使用 Keras 的验证集划分（文中也没有）。"
        "每轮结束后在评估集上计算一次损失和准确率，只用于记录曲线，不参与训练。"
        "文中 2.5.3 节的“优化”步骤（重新 compile 后在已训练的权重上再 fit 10 轮，validation_data=(x_test, y_test)）"
        "没有运行：它把测试集当作验证集，据此做的调整会让测试集不再是独立的评估数据；"
        "它也沿用同一个 categorical_crossentropy，照样会遇到上面的形状问题。"
    )


def _figures(result: Result, ctx: RunContext, rows: list[list[float]], confusion: np.ndarray,
             images: np.ndarray, labels: np.ndarray, probs: torch.Tensor) -> None:
    import matplotlib.pyplot as plt

    epochs = [r[0] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.6, 3.6))
    ax1.plot(epochs, [r[1] for r in rows], "o-", label="train (running mean)")
    ax1.plot(epochs, [r[3] for r in rows], "s-", label="test")
    ax1.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
    ax2.plot(epochs, [r[2] for r in rows], "o-", label="train (running)")
    ax2.plot(epochs, [r[4] for r in rows], "s-", label="test")
    ax2.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    for ax in (ax1, ax2):
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
        ax.legend()
    result.figure("curves", ctx.save_figure(fig, "curves"),
                  "每轮的损失与准确率：训练曲线是该轮各批次的滑动平均（与 Keras fit 打印的一致），测试曲线在轮末计算。")

    fig, ax = plt.subplots(figsize=(5.6, 5.0))
    ax.imshow(confusion, cmap="Blues")
    for i in range(10):
        for j in range(10):
            color = "white" if confusion[i, j] > confusion.max() / 2 else "black"
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=7, color=color)
    ax.set(xlabel="predicted", ylabel="true", xticks=range(10), yticks=range(10), title="Confusion matrix (test)")
    result.figure("confusion", ctx.save_figure(fig, "confusion"), "测试集混淆矩阵：行为真实数字，列为预测数字，格中为图片张数。")

    confidence, predicted = probs.max(dim=1)
    wrong = torch.nonzero(predicted != torch.from_numpy(labels.astype(np.int64))).flatten()
    worst = wrong[torch.argsort(confidence[wrong], descending=True, stable=True)][:16].tolist()
    fig, axes = plt.subplots(4, 4, figsize=(6.4, 7.0))
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, worst, strict=False):
        ax.imshow(images[i], cmap="gray_r")
        ax.set_title(f"pred {int(predicted[i])} {float(confidence[i]):.2f} (true {int(labels[i])})", fontsize=8)
    result.figure("misclassified", ctx.save_figure(fig, "misclassified"),
                  f"模型最有把握却分错的 {len(worst)} 张测试图片（共分错 {len(wrong)} 张）：标题为 预测数字、softmax 概率、（真实数字）。")


def run(config: Config, ctx: RunContext) -> Result:
    result = Result()
    training.check_precision(config.precision)  # a typo fails here, not after loading the data
    result.text("allocator", training.tune_allocator())
    profile = training.resolve_profile(config.profile, ctx.device)
    # the offline split is fixed (seed 0), so runs with other training seeds score the same images
    data = load_mnist(config.data_dir, config.download)
    epochs = config.epochs if profile == "full" else config.quick_epochs
    limits = [n for n in (config.train_limit, config.quick_train if profile == "quick" else 0) if n > 0]
    data = data.subset(train=min(limits) if limits else None, test=config.test_limit or None)
    note = f"quick 档：只训练 {epochs} 轮、至多 {config.quick_train:,} 张训练图片（文中是 {config.epochs} 轮全部图片）。" if profile == "quick" else ""
    result.text("data_source", data.description + note)
    channels_last = config.channels_last and ctx.device == "cpu"
    x = training.to_device_images(data.train.images, ctx.device, channels_last)
    y = training.to_device_labels(data.train.labels, ctx.device)
    xt = training.to_device_images(data.test.images, ctx.device, channels_last)
    yt = training.to_device_labels(data.test.labels, ctx.device)

    torch.manual_seed(config.seed)  # the same initial weights however run() is called
    # under bf16 autocast the kernel does not apply (float32 only): the modules run, in channels_last
    model = prepare_model(Net(), ctx.device, channels_last, config.fused_conv_pool and config.precision == "float32")
    use_graphs = config.cuda_graphs and ctx.device == "cuda"
    optimizer = make_optimizer(model, config.lr, config.eps, capturable=use_graphs)
    stepper = graphed_step(model, optimizer, x, y, config.batch_size, use_graphs, config.precision)
    generator = torch.Generator().manual_seed(config.seed)
    rows, seconds = [], 0.0
    for epoch in range(1, epochs + 1):
        stats = train_epoch(model, optimizer, x, y, config.batch_size, generator, f"epoch {epoch}/{epochs}", epoch, stepper)
        seconds += stats.seconds
        test_loss, test_acc, logits = training.evaluate(model, xt, yt)
        rows.append([epoch, stats.loss, stats.accuracy, test_loss, test_acc])
    started = time.perf_counter()
    train_loss, train_acc, _ = training.evaluate(model, x, y)
    eval_seconds = time.perf_counter() - started

    result.metric("profile", profile)
    result.metric("epochs", epochs)
    result.metric("train_images", len(y))
    result.metric("test_images", len(yt))
    result.metric("test_accuracy", rows[-1][4])
    result.metric("test_loss", rows[-1][3])
    result.metric("train_accuracy", train_acc)
    result.metric("train_loss", train_loss)
    result.metric("params_total", param_count(model))
    result.metric("train_seconds", round(seconds, 3))
    result.metric("images_per_second", round(len(y) * epochs / seconds, 1))
    result.metric("train_eval_seconds", round(eval_seconds, 3))
    result.metric("data_official", data.official)
    result.metric("device", f"{ctx.device}（{ctx.device_name}）")
    result.metric("channels_last", channels_last)
    result.metric("optimizer", training.describe_optimizer(optimizer))
    result.text("cuda_graph", stepper.status)
    result.text("conv_pool", kernel_status(ctx.device, config.fused_conv_pool, config.precision))
    result.text("precision", training.precision_note(ctx.device, config.precision))
    result.table("epochs", ["轮次", "训练损失", "训练准确率", "测试损失", "测试准确率"], rows,
                 caption="训练损失与准确率是该轮各批次的平均（训练中的模型，与 Keras fit 打印的一致）；测试列在每轮结束时以评估模式计算。")
    result.add_series("epochs", "epoch", [r[0] for r in rows],
                      {"train_loss": [r[1] for r in rows], "train_accuracy": [r[2] for r in rows],
                       "test_loss": [r[3] for r in rows], "test_accuracy": [r[4] for r in rows]})

    calls = trace(model, xt[:1])
    result.table("layers", LAYER_COLUMNS, layer_rows(calls), caption="从真实模块读出的各层输出形状与参数量（批大小 1）。")
    nodes, edges = graph_of(calls, "1×28×28")
    result.graph("model", nodes, edges, caption="移植后的模型（从前向钩子读出）：每个节点为该层输出形状（含批大小 1）与参数量。")

    predicted = logits.argmax(1).cpu()
    confusion = torch.bincount(yt.cpu() * 10 + predicted, minlength=100).reshape(10, 10).numpy()
    result.table("confusion", ["真实 \\ 预测", *map(str, range(10))], [[str(i), *confusion[i]] for i in range(10)],
                 caption="测试集混淆矩阵（行：真实数字，列：预测数字）。")
    probs = torch.softmax(logits.float().cpu(), dim=1)
    _figures(result, ctx, rows, confusion, data.test.images, data.test.labels, probs)
    with torch.no_grad():
        model.eval()
        head = model(x[: config.batch_size]).float().cpu()
    _loss_claim(result, data.train.labels[: config.batch_size], head)
    result.text("port_notes", _port_notes(config, channels_last, model_is_fused(model)))
    return result
