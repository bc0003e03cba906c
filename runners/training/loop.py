"""Shared pieces of the training runners: profiles, the in-memory batch loop, progress, allocator.

The loop keeps the whole data set as one tensor on the training device and draws batches by
indexing it, with no `DataLoader` and no per-sample work: on MNIST-sized data the model, not the
input pipeline, should be the cost (see benchmarks/cnn_throughput.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

PROFILES = ("auto", "full", "quick")


def resolve_profile(profile: str, device: str) -> str:
    """`auto` runs the article's full settings on an accelerator and the quick budget on a CPU."""
    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r} is not one of {', '.join(PROFILES)}")
    if profile != "auto":
        return profile
    return "full" if device in ("cuda", "mps") else "quick"


def tune_allocator() -> str:
    """Keep glibc from returning large freed buffers to the OS after every step.

    A training step frees and reallocates the same multi-megabyte activation buffers; with
    glibc's default dynamic mmap threshold each of them can become an mmap/munmap pair with
    page faults. Raising the thresholds once per process keeps them in the heap. Returns what
    was done, for the page.
    """
    if not sys.platform.startswith("linux"):
        return "未调整（非 Linux）"
    name = ctypes.util.find_library("c")
    if not name:
        return "未调整（找不到 libc）"
    libc = ctypes.CDLL(name)
    m_trim_threshold, m_mmap_threshold = -1, -3
    size = 1 << 30
    ok = libc.mallopt(m_mmap_threshold, size) == 1 and libc.mallopt(m_trim_threshold, size) == 1
    return "glibc mallopt：M_MMAP_THRESHOLD = M_TRIM_THRESHOLD = 1 GiB" if ok else "mallopt 调用失败，未调整"


def to_device_images(images: np.ndarray, device: str, channels_last: bool = False) -> torch.Tensor:
    """uint8 N×28×28 → float32 N×1×28×28 in [0, 1] on the device, converted once."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device).unsqueeze(1).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def to_device_labels(labels: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(labels.astype(np.int64)).to(device)


def batch_indices(n: int, batch_size: int, generator: torch.Generator, device: str) -> Iterator[torch.Tensor]:
    """A fresh random order each epoch, cut into batches (the last one may be smaller)."""
    order = torch.randperm(n, generator=generator).to(device)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def adam(params: Iterable[torch.Tensor], device: str, *, capturable: bool = False, **kwargs: Any) -> torch.optim.Adam:
    """torch.optim.Adam using the fused kernel where torch has one for the device (CPU and CUDA).

    The fused step updates every parameter in one kernel instead of a dozen small ones per
    tensor: on the §2.5 CNN it halves the optimizer's share of a CPU step, and on a GPU it cuts
    kernel launches. Same algorithm; results differ from the foreach version in the last bits.
    An older torch without a fused kernel for the device gets the default implementation.
    `capturable` keeps the step count on the device, which CUDA graph capture needs.
    """
    params = list(params)
    if device.split(":")[0] in ("cpu", "cuda"):
        try:
            return torch.optim.Adam(params, fused=True, capturable=capturable, **kwargs)
        except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device in this torch
            pass
    return torch.optim.Adam(params, capturable=capturable, **kwargs)


def describe_optimizer(optimizer: torch.optim.Optimizer) -> str:
    """"Adam (fused)" / "Adam (foreach)" …: which implementation the run used, for the page."""
    options = optimizer.defaults
    on_cuda = optimizer.param_groups[0]["params"][0].device.type == "cuda"
    foreach = options.get("foreach")
    foreach = on_cuda if foreach is None else foreach  # torch's default: foreach on CUDA, a for-loop elsewhere
    kind = "fused" if options.get("fused") else "foreach" if foreach else "for-loop"
    return f"{type(optimizer).__name__} ({kind}{', capturable' if options.get('capturable') else ''})"


PRECISIONS = ("float32", "bf16")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    return precision


def autocast(device: str, precision: str) -> contextlib.AbstractContextManager[Any]:
    """The context a training step's forward pass and loss run in: nothing for float32; for
    "bf16", torch.autocast to bfloat16 (convolutions and matrix products in bfloat16, weights,
    gradients and optimizer state stay float32).

    The weight-cast cache is off: each weight is used once per step, and a CUDA graph capture
    must not keep cached casts from before it.
    """
    if check_precision(precision) == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device.split(":")[0], dtype=torch.bfloat16, cache_enabled=False)


def native_bf16(device: str) -> bool | None:
    """Whether the device computes bfloat16 in hardware (None: torch cannot tell). Without it
    oneDNN emulates bfloat16 on a CPU, which is correct but slower than float32."""
    kind = device.split(":")[0]
    try:
        if kind == "cuda":
            return bool(torch.cuda.is_bf16_supported())
        if kind == "cpu":
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # this torch cannot tell
        return None
    return None


def precision_note(device: str, precision: str = "float32") -> str:
    """The arithmetic the training step used, for the page."""
    kind = device.split(":")[0]
    if check_precision(precision) == "bf16":
        hardware = {True: "本机硬件原生支持 bfloat16", False: "本机硬件不支持 bfloat16，由软件模拟（会更慢）",
                    None: "无法判断本机是否原生支持 bfloat16"}[native_bf16(device)]
        return ("bf16 自动混合精度（torch.autocast）：卷积与矩阵乘以 bfloat16 计算，权重、梯度与优化器状态保持 float32，"
                f"评估以 float32 计算；结果与 float32 运行不逐位相同（{hardware}）")
    if kind != "cuda":
        return "float32（不降精度）"
    conv = "允许 TF32" if torch.backends.cudnn.allow_tf32 else "纯 float32"
    matmul = torch.get_float32_matmul_precision()
    return f"float32 张量；cuDNN 卷积 {conv}（PyTorch 默认）；矩阵乘精度设置 {matmul}（PyTorch 默认 highest，即不用 TF32）"


class GraphedStep:
    """Runs `step(idx)` (a whole training step: forward, backward, optimizer) and returns its outputs;
    on CUDA, full batches replay a CUDA graph captured once, so a step costs one launch.

    Small models at batch 64 spend most of a GPU step launching kernels; a graph removes that.
    The first `warmup` full batches run eagerly on a side stream (cuDNN picks its algorithms,
    optimizer state is created), the next one is captured and replayed. A batch of another size
    (the last of an epoch) runs eagerly. The step must zero gradients in place
    (`zero_grad(set_to_none=False)`) so eager and replayed steps use the same gradient tensors,
    must not sync with the host, and the optimizer must be capturable. Outputs are cloned, since
    the graph overwrites its own on the next replay. If capture fails, the reason is kept in
    `status` and every step runs eagerly. On CPU and MPS this is just `step(idx)`.
    """

    def __init__(self, step: Callable[[torch.Tensor], tuple[torch.Tensor, ...]], batch_size: int, device: str,
                 enabled: bool = True, warmup: int = 3) -> None:
        self.step, self.batch_size, self.warmup = step, batch_size, warmup
        self.enabled = enabled and device.split(":")[0] == "cuda"
        self.graph: Any = None
        self.side: Any = None
        self.static_idx: torch.Tensor | None = None
        self.static_out: tuple[torch.Tensor, ...] = ()
        self.eager_full_batches = 0
        self.replays = 0
        self.status = "未用（仅 CUDA）" if not self.enabled else "未用（还没有满批）"

    def __call__(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if not self.enabled or len(idx) != self.batch_size:
            return self.step(idx)
        if self.graph is not None:
            assert self.static_idx is not None
            self.static_idx.copy_(idx)
            self.graph.replay()
            self.replays += 1
            return tuple(t.clone() for t in self.static_out)
        if self.eager_full_batches < self.warmup:
            self.eager_full_batches += 1
            return self._on_side_stream(idx)
        if self._capture(idx):
            return self(idx)
        return self.step(idx)

    def _on_side_stream(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.side is None:  # one stream for every warm-up step, as in PyTorch's CUDA graph recipe
            self.side = torch.cuda.Stream()
        side = self.side
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            out = self.step(idx)
        torch.cuda.current_stream().wait_stream(side)
        return out

    def _capture(self, idx: torch.Tensor) -> bool:
        """Record one step with `idx`'s shape; True when the graph is ready (nothing has run yet)."""
        self.static_idx = idx.clone()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self.static_out = self.step(self.static_idx)
        except RuntimeError as exc:  # some op cannot be captured here: stay eager, say why
            self.enabled = False
            self.status = "未用（捕获失败：" + " ".join(str(exc).split())[:160] + "）"
            return False
        self.graph = graph
        self.status = f"已用：每个满批（{self.batch_size}）重放同一个 CUDA graph"
        return True


class Progress:
    """A one-line progress bar on a terminal; silent when stderr is not a TTY (builds, CI)."""

    def __init__(self, total: int, desc: str, stream: Any = None) -> None:
        self.total, self.desc, self.done = total, desc, 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.started = time.perf_counter()

    def update(self, steps: int = 1, note: str = "") -> None:
        self.done += steps
        if not self.enabled:
            return
        width = 30
        filled = int(width * self.done / max(1, self.total))
        rate = self.done / max(1e-9, time.perf_counter() - self.started)
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r{self.desc} [{bar}] {self.done}/{self.total} {rate:.1f} it/s {note}")
        if self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


class Diverged(FloatingPointError):
    """Training produced a non-finite loss: every number after it would be meaningless."""


def check_finite(loss: torch.Tensor | float, step: int, epoch: int, name: str = "loss") -> None:
    """Raise Diverged ("loss became nan at epoch 2, step 37") if `loss` is nan or ±inf.

    `loss` is one value for `step`, or a tensor whose first dimension holds the losses of
    consecutive steps starting at `step` (the first bad one is named). Reading a tensor waits
    for the device, so callers on an accelerator batch the check (see LossWatch).
    """
    if not isinstance(loss, torch.Tensor):
        if not math.isfinite(loss):
            raise Diverged(f"{name} became {loss} at epoch {epoch}, step {step}")
        return
    values = loss.detach().reshape(len(loss) if loss.ndim else 1, -1)
    bad = ~torch.isfinite(values).all(dim=1)
    if bool(bad.any()):
        first = int(bad.nonzero()[0, 0])
        value = values[first][~torch.isfinite(values[first])][0].item()
        raise Diverged(f"{name} became {value} at epoch {epoch}, step {step + first}")


def check_diverged(losses: list[torch.Tensor], models: list[nn.Module], step: int, epoch: int, name: str) -> None:
    """After a step failed: raise Diverged if an earlier step's loss or the weights are no longer finite
    (a loss that rejects nan inputs fails one step after the divergence, with a less telling message)."""
    if losses:
        check_finite(torch.stack(losses), 1, epoch, name)
    if any(not bool(torch.isfinite(p).all()) for model in models for p in model.parameters()):
        raise Diverged(f"{name} became nan at epoch {epoch}, step {step}")


class LossWatch:
    """Checks every step's loss with one host sync per `every` steps (and at `flush`), not per step.

    Steps are numbered from 1 within the epoch. On a CPU the sync costs nothing; on a GPU a
    per-step `.item()` would stall the queue, so the detached losses are kept and stacked.
    """

    def __init__(self, epoch: int, every: int = 100, name: str = "loss") -> None:
        self.epoch, self.every, self.name = epoch, every, name
        self.pending: list[torch.Tensor] = []
        self.first = 1  # step number of pending[0]

    def add(self, loss: torch.Tensor) -> None:
        self.pending.append(loss.detach())
        if len(self.pending) >= self.every:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            check_finite(torch.stack(self.pending), self.first, self.epoch, self.name)
            self.first += len(self.pending)
            self.pending.clear()


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> tuple[float, float, torch.Tensor]:
    """Mean cross-entropy, accuracy and the logits of the whole set (model in eval mode)."""
    was_training = model.training
    model.eval()
    logits = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    loss = nn.functional.cross_entropy(logits, y).item()
    accuracy = (logits.argmax(1) == y).float().mean().item()
    return loss, accuracy, logits
