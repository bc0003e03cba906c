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
a given thread count. The input must not need a gradient (it is the data). The kernel is built on
first use by runners/kernels.py; without a C compiler the modules run and `load()` says why.
"""

from __future__ import annotations

import ctypes
from functools import cache
from typing import Any

import torch
from torch import nn

from runners import kernels

CHANNELS = 32  # the kernel's fixed output width: two 16-float vectors per pixel
SOURCE = kernels.PRELUDE + r"""
#define C 32
#define V (C / 16)
#define K 9

/* x: n×h×w images; wt: 9×C weights (tap-major); out: n×ph×pw×C pooled and ReLU'd;
   arg: window position 0..3 of each maximum, 4 where the ReLU passes no gradient (max <= 0 or NaN) */
void conv_pool_forward(const float *x, const float *wt, const float *bias, float *out, uint8_t *arg,
                       int64_t n, int64_t h, int64_t w, int threads) {
    const int64_t ph = (h - 2) / 2, pw = (w - 2) / 2;
    vf wk[K][V], bv[V];
    for (int k = 0; k < K; k++) for (int u = 0; u < V; u++) wk[k][u] = load(wt + k * C + 16 * u);
    for (int u = 0; u < V; u++) bv[u] = load(bias + 16 * u);
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t b = 0; b < n; b++) {
        const float *img = x + b * h * w;
        for (int64_t i = 0; i < ph; i++) {
            for (int64_t j = 0; j < pw; j++) {
                vf acc[4][V];
                for (int q = 0; q < 4; q++) for (int u = 0; u < V; u++) acc[q][u] = (vf){0};
                for (int k = 0; k < K; k++) {
                    for (int q = 0; q < 4; q++) {
                        const float v = img[(2 * i + q / 2 + k / 3) * w + 2 * j + q % 2 + k % 3];
                        for (int u = 0; u < V; u++) acc[q][u] += v * wk[k][u];
                    }
                }
                float *o = out + ((b * ph + i) * pw + j) * C;
                uint8_t *a = arg + ((b * ph + i) * pw + j) * C;
                for (int u = 0; u < V; u++) {
                    const vf y[4] = {acc[0][u] + bv[u], acc[1][u] + bv[u], acc[2][u] + bv[u], acc[3][u] + bv[u]};
                    pool_relu(y, o + 16 * u, a + 16 * u);
                }
            }
        }
    }
}

/* grad_wt: 9×C, grad_b: C, from the pooled gradient; scratch: chunks×10×C partial sums */
void conv_pool_backward(const float *x, const float *grad, const uint8_t *arg, float *grad_wt, float *grad_b,
                        int64_t n, int64_t h, int64_t w, int chunks, float *scratch) {
    const int64_t ph = (h - 2) / 2, pw = (w - 2) / 2;
    #pragma omp parallel for num_threads(chunks) schedule(static, 1)
    for (int t = 0; t < chunks; t++) {
        vf gw[K][V], gb[V];
        for (int k = 0; k < K; k++) for (int u = 0; u < V; u++) gw[k][u] = (vf){0};
        for (int u = 0; u < V; u++) gb[u] = (vf){0};
        for (int64_t b = n * t / chunks; b < n * (t + 1) / chunks; b++) {
            const float *img = x + b * h * w;
            for (int64_t i = 0; i < ph; i++) {
                for (int64_t j = 0; j < pw; j++) {
                    float win[4][4];
                    for (int r = 0; r < 4; r++)
                        for (int s = 0; s < 4; s++) win[r][s] = img[(2 * i + r) * w + 2 * j + s];
                    const int64_t at = ((b * ph + i) * pw + j) * C;
                    for (int u = 0; u < V; u++) {
                        vb packed;
                        memcpy(&packed, arg + at + 16 * u, sizeof packed);
                        const vi q = __builtin_convertvector(packed, vi);
                        const vf g = pick(q != 4, load(grad + at + 16 * u), (vf){0});
                        const vi is1 = q == 1, is2 = q == 2, is3 = q == 3;
                        gb[u] += g;
                        for (int k = 0; k < K; k++) {
                            const int kh = k / 3, kw = k % 3;
                            vf v = (vf){0} + win[kh][kw];
                            v = pick(is1, (vf){0} + win[kh][kw + 1], v);
                            v = pick(is2, (vf){0} + win[kh + 1][kw], v);
                            v = pick(is3, (vf){0} + win[kh + 1][kw + 1], v);
                            gw[k][u] += g * v;
                        }
                    }
                }
            }
        }
        float *mine = scratch + t * (K + 1) * C;
        for (int k = 0; k < K; k++) for (int u = 0; u < V; u++) store(mine + k * C + 16 * u, gw[k][u]);
        for (int u = 0; u < V; u++) store(mine + K * C + 16 * u, gb[u]);
    }
    for (int c = 0; c < (K + 1) * C; c++) {
        float s = scratch[c];
        for (int t = 1; t < chunks; t++) s += scratch[t * (K + 1) * C + c];
        if (c < K * C) grad_wt[c] = s; else grad_b[c - K * C] = s;
    }
}
"""
def _declare(lib: Any) -> None:
    lib.conv_pool_forward.argtypes = [kernels.POINTER] * 5 + [kernels.INT64] * 3 + [ctypes.c_int]
    lib.conv_pool_backward.argtypes = [kernels.POINTER] * 5 + [kernels.INT64] * 3 + [ctypes.c_int, kernels.POINTER]


@cache
def load() -> tuple[Any, str]:
    """(the compiled library, how it was built) or (None, why not), once per process."""
    return kernels.build("conv_pool", SOURCE, _declare)


class ConvPoolFunction(torch.autograd.Function):
    """relu(max_pool2d(conv2d(x, weight, bias), 2)) for x of shape N×1×H×W; no gradient for x."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        lib, _ = load()
        n, _, h, w = x.shape
        x = x.contiguous()  # one channel: NCHW and NHWC are the same bytes
        # every buffer the kernel reads is held by a name until it returns (a temporary could be freed first)
        taps = weight.detach().reshape(CHANNELS, 9).t().contiguous()
        shift = bias.detach().contiguous()
        out = torch.empty((n, (h - 2) // 2, (w - 2) // 2, CHANNELS))
        where = torch.empty(out.shape, dtype=torch.uint8)
        buffers = (kernels.ptr(t) for t in (x, taps, shift, out, where))
        lib.conv_pool_forward(*buffers, n, h, w, torch.get_num_threads())
        ctx.save_for_backward(x, where)
        return out.permute(0, 3, 1, 2)  # N×C×H×W in channels_last memory, as the unfused block gives

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor, torch.Tensor]:
        lib, _ = load()
        x, where = ctx.saved_tensors
        n, _, h, w = x.shape
        chunks = torch.get_num_threads()
        grad_taps, grad_bias = torch.empty(9, CHANNELS), torch.empty(CHANNELS)
        scratch = torch.empty(chunks * 10 * CHANNELS)
        grad_nhwc = grad.permute(0, 2, 3, 1).contiguous()  # a view when grad is channels_last, as in training
        buffers = (kernels.ptr(t) for t in (x, grad_nhwc, where, grad_taps, grad_bias))
        lib.conv_pool_backward(*buffers, n, h, w, chunks, kernels.ptr(scratch))
        return None, grad_taps.t().reshape(CHANNELS, 1, 3, 3), grad_bias


def fits(conv: nn.Conv2d, pool: nn.MaxPool2d) -> bool:
    """Whether the kernel computes this conv → pool pair (the §2.5 CNN's first block)."""
    return kernels.fits_conv_pool(conv, pool, 1, CHANNELS)


def applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether this call can take the kernel: CPU float32 data that needs no gradient, no autocast."""
    return (x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32 and not x.requires_grad
            and x.dim() == 4 and min(x.shape[2:]) >= 4 and not kernels.cpu_autocast())


def conv_pool_relu(x: torch.Tensor, conv: nn.Conv2d, pool: nn.MaxPool2d, relu: nn.ReLU) -> torch.Tensor:
    """relu(pool(conv(x))), through the fused kernel when it is loaded and applies, else through the modules."""
    if load()[0] is not None and applies(x, conv.weight):
        return ConvPoolFunction.apply(x, conv.weight, conv.bias)
    return relu(pool(conv(x)))
