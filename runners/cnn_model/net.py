"""The §2.5 Keras CNN ported to PyTorch, and the training loop that runners/cnn.py and
benchmarks/cnn_throughput.py share (so the benchmark measures exactly what the page reports).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from runners import conv_pool, winograd_pool
from runners.training import GraphedStep, LossWatch, Progress, adam, autocast, batch_indices


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
    and conv2 → pool2 → relu2 each as one C kernel (runners/conv_pool.py, runners/winograd_pool.py:
    the same function up to float32 rounding). Evaluation and tracing always go through the modules.
    """

    fused_blocks = (False, False)  # (first block, second block)

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
        if first:
            x = conv_pool.conv_pool_relu(x, self.conv1, self.pool1, self.relu1)
        else:
            x = self.relu1(self.pool1(self.conv1(x)))
        if second:
            x = winograd_pool.conv_pool_relu(x, self.conv2, self.pool2, self.relu2)
        else:
            x = self.relu2(self.pool2(self.conv2(x)))
        x = self.relu3(self.conv3(x))
        # Keras flattens NHWC (h, w, c order); ours flattens c, h, w. Same layer up to a fixed
        # permutation of fc1's inputs, so training is unaffected.
        return self.fc2(self.relu4(self.fc1(self.flatten(x))))


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass
class EpochStats:
    loss: float  # mean training loss over the epoch's batches, as Keras' fit() reports it
    accuracy: float  # share of training images classified correctly while training (running)
    seconds: float


def make_optimizer(model: nn.Module, lr: float, eps: float, capturable: bool = False) -> torch.optim.Optimizer:
    device = next(model.parameters()).device
    return adam(model.parameters(), device.type, capturable=capturable, lr=lr, eps=eps)


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    desc: str = "",
    epoch: int = 1,
    graphed: GraphedStep | None = None,
) -> EpochStats:
    """One pass over (x, y) in a random order: batches are index_select'ed from the resident tensor.
    Raises training.Diverged when a step's loss is nan or inf.

    `graphed` (made by `graphed_step`) replays full batches as a CUDA graph on a GPU; keep the
    same one across epochs so the graph is captured once.
    """
    model.train()
    n = len(x)
    run_step = graphed or train_step(model, optimizer, x, y)
    progress = Progress((n + batch_size - 1) // batch_size, desc)
    # running sums stay on the device: no host sync per step (matters on a GPU)
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), dtype=torch.long, device=x.device)
    watch = LossWatch(epoch)
    started = time.perf_counter()
    for idx in batch_indices(n, batch_size, generator, str(x.device)):
        loss, hits = run_step(idx)
        loss_sum += loss * len(idx)
        correct += hits
        watch.add(loss)
        progress.update()
    watch.flush()
    loss, accuracy = loss_sum.item() / n, correct.item() / n  # waits for queued GPU work: time after it
    return EpochStats(loss, accuracy, time.perf_counter() - started)


def train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, precision: str = "float32"
) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """The step on the batch `idx` of the resident (x, y): returns (mean loss, correct count), detached.

    Gradients are zeroed in place, not set to None: the same tensors every step, which a CUDA
    graph needs and which on CPU saves reallocating them. `precision` "bf16" runs the forward
    pass under bfloat16 autocast (training.autocast); the loss is always taken in float32.
    """
    loss_fn = nn.functional.cross_entropy
    mixed = autocast(str(x.device), precision)  # raises on an unknown precision before any step runs

    def step(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xb = x.index_select(0, idx)
        yb = y.index_select(0, idx)
        with mixed:
            logits = model(xb)
        loss = loss_fn(logits.float(), yb)
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            return loss.detach(), (logits.argmax(1) == yb).sum()

    return step


def graphed_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, batch_size: int, enabled: bool,
    precision: str = "float32",
) -> GraphedStep:
    """`train_step` wrapped for CUDA graph replay (a plain call on CPU); the optimizer must be capturable on CUDA."""
    return GraphedStep(train_step(model, optimizer, x, y, precision), batch_size, str(x.device), enabled)


def prepare_model(model: nn.Module, device: str, channels_last: bool, fuse_blocks: bool = False) -> nn.Module:
    """The model on `device`; NHWC activations with `channels_last`; with `fuse_blocks`, training on a
    CPU runs each conv → pool → ReLU block as one kernel where it compiles here (`kernel_status` says)."""
    model.to(device)
    if fuse_blocks and device.split(":")[0] == "cpu" and isinstance(model, Net):
        model.fused_blocks = (conv_pool.fits(model.conv1, model.pool1) and conv_pool.load()[0] is not None,
                              winograd_pool.fits(model.conv2, model.pool2) and winograd_pool.load()[0] is not None)
    if channels_last and not model_is_fused(model):
        # NHWC activations: on CPU max pooling is ~9x and the oneDNN convolutions somewhat faster
        # than in NCHW for this model (profiled; about 1.3x per training step overall). The fused
        # kernels' outputs are NHWC already, so the layers after them run NHWC anyway; converting
        # the weights as well was slower there (benchmarks/cnn_throughput.py, "NCHW" row).
        model.to(memory_format=torch.channels_last)
    return model


def model_is_fused(model: nn.Module) -> bool:
    return any(getattr(model, "fused_blocks", ()))


def kernel_status(device: str, enabled: bool = True, precision: str = "float32") -> str:
    """What the training run's conv → pool → ReLU blocks used, for the page."""
    if not enabled:
        return "未用（配置 fused_conv_pool=False）"
    if device.split(":")[0] != "cpu":
        return "未用（仅 CPU；GPU 上用 cuDNN）"
    if precision != "float32":
        return f"未用（精度 {precision}：由 autocast 计算）"
    (first, first_how), (second, second_how) = conv_pool.load(), winograd_pool.load()
    if first and second and first_how == second_how:
        return (f"已用：conv1 块（直接卷积）与 conv2 块（Winograd F(2×2, 3×3)）各与其后的 2×2 池化和 ReLU 融合为一个 C 内核"
                f"（{first_how}）")
    return "；".join(f"{name} 块{'已用' if lib else '未用'}（{how}）"
                     for name, lib, how in (("conv1", first, first_how), ("conv2", second, second_how)))
