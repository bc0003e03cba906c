"""The CNN's first block, conv1 (1 → 32 channels, 3×3), 2×2 max pooling, ReLU, as one C kernel for CPU training.

Unfused, this block is the costliest part of a CPU step after conv2 for 5 % of its FLOPs: the
convolution writes a 26×26×32 map (5.5 MB a batch) only for pooling to keep a quarter of it,
and backward zero-fills a gradient of the same size and scatters into it before the weight
gradient reads it back. The fused kernel keeps the four outputs of each pooling window in
registers, writes the pooled map and the window position of each maximum (one byte), and in
backward computes the weight and bias gradients straight from the pooled gradient. The ReLU
comes with it for free: a window whose maximum is not positive gets no gradient (position 4).

Same arithmetic as torch up to rounding: float32 sums in a fixed order, the window's first
maximum in row-major order (NaN wins), as `max_pool2d` picks it; ReLU keeps NaN and passes no
gradient at 0, as torch's does. The weight gradient is summed
per chunk of images, one chunk per thread, and the chunks are added in order: deterministic for
a given thread count. The input must not need a gradient (it is the data). The kernel (conv_pool.c) is
built on first use by build.py; without a C compiler the modules run and `load()` says why.
"""

from __future__ import annotations

import ctypes
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from runners.kernels import build

CHANNELS = 32  # the kernel's fixed output width: two 16-float vectors per pixel
def _declare(lib: Any) -> None:
    lib.conv_pool_forward.argtypes = [build.POINTER] * 5 + [build.INT64] * 3 + [ctypes.c_int]
    lib.conv_pool_backward.argtypes = [build.POINTER] * 5 + [build.INT64] * 3 + [ctypes.c_int, build.POINTER]


@cache
def load() -> build.Built:
    """The compiled library (`.lib`; None where it cannot be built) and how it was built, once per process."""
    return build.build("conv_pool", Path(__file__).with_suffix(".c"), _declare)


class ConvPoolFunction(torch.autograd.Function):
    """relu(max_pool2d(conv2d(x, weight, bias), 2)) for x of shape N×1×H×W; no gradient for x."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        lib = load().lib
        n, _, h, w = x.shape
        x = x.contiguous()  # one channel: NCHW and NHWC are the same bytes
        # every buffer the kernel reads is held by a name until it returns (a temporary could be freed first)
        taps = weight.detach().reshape(CHANNELS, 9).t().contiguous()
        shift = bias.detach().contiguous()
        out = torch.empty((n, (h - 2) // 2, (w - 2) // 2, CHANNELS))
        where = torch.empty(out.shape, dtype=torch.uint8)
        buffers = (build.ptr(t) for t in (x, taps, shift, out, where))
        lib.conv_pool_forward(*buffers, n, h, w, torch.get_num_threads())
        ctx.save_for_backward(x, where)
        return out.permute(0, 3, 1, 2)  # N×C×H×W in channels_last memory, as the unfused block gives

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor, torch.Tensor]:
        lib = load().lib
        x, where = ctx.saved_tensors
        n, _, h, w = x.shape
        chunks = torch.get_num_threads()
        grad_taps, grad_bias = torch.empty(9, CHANNELS), torch.empty(CHANNELS)
        scratch = torch.empty(chunks * 10 * CHANNELS)
        grad_nhwc = grad.permute(0, 2, 3, 1).contiguous()  # a view when grad is channels_last, as in training
        buffers = (build.ptr(t) for t in (x, grad_nhwc, where, grad_taps, grad_bias))
        lib.conv_pool_backward(*buffers, n, h, w, chunks, build.ptr(scratch))
        return None, grad_taps.t().reshape(CHANNELS, 1, 3, 3), grad_bias


def fits(conv: nn.Conv2d, pool: nn.MaxPool2d) -> bool:
    """Whether the kernel computes this conv → pool pair (the §2.5 CNN's first block)."""
    return build.fits_conv_pool(conv, pool, 1, CHANNELS)


def applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether this call can take the kernel: CPU float32 data that needs no gradient, no autocast."""
    return (x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32 and not x.requires_grad
            and x.dim() == 4 and min(x.shape[2:]) >= 4 and not build.cpu_autocast())


def conv_pool_relu(x: torch.Tensor, conv: nn.Conv2d, pool: nn.MaxPool2d, relu: nn.ReLU) -> torch.Tensor:
    """relu(pool(conv(x))), through the fused kernel when it is loaded and applies, else through the modules."""
    if load().lib is not None and applies(x, conv.weight):
        return ConvPoolFunction.apply(x, conv.weight, conv.bias)
    return relu(pool(conv(x)))
