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

from reportgen.api import Result
from reportgen.context import RunContext
from runners.cnn_model import recipe, tuning, weights
from runners.cnn_model.net import kernel_provenance, kernel_status, param_count
from runners.plotting import use_cjk_font
from runners.training import loop, options
from runners.training.architecture import LAYER_COLUMNS, graph_of, layer_rows, trace

matplotlib.use("Agg")  # before pyplot is imported (in the figure helpers): no display on the build machine

SOURCE = "000 §2.5.2"
COMPILE_FIT = """\
model.compile(optimizer="adam",
              loss="categorical_crossentropy",
              metrics=["accuracy"])

# 训练模型
model.fit(x_train, y_train, epochs=5, batch_size=64)"""  # verbatim from the article


@dataclass(frozen=True)
class Config(recipe.TrainConfig):
    """The training recipe's settings (runners/cnn_model/recipe.py), with its defaults."""


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
                 caption=f"用本次训练好的模型在前 {len(labels)} 张训练图片上的输出，试验整数标签与交叉熵的各种组合（torch 实测）。",
                 title="整数标签配 categorical_crossentropy 会怎样")
    shape = f"标签 ({len(labels)},) 与输出 ({logits.shape[0]}, {logits.shape[1]})"
    result.check(
        "categorical_crossentropy", source=SOURCE, statement=COMPILE_FIT,
        article="可以训练（文中给出训练与评估步骤）", computed=f"形状不兼容：{shape}；{formula}",
        part="损失函数与标签的形状是否相容",
        reason="mnist.load_data() 的 y_train 是形状 (N,) 的整数标签，而 categorical_crossentropy 按 −Σ y_true·log(y_pred) "
        "计算，要求 y_true 是与输出同形的 one-hot (N, 10)。本机没有 TensorFlow，未运行 Keras；这里用 torch 演示同一形状规则："
        f"按该公式把 (N,) 标签与 (N, 10) 输出相乘即报错（{formula}）；torch 的 F.cross_entropy 只在目标与输出同形时"
        f"把目标当概率，否则当类别下标，于是浮点标签报 {rows[0][1]}。"
        "Keras 对此的公开报错形如 “Shapes (None, 1) and (None, 10) are incompatible”（标签先被扩成 (N, 1)）。"
        "改法二选一：loss=\"sparse_categorical_crossentropy\"，或先 to_categorical(y_train, 10)。本页训练用的是前者的等价物。",
    )


def _figures(result: Result, ctx: RunContext, rows: list[list[float]], confusion: np.ndarray,
             images: np.ndarray, labels: np.ndarray, probs: torch.Tensor) -> None:
    import matplotlib.pyplot as plt

    use_cjk_font()
    epochs = [r[0] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.6, 3.6))
    ax1.plot(epochs, [r[1] for r in rows], "o-", label="训练（滑动平均）")
    ax1.plot(epochs, [r[3] for r in rows], "s-", label="测试")
    ax1.set(xlabel="轮次", ylabel="交叉熵损失", title="损失")
    ax2.plot(epochs, [r[2] for r in rows], "o-", label="训练（滑动平均）")
    ax2.plot(epochs, [r[4] for r in rows], "s-", label="测试")
    ax2.set(xlabel="轮次", ylabel="准确率", title="准确率")
    for ax in (ax1, ax2):
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
        ax.legend()
    result.figure("curves", ctx.save_figure(fig, "curves"),
                  "每轮的损失与准确率：训练曲线是该轮各批次的滑动平均（与 Keras fit 打印的一致），测试曲线在轮末计算。",
                  title="训练过程：损失与准确率", role="main")

    fig, ax = plt.subplots(figsize=(5.6, 5.0))
    ax.imshow(confusion, cmap="Blues")
    for i in range(10):
        for j in range(10):
            color = "white" if confusion[i, j] > confusion.max() / 2 else "black"
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=7, color=color)
    ax.set(xlabel="预测数字", ylabel="真实数字", xticks=range(10), yticks=range(10), title="混淆矩阵（测试集）")
    result.figure("confusion", ctx.save_figure(fig, "confusion"), "测试集混淆矩阵：行为真实数字，列为预测数字，格中为图片张数。",
                  title="哪些数字被认错：混淆矩阵")

    confidence, predicted = probs.max(dim=1)
    wrong = torch.nonzero(predicted != torch.from_numpy(labels.astype(np.int64))).flatten()
    worst = wrong[torch.argsort(confidence[wrong], descending=True, stable=True)][:16].tolist()
    fig, axes = plt.subplots(4, 4, figsize=(6.4, 7.0))
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, worst, strict=False):
        ax.imshow(images[i], cmap="gray_r")
        ax.set_title(f"预测 {int(predicted[i])} {float(confidence[i]):.2f}（真实 {int(labels[i])}）", fontsize=8)
    result.figure("misclassified", ctx.save_figure(fig, "misclassified"),
                  f"模型最有把握却分错的 {len(worst)} 张测试图片（共分错 {len(wrong)} 张）：标题为 预测数字、softmax 概率、（真实数字）。",
                  title="最有把握却分错的图片")


def run(config: Config, ctx: RunContext) -> Result:
    result = Result()
    options.check_precision(config.precision)  # a typo fails here, not after loading the data
    tuning.check_path(config.path)
    result.text("allocator", options.tune_allocator(), title="内存分配器设置", role="detail")
    data = recipe.load(config, ctx.device)
    # compiling the kernels is its own time, before tuning and training: never inside train_seconds
    compile_seconds = tuning.build_kernels(ctx.device, config.fused_conv_pool, config.precision)
    chosen = tuning.choose(config, ctx.device, data.x, data.y)  # the tuned path: measured on this machine's first run
    data = recipe.relayout(data, chosen.path.channels_last)
    trained = recipe.train(config, ctx.device, data, chosen.path)
    model, rows, logits = trained.model, trained.rows, trained.test_logits
    x, y, xt, yt = data.x, data.y, data.xt, data.yt
    started = time.perf_counter()
    train_loss, train_acc, _ = loop.evaluate(model, x, y)
    eval_seconds = time.perf_counter() - started
    # the hand-over to cnn_onnx and cnn_compress (RunnerSpec.needs): they deploy this model, not one of their
    # own; an artifact, kept with the result for them but not published with the page
    weights.save_trained(model, ctx.artifact(weights.WEIGHTS))
    wanted = (chosen.path.conv1_kernel, chosen.path.conv2_kernel)
    ctx.provenance.update(kernel_provenance(ctx.device, config.fused_conv_pool, config.precision, wanted))
    tuning.report(result, ctx.provenance, chosen, compile_seconds)

    recipe.report(result, data, rows, trained.seconds, f"{ctx.device}（{ctx.device_name}）",
                  "训练损失与准确率是该轮各批次的平均（训练中的模型，与 Keras fit 打印的一致）；测试列在每轮结束时以评估模式计算。")
    result.metric("train_accuracy", train_acc, label="训练集准确率（训练后）")
    result.metric("train_loss", train_loss, label="训练集损失（训练后）")
    result.metric("params_total", param_count(model), label="参数总数")
    result.metric("train_eval_seconds", round(eval_seconds, 3), label="评估训练集的耗时", unit="秒", role="detail")
    result.metric("channels_last", data.channels_last, label="激活按 channels_last（NHWC）存放", role="detail")
    result.metric("optimizer", trained.optimizer, label="优化器", role="detail")
    result.metric("batch_size", config.batch_size, label="批大小")
    result.metric("lr", config.lr, label="学习率")
    result.metric("eps", config.eps, label="Adam 的 ε")
    result.text("cuda_graph", trained.cuda_graph, title="CUDA 图", role="detail")
    result.text("conv_pool", kernel_status(ctx.device, config.fused_conv_pool, config.precision, wanted),
                title="卷积 → 池化 → ReLU 的本机内核", role="detail")
    result.text("precision", options.precision_note(ctx.device, config.precision), title="数值精度", role="detail")
    result.add_series("epochs", "epoch", [r[0] for r in rows],
                      {"train_loss": [r[1] for r in rows], "train_accuracy": [r[2] for r in rows],
                       "test_loss": [r[3] for r in rows], "test_accuracy": [r[4] for r in rows]}, title="每轮的损失与准确率")

    calls = trace(model, xt[:1])
    result.table("layers", LAYER_COLUMNS, layer_rows(calls), caption="从真实模块读出的各层输出形状与参数量（批大小 1）。",
                 title="各层的输出形状与参数量")
    nodes, edges = graph_of(calls, "1×28×28")
    result.graph("model", nodes, edges, caption="移植后的模型（从前向钩子读出）：每个节点为该层输出形状（含批大小 1）与参数量。",
                 title="模型结构")

    predicted = logits.argmax(1).cpu()
    confusion = torch.bincount(yt.cpu() * 10 + predicted, minlength=100).reshape(10, 10).numpy()
    result.table("confusion", ["真实 \\ 预测", *map(str, range(10))], [[str(i), *confusion[i]] for i in range(10)],
                 caption="测试集混淆矩阵（行：真实数字，列：预测数字）。", title="混淆矩阵（数表）")
    probs = torch.softmax(logits.float().cpu(), dim=1)
    _figures(result, ctx, rows, confusion, data.arrays.test.images, data.arrays.test.labels, probs)
    with torch.no_grad():
        model.eval()
        head = model(x[: config.batch_size]).float().cpu()
    _loss_claim(result, data.arrays.train.labels[: config.batch_size], head)
    return result
