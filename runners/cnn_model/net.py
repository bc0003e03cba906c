"""The §2.5 Keras CNN ported to PyTorch, and which of its blocks train through the fused C kernels."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from runners.kernels import conv_pool, winograd_pool


class Net(nn.Module):
    """models.Sequential of §2.5.2, layer for layer; ReLUs are modules so the traced graph shows them.

    The last Dense(10, activation="softmax") becomes a Linear producing logits: the softmax is
    folded into the cross-entropy loss (numerically safer, same model).

    Each block pools before its ReLU. The two commute: ReLU is monotone, so
    max(relu(a), relu(b)) = relu(max(a, b)), and both orders send the gradient to the same
    position (the window's first maximum when it is positive, nowhere otherwise). Results and
    gradients are bit-identical to the article's order (tests/runners/test_cnn.py checks it),
    and the ReLU touches 4× fewer values.

    With `fused_blocks` set (by `prepare_model`, on a CPU), training runs conv1 → pool1 → relu1
    and conv2 → pool2 → relu2 each as one C kernel (runners/kernels/conv_pool.py, runners/kernels/winograd_pool.py:
    the same function up to float32 rounding). With `relu_first`, training runs the unfused blocks in
    the article's order, ReLU then pooling (bit-identical, more work: a candidate the tuner measures).
    Evaluation and tracing always go through the modules, pooling first.
    """

    fused_blocks = (False, False)  # (first block, second block)
    relu_first = False

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.relu3 = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(64 * 3 * 3, 64)
        self.relu4 = nn.ReLU()
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = self.fused_blocks if self.training else (False, False)
        relu_first = self.relu_first and self.training
        if first:
            x = conv_pool.conv_pool_relu(x, self.conv1, self.pool1, self.relu1)
        else:
            x = self.pool1(self.relu1(self.conv1(x))) if relu_first else self.relu1(self.pool1(self.conv1(x)))
        if second:
            x = winograd_pool.conv_pool_relu(x, self.conv2, self.pool2, self.relu2)
        else:
            x = self.pool2(self.relu2(self.conv2(x))) if relu_first else self.relu2(self.pool2(self.conv2(x)))
        x = self.relu3(self.conv3(x))
        # Keras flattens NHWC (h, w, c order); ours flattens c, h, w. Same layer up to a fixed
        # permutation of fc1's inputs, so training is unaffected.
        return self.fc2(self.relu4(self.fc1(self.flatten(x))))


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class TrainPath:
    """How training computes the model's one function (all the same up to float32 rounding): memory
    layout, which conv → pool → ReLU blocks run through a C kernel, and the unfused blocks' order."""

    channels_last: bool = False
    conv1_kernel: bool = False
    conv2_kernel: bool = False
    relu_first: bool = False

    def describe(self) -> str:
        """For the page, in Chinese."""
        kernels = [name for name, on in (("conv1", self.conv1_kernel), ("conv2", self.conv2_kernel)) if on]
        parts = ["channels_last（NHWC）" if self.channels_last else "NCHW",
                 f"{' 与 '.join(kernels)} 块用 C 内核" if kernels else "不用 C 内核"]
        if self.relu_first and len(kernels) < 2:
            parts.append("未融合的块先 ReLU 后池化（文中次序）")
        return "，".join(parts)


def prepare_path(model: nn.Module, device: str, path: TrainPath) -> nn.Module:
    """The model on `device`, set to train along `path`: NHWC weights with `channels_last` (unless a block is
    fused), on a CPU the kernels it names where they compile here (`kernel_status` says), its block order."""
    model.to(device)
    if isinstance(model, Net):
        model.relu_first = path.relu_first
    if device.split(":")[0] == "cpu" and isinstance(model, Net) and (path.conv1_kernel or path.conv2_kernel):
        model.fused_blocks = (
            path.conv1_kernel and conv_pool.fits(model.conv1, model.pool1) and conv_pool.load().lib is not None,
            path.conv2_kernel and winograd_pool.fits(model.conv2, model.pool2) and winograd_pool.load().lib is not None)
    if path.channels_last and not model_is_fused(model):
        # NHWC activations: on CPU max pooling is ~9x and the oneDNN convolutions somewhat faster
        # than in NCHW for this model (profiled; about 1.3x per training step overall). The fused
        # kernels' outputs are NHWC already, so the layers after them run NHWC anyway; converting
        # the weights as well was slower there (benchmarks/cnn_throughput.py, "NCHW" row).
        model.to(memory_format=torch.channels_last)
    return model


def prepare_model(model: nn.Module, device: str, channels_last: bool, fuse_blocks: bool = False) -> nn.Module:
    """`prepare_path` with both kernels on or off and the blocks pooling first."""
    return prepare_path(model, device, TrainPath(channels_last, fuse_blocks, fuse_blocks))


def model_is_fused(model: nn.Module) -> bool:
    return any(getattr(model, "fused_blocks", ()))


def kernel_status(device: str, enabled: bool = True, precision: str = "float32",
                  wanted: tuple[bool, bool] = (True, True)) -> str:
    """What the training run's conv → pool → ReLU blocks used, for the page; `wanted`: the blocks the
    training path asks a kernel for (runners/cnn_model/tuning.py picks it)."""
    if not enabled:
        return "未用（配置 fused_conv_pool=False）"
    if device.split(":")[0] != "cpu":
        return "未用（仅 CPU；GPU 上用 cuDNN）"
    if precision != "float32":
        return f"未用（精度 {precision}：由 autocast 计算）"
    if not any(wanted):
        return "未用（本机选定的训练路径不用内核：实测更快）"
    first, second = conv_pool.load(), winograd_pool.load()
    if all(wanted) and first.lib and second.lib and first.how == second.how:
        return (f"已用：conv1 块（直接卷积）与 conv2 块（Winograd F(2×2, 3×3)）各与其后的 2×2 池化和 ReLU 融合为一个 C 内核"
                f"（{first.how}）")
    return "；".join(f"{name} 块{'已用' if built.lib else '未用'}（{built.how}）" if want else f"{name} 块未用（选定的路径不用）"
                     for name, built, want in (("conv1", first, wanted[0]), ("conv2", second, wanted[1])))


def kernels_apply(device: str, enabled: bool = True, precision: str = "float32") -> bool:
    """Whether training tries the fused kernels at all: on a CPU, in float32, unless switched off."""
    return enabled and device.split(":")[0] == "cpu" and precision == "float32"


def kernel_provenance(device: str, enabled: bool = True, precision: str = "float32",
                      wanted: tuple[bool, bool] = (True, True)) -> dict[str, str]:
    """For `ctx.provenance`: whether the native kernels ran (or why not), how they were compiled, and the
    intra-op thread count (their weight gradients, like torch's reductions, are summed per thread)."""
    notes = {"native_kernels": kernel_status(device, enabled, precision, wanted), "threads": str(torch.get_num_threads())}
    if kernels_apply(device, enabled, precision):
        commands = [built.command for built in (conv_pool.load(), winograd_pool.load()) if built.command]
        notes["kernel_compiler"] = "；".join(commands) or "未编译（找不到 C 编译器）"
    return notes
