"""The CNN's second block, conv2 (32 → 64 channels, 3×3), 2×2 max pooling, ReLU, as one C kernel for CPU training.

conv2 is 82 % of a training step's FLOPs (13.4 of 16.4 MFLOP per image). This kernel computes it
with Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray, "Fast Algorithms for Convolutional
Neural Networks", 2016): each 2×2 block of outputs comes from a 4×4 input tile as
Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A, 16 multiplications per channel pair instead of 36, and summed over
input channels that is 16 small matrix products per image. A 2×2 output block is exactly one
pooling window, so the kernel pools, adds the bias and applies the ReLU as it leaves the
transform: the 11×11×64 map is never written (its last row and column are never pooled, so
never computed), and backward builds its gradient from the pooled gradient and the one-byte
window position, as conv_pool.py does. The input and weight gradients are the exact
adjoints of the forward transforms (dX = B dV Bᵀ scattered over the overlapping tiles,
dg = Gᵀ dU G), so they are the convolution's gradients up to rounding.

Arithmetic per image: 3 passes × 16 × 25 tiles × 32 × 64 × 2 = 4.9 MFLOP against 13.4 MFLOP for
the direct convolution's forward and two backward products (`ARITHMETIC_PER_IMAGE`).

Rounding differs from the direct convolution (Winograd's sums are in another order, with
errors about 1e-6 of the values; tests/runners/test_winograd_pool.py states the tolerances),
so where two outputs of a window are equal in exact arithmetic but their tile is not uniform,
rounding may pick another maximum than torch does, and the gradient goes to that position: a
different subgradient at a tie, the convolution's own ambiguity. Over a uniform tile (the
digits' background) all four outputs are computed alike and the first one wins, as in torch.
NaN wins its window; the weight gradient is summed per chunk of images in a fixed order, so
results are deterministic for a given thread count. The kernel
(winograd_pool.c) is built on first use by build.py.
"""

from __future__ import annotations

import ctypes
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from runners.kernels import build

IN_CHANNELS, OUT_CHANNELS = 32, 64
ARITHMETIC_PER_IMAGE = 3 * 16 * 25 * IN_CHANNELS * OUT_CHANNELS * 2  # the three products' FLOPs, 13×13 inputs


def _declare(lib: Any) -> None:
    pointer, int64, int32 = build.POINTER, build.INT64, ctypes.c_int
    lib.wino_weights.argtypes = [pointer, pointer, pointer]
    lib.wino_pool_forward.argtypes = [pointer] * 5 + [int64] * 3 + [int32, pointer]
    lib.wino_pool_backward.argtypes = [pointer] * 7 + [int64] * 3 + [int32, pointer]
    lib.wino_weights_grad.argtypes = [pointer, pointer]


@cache
def load() -> build.Built:
    """The compiled library (`.lib`; None where it cannot be built) and how it was built, once per process."""
    return build.build("winograd_pool", Path(__file__).with_suffix(".c"), _declare)


def _tiles(h: int, w: int) -> int:
    return ((h - 2) // 2) * ((w - 2) // 2)


class WinogradPoolFunction(torch.autograd.Function):
    """relu(max_pool2d(conv2d(x, weight, bias), 2)) for x of shape N×32×H×W, weight 64×32×3×3."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        lib = load().lib
        n, _, h, w = x.shape
        threads = torch.get_num_threads()
        # every buffer the kernel reads is held by a name until it returns (a temporary could be freed first)
        x_nhwc = x.detach().permute(0, 2, 3, 1).contiguous()  # a view when x is channels_last, as in training
        taps, shift = weight.detach().contiguous(), bias.detach().contiguous()
        transformed = torch.empty(16, IN_CHANNELS, OUT_CHANNELS)
        transposed = torch.empty(16, OUT_CHANNELS, IN_CHANNELS)  # for backward: the same weights, other layout
        lib.wino_weights(build.ptr(taps), build.ptr(transformed), build.ptr(transposed))
        out = torch.empty((n, (h - 2) // 2, (w - 2) // 2, OUT_CHANNELS))
        where = torch.empty(out.shape, dtype=torch.uint8)
        scratch = torch.empty(threads * 16 * _tiles(h, w) * (IN_CHANNELS + OUT_CHANNELS))
        buffers = (build.ptr(t) for t in (x_nhwc, transformed, shift, out, where))
        lib.wino_pool_forward(*buffers, n, h, w, threads, build.ptr(scratch))
        ctx.save_for_backward(x_nhwc, where, transposed)
        return out.permute(0, 3, 1, 2)  # N×C×H×W in channels_last memory, as the unfused block gives

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        lib = load().lib
        x_nhwc, where, transposed = ctx.saved_tensors
        n, h, w, _ = x_nhwc.shape
        threads, tiles = torch.get_num_threads(), _tiles(h, w)
        grad_nhwc = grad.permute(0, 2, 3, 1).contiguous()
        grad_x = torch.empty_like(x_nhwc)
        grad_transformed, grad_bias = torch.empty(16, IN_CHANNELS, OUT_CHANNELS), torch.empty(OUT_CHANNELS)
        per_thread = 16 * tiles * (2 * IN_CHANNELS + OUT_CHANNELS) + 16 * IN_CHANNELS * OUT_CHANNELS + OUT_CHANNELS
        scratch = torch.empty(threads * per_thread)
        buffers = (build.ptr(t) for t in (x_nhwc, grad_nhwc, where, transposed, grad_x, grad_transformed, grad_bias))
        lib.wino_pool_backward(*buffers, n, h, w, threads, build.ptr(scratch))
        grad_weight = torch.empty(OUT_CHANNELS, IN_CHANNELS, 3, 3)
        lib.wino_weights_grad(build.ptr(grad_transformed), build.ptr(grad_weight))
        grad_input = grad_x.permute(0, 3, 1, 2) if ctx.needs_input_grad[0] else None
        return grad_input, grad_weight, grad_bias


def fits(conv: nn.Conv2d, pool: nn.MaxPool2d) -> bool:
    """Whether the kernel computes this conv → pool pair (the §2.5 CNN's second block)."""
    return build.fits_conv_pool(conv, pool, IN_CHANNELS, OUT_CHANNELS)


def applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether this call can take the kernel: CPU float32, 32 channels of at least 4×4, no autocast."""
    return (x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32 and x.dim() == 4
            and x.shape[1] == IN_CHANNELS and min(x.shape[2:]) >= 4 and not build.cpu_autocast())


def conv_pool_relu(x: torch.Tensor, conv: nn.Conv2d, pool: nn.MaxPool2d, relu: nn.ReLU) -> torch.Tensor:
    """relu(pool(conv(x))), through the fused kernel when it is loaded and applies, else through the modules."""
    if load().lib is not None and applies(x, conv.weight):
        return WinogradPoolFunction.apply(x, conv.weight, conv.bias)
    return relu(pool(conv(x)))
