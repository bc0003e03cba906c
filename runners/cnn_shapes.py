"""000 §2.3.1 示例: the described CNN built as a real module, its shapes read off a forward pass.

The article gives an input of 32x32x3, a 3x3 convolution to 64 channels with stride 1, a 2x2
max pool and a fully connected layer W2 = [1024x64]. Building it shows what the flatten really
produces (14400 without padding, 16384 with "same" padding), so W2 cannot be 1024x64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from reportgen.api import Result
from reportgen.context import RunContext
from runners.training.architecture import LAYER_COLUMNS, graph_of, layer_rows, trace

SOURCE = "000 §2.3.1"
W1_STATEMENT = "卷积层的权重矩阵为 3x3x3x64，偏置矩阵为 1x64 … 卷积层 W1 = [3x3x3x64]，偏置 b1 = [64]"
W2_STATEMENT = "全连接层 W2 = [1024x64]，偏置 b2 = [64]，A3 = ReLU(A2 * W2 + b2)"


@dataclass(frozen=True)
class Config:
    size: int = 32  # input height = width
    in_channels: int = 3
    channels: int = 64  # conv output channels
    kernel: int = 3
    pool: int = 2
    hidden: int = 64  # fully connected outputs (the article's b2 = [64])


class ShapesNet(nn.Module):
    """Conv → ReLU → max pool → flatten → Linear → ReLU, with the Linear sized by a dry run."""

    def __init__(self, config: Config, padding: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(config.in_channels, config.channels, config.kernel, stride=1, padding=padding)
        self.relu1 = nn.ReLU()
        self.pool = nn.MaxPool2d(config.pool)
        self.flatten = nn.Flatten()
        with torch.no_grad():  # the flatten length is measured, not computed by hand
            probe = torch.zeros(1, config.in_channels, config.size, config.size)
            features = self.flatten(self.pool(self.conv(probe))).shape[1]
        self.fc = nn.Linear(features, config.hidden)
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu2(self.fc(self.flatten(self.pool(self.relu1(self.conv(x))))))


def tf_kernel_shape(conv: nn.Conv2d) -> str:
    """Torch stores out×in×kh×kw; the article (TF/Keras) writes kh×kw×in×out."""
    return "x".join(str(d) for d in conv.weight.permute(2, 3, 1, 0).shape)


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def run(config: Config, ctx: RunContext) -> Result:
    result = Result()
    torch.manual_seed(ctx.seed)  # weights are never used for values; seeded only for tidiness
    example = torch.zeros(1, config.in_channels, config.size, config.size, device=ctx.device)
    models = {"valid": ShapesNet(config, padding=0), "same": ShapesNet(config, padding=config.kernel // 2)}
    calls = {}
    for variant, model in models.items():
        model.to(ctx.device)
        calls[variant] = trace(model, example)
        padding = "不补零" if variant == "valid" else "补零"
        result.metric(f"flatten_{variant}", models[variant].fc.in_features, label=f"展平后的长度（{padding}）", role="main")
        result.metric(f"params_{variant}", _params(model), label=f"参数总数（{padding}）")
    valid, same = models["valid"], models["same"]
    shape_in = f"{config.in_channels}×{config.size}×{config.size}"
    result.table(
        "shapes", LAYER_COLUMNS, layer_rows(calls["valid"]),
        caption=f"按文中描述搭建的模块（输入 1×{shape_in}，卷积步长 1、不补零），前向钩子记录的各层实际形状。"
        "PyTorch 的卷积权重按 输出×输入×高×宽 存放。",
        title="各层的实际形状（不补零）", role="main",
    )
    result.table(
        "shapes_same", LAYER_COLUMNS, layer_rows(calls["same"]),
        caption=f"同一模块，卷积补零 {config.kernel // 2}（即 Keras 的 padding=\"same\"）。",
        title="各层的实际形状（补零）",
    )
    nodes, edges = graph_of(calls["valid"], shape_in)
    result.graph("model", nodes, edges, caption="文中 CNN 示例的真实模块（不补零），每个节点为该层输出形状（含批大小 1）与参数量。",
                 title="模型结构")

    pooled = valid.fc.in_features // config.channels
    side = math.isqrt(pooled)
    stated_in = 1024
    need_side = math.isqrt(stated_in // config.channels)
    result.check(
        "w1", source=SOURCE, statement=W1_STATEMENT, article="3x3x3x64", computed=tf_kernel_shape(valid.conv),
        part="卷积核 W1 的形状",
        reason=f"按 TF/Keras 的 高×宽×输入×输出 顺序书写；PyTorch 实际存为 输出×输入×高×宽 = "
        f"{'×'.join(map(str, valid.conv.weight.shape))}，元素个数相同。",
    )
    result.check(
        "b1", source=SOURCE, statement=W1_STATEMENT, article="64", computed=str(valid.conv.bias.shape[0]), part="卷积偏置 b1 的长度",
        reason="文字说“1x64”，伪代码写 [64]：同一个长度为 64 的偏置向量。",
    )
    result.check(
        "w2", source=SOURCE, statement=W2_STATEMENT, article="1024x64",
        computed=f"{valid.fc.in_features}x{valid.fc.out_features}", part="全连接权重 W2 的形状",
        reason=f"卷积（3×3，步长 1，不补零）把 {config.size}×{config.size} 变成 {config.size - config.kernel + 1}×"
        f"{config.size - config.kernel + 1}，2×2 池化后为 {side}×{side}，展平后长度 {config.channels}×{side}×{side} = "
        f"{valid.fc.in_features}；补零为 1 时为 {config.channels}×{math.isqrt(same.fc.in_features // config.channels)}²"
        f" = {same.fc.in_features}。1024 = {need_side}×{need_side}×{config.channels}，需要池化后的特征图只有 "
        f"{need_side}×{need_side}（卷积输出 {2 * need_side}×{2 * need_side}，不补零时输入只能是 "
        f"{2 * need_side + config.kernel - 1}×{2 * need_side + config.kernel - 1}），与 {config.size}×{config.size} 的输入不符"
        + ("；1024 恰是输入一个通道的像素数 32×32。" if config.size**2 == stated_in else "。"),
    )
    result.check(
        "b2", source=SOURCE, statement=W2_STATEMENT, article="64", computed=str(valid.fc.bias.shape[0]), part="全连接偏置 b2 的长度",
    )
    return result
