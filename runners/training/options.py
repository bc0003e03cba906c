"""Options a training run resolves before its first step: the profile, the optimizer implementation,
the arithmetic (float32 or bf16 autocast) and the allocator, each with the words the page shows."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
from collections.abc import Iterable
from typing import Any

import torch

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
