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
a given thread count. The input must not need a gradient (it is the data). The kernel is compiled
with the C compiler (`$CC`, else `cc`) on first use and cached under `$LIVING_KERNEL_DIR` (else
~/.cache/living-article/kernels), keyed by source, compiler and CPU. Without a compiler it is
not used and `status()` says why.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

CHANNELS = 32  # the kernel's fixed output width: two 16-float vectors per pixel
SOURCE = r"""
#include <stdint.h>
#include <string.h>

typedef float vf __attribute__((vector_size(64)));   /* 16 channels */
typedef int32_t vi __attribute__((vector_size(64)));
typedef uint8_t vb __attribute__((vector_size(16)));

#define C 32
#define V (C / 16)
#define K 9

static inline vf load(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void store(float *p, vf v) { memcpy(p, &v, sizeof v); }
static inline vf pick(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }

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
                    vf best = acc[0][u] + bv[u];
                    vi where = (vi){0};
                    for (int q = 1; q < 4; q++) {
                        const vf y = acc[q][u] + bv[u];
                        const vi take = (y > best) | (y != y);
                        best = pick(take, y, best);
                        where = (where & ~take) | (take & q);
                    }
                    const vi positive = best > 0, nan = best != best;
                    store(o + 16 * u, pick(positive | nan, best, (vf){0}));
                    where = (where & positive) | (~positive & 4);
                    const vb packed = __builtin_convertvector(where, vb);
                    memcpy(a + 16 * u, &packed, sizeof packed);
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
# -O3 without -ffast-math: IEEE float32 (NaN tests and summation order kept); OpenMP shares the
# runtime torch has loaded (same soname), so the kernel uses torch's thread pool, not a second one
FLAGS = (("-O3", "-march=native", "-fopenmp"), ("-O3", "-march=native"))
_POINTER, _INT = ctypes.c_void_p, ctypes.c_int64


def kernel_dir() -> Path:
    if os.environ.get("LIVING_KERNEL_DIR"):
        return Path(os.environ["LIVING_KERNEL_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "living-article" / "kernels"


def _cpu_identity() -> str:
    """-march=native code runs only on CPUs like this one: a shared cache must not mix them."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return "\n".join(sorted({ln for ln in lines if ln.startswith(("model name", "flags"))}))
    except OSError:
        return platform.processor() + platform.machine()


def _compile(compiler: str, flags: tuple[str, ...], target: Path) -> str:
    """Build the shared library at `target` (atomically: runners may compile at once); '' or the error."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        source, built = Path(tmp) / "conv_pool.c", Path(tmp) / target.name
        source.write_text(SOURCE, encoding="utf-8")
        done = subprocess.run([compiler, *flags, "-fPIC", "-shared", str(source), "-o", str(built)],
                              capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            return " ".join((done.stderr or done.stdout).split())[:200]
        os.replace(built, target)
    return ""


@cache
def load() -> tuple[Any, str]:
    """(the compiled library or None, what was done), once per process."""
    compiler = shutil.which(os.environ.get("CC") or "cc")
    if not compiler:
        return None, f"未用（找不到 C 编译器 {os.environ.get('CC') or 'cc'}）"
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=False).stdout
    errors = []
    for flags in FLAGS:
        key = hashlib.sha256("\0".join([SOURCE, version, *flags, _cpu_identity()]).encode()).hexdigest()[:16]
        target = kernel_dir() / f"conv_pool-{key}.so"
        error = "" if target.is_file() else _compile(compiler, flags, target)
        if error:
            errors.append(error)
            continue
        try:
            lib = ctypes.CDLL(str(target))
        except OSError as exc:  # e.g. an OpenMP runtime this process cannot load
            errors.append(" ".join(str(exc).split())[:200])
            continue
        lib.conv_pool_forward.argtypes = [_POINTER] * 5 + [_INT] * 3 + [ctypes.c_int]
        lib.conv_pool_backward.argtypes = [_POINTER] * 5 + [_INT] * 3 + [ctypes.c_int, _POINTER]
        threads = "OpenMP 多线程" if "-fopenmp" in flags else "单线程（编译器不支持 OpenMP）"
        name = version.splitlines()[0] if version else Path(compiler).name
        return lib, f"已用：conv1、2×2 池化与 ReLU 融合为一个 C 内核（{name}，{' '.join(flags)}，{threads}）"
    return None, "未用（编译或加载失败：" + errors[0] + "）"


def _ptr(t: torch.Tensor) -> ctypes.c_void_p:
    return ctypes.c_void_p(t.data_ptr())


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
        lib.conv_pool_forward(_ptr(x), _ptr(taps), _ptr(shift), _ptr(out), _ptr(where), n, h, w, torch.get_num_threads())
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
        lib.conv_pool_backward(_ptr(x), _ptr(grad_nhwc), _ptr(where), _ptr(grad_taps), _ptr(grad_bias), n, h, w, chunks,
                               _ptr(scratch))
        return None, grad_taps.t().reshape(CHANNELS, 1, 3, 3), grad_bias


def fits(conv: nn.Conv2d, pool: nn.MaxPool2d) -> bool:
    """Whether the kernel computes this conv → pool pair (the §2.5 CNN's first block)."""
    return (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
            conv.groups, conv.bias is not None, conv.padding_mode) == (1, CHANNELS, (3, 3), (1, 1), (0, 0), (1, 1), 1,
                                                                        True, "zeros") and \
        (pool.kernel_size, pool.stride, pool.padding, pool.dilation, pool.ceil_mode, pool.return_indices) in (
            ((2, 2), (2, 2), 0, 1, False, False), (2, 2, 0, 1, False, False))


def _cpu_autocast() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch before 2.4
        return torch.is_autocast_cpu_enabled()


def applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether this call can take the kernel: CPU float32 data that needs no gradient, no autocast."""
    return (x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32 and not x.requires_grad
            and x.dim() == 4 and min(x.shape[2:]) >= 4 and not _cpu_autocast())


def conv_pool_relu(x: torch.Tensor, conv: nn.Conv2d, pool: nn.MaxPool2d, relu: nn.ReLU) -> torch.Tensor:
    """relu(pool(conv(x))), through the fused kernel when it is loaded and applies, else through the modules."""
    if load()[0] is not None and applies(x, conv.weight):
        return ConvPoolFunction.apply(x, conv.weight, conv.bias)
    return relu(pool(conv(x)))


def status(device: str, enabled: bool = True, precision: str = "float32") -> str:
    """What the training run's first block used, for the page."""
    if not enabled:
        return "未用（配置 fused_conv_pool=False）"
    if device.split(":")[0] != "cpu":
        return "未用（仅 CPU；GPU 上用 cuDNN）"
    if precision != "float32":
        return f"未用（精度 {precision}：由 autocast 计算）"
    return load()[1]
