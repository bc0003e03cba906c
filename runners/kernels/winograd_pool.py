"""The CNN's second block, conv2 (32 → 64 channels, 3×3), 2×2 max pooling, ReLU, as one C kernel for CPU training.

conv2 is 82 % of a training step's FLOPs (13.4 of 16.4 MFLOP per image). This kernel computes it
with Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray, "Fast Algorithms for Convolutional
Neural Networks", 2016): each 2×2 block of outputs comes from a 4×4 input tile as
Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A, 16 multiplications per channel pair instead of 36, and summed over
input channels that is 16 small matrix products per image. A 2×2 output block is exactly one
pooling window, so the kernel pools, adds the bias and applies the ReLU as it leaves the
transform: the 11×11×64 map is never written (its last row and column are never pooled, so
never computed), and backward builds its gradient from the pooled gradient and the one-byte
window position, as runners/conv_pool.py does. The input and weight gradients are the exact
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
results are deterministic for a given thread count. Built on first use by runners/kernels.py.
"""

from __future__ import annotations

import ctypes
from functools import cache
from typing import Any

import torch
from torch import nn

from runners import kernels

IN_CHANNELS, OUT_CHANNELS = 32, 64
ARITHMETIC_PER_IMAGE = 3 * 16 * 25 * IN_CHANNELS * OUT_CHANNELS * 2  # the three products' FLOPs, 13×13 inputs
SOURCE = kernels.PRELUDE + r"""
#define CI 32
#define CO 64
#define VI (CI / 16)
#define VO (CO / 16)

/* G of F(2x2, 3x3); u = G g G^T maps a 3x3 filter to 4x4, and its adjoint dg = G^T du G */
static const float G[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};

/* weight [CO][CI][3][3] -> u[16][CI][CO] for forward and its transpose ut[16][CO][CI] for backward */
void wino_weights(const float *w, float *u, float *ut) {
    for (int co = 0; co < CO; co++) for (int ci = 0; ci < CI; ci++) for (int x = 0; x < 16; x++) {
        float sum = 0;
        for (int i = 0; i < 3; i++) for (int j = 0; j < 3; j++) sum += G[x / 4][i] * w[(co * CI + ci) * 9 + i * 3 + j] * G[x % 4][j];
        u[(x * CI + ci) * CO + co] = ut[(x * CO + co) * CI + ci] = sum;
    }
}

/* dw[CO][CI][3][3] = G^T du G, du: 16×CI×CO */
void wino_weights_grad(const float *du, float *dw) {
    for (int co = 0; co < CO; co++) for (int ci = 0; ci < CI; ci++) for (int k = 0; k < 9; k++) {
        float sum = 0;
        for (int x = 0; x < 16; x++) sum += G[x / 4][k / 3] * du[(x * CI + ci) * CO + co] * G[x % 4][k % 3];
        dw[(co * CI + ci) * 9 + k] = sum;
    }
}

/* V[16][T][CI] for one image (NHWC h×w×CI), tiles ph×pw */
static void input_transform(const float *img, float *v, int64_t w, int64_t ph, int64_t pw) {
    const int64_t T = ph * pw;
    for (int64_t i = 0; i < ph; i++) for (int64_t j = 0; j < pw; j++) {
        const int64_t t = i * pw + j;
        for (int c = 0; c < VI; c++) {
            vf d[4][4], e[4][4];
            for (int r = 0; r < 4; r++) for (int s = 0; s < 4; s++)
                d[r][s] = load(img + ((2 * i + r) * w + 2 * j + s) * CI + 16 * c);
            for (int s = 0; s < 4; s++) {
                e[0][s] = d[0][s] - d[2][s]; e[1][s] = d[1][s] + d[2][s];
                e[2][s] = d[2][s] - d[1][s]; e[3][s] = d[1][s] - d[3][s];
            }
            for (int r = 0; r < 4; r++) {
                vf o[4] = {e[r][0] - e[r][2], e[r][1] + e[r][2], e[r][2] - e[r][1], e[r][1] - e[r][3]};
                for (int s = 0; s < 4; s++) store(v + ((r * 4 + s) * T + t) * CI + 16 * c, o[s]);
            }
        }
    }
}

/* rows t..t+R of c = a[T][K] @ b[K][NV*16], held in registers (inlined with constant R, NV, K) */
static inline __attribute__((always_inline)) void rows(const float *a, const float *b, float *c, int64_t t,
                                                       const int R, const int NV, const int K) {
    vf acc[6][VO];
    for (int r = 0; r < R; r++) for (int v = 0; v < NV; v++) acc[r][v] = (vf){0};
    for (int k = 0; k < K; k++) {
        vf bv[VO];
        for (int v = 0; v < NV; v++) bv[v] = load(b + k * NV * 16 + 16 * v);
        for (int r = 0; r < R; r++) for (int v = 0; v < NV; v++) acc[r][v] += a[(t + r) * K + k] * bv[v];
    }
    for (int r = 0; r < R; r++) for (int v = 0; v < NV; v++) store(c + (t + r) * NV * 16 + 16 * v, acc[r][v]);
}

/* c[T][NV*16] = a[T][K] @ b[K][NV*16], R rows at a time */
static inline __attribute__((always_inline)) void gemm(const float *a, const float *b, float *c, int64_t T,
                                                       const int R, const int NV, const int K) {
    int64_t t = 0;
    for (; t + R <= T; t += R) rows(a, b, c, t, R, NV, K);
    for (; t < T; t++) rows(a, b, c, t, 1, NV, K);
}

/* du[CI][CO] += v[T][CI]^T @ dm[T][CO] */
static void gemm_du(const float *v, const float *dm, float *du, int64_t T) {
    for (int c0 = 0; c0 < CI; c0 += 4) {
        vf acc[4][VO];
        for (int r = 0; r < 4; r++) for (int u = 0; u < VO; u++) acc[r][u] = load(du + (c0 + r) * CO + 16 * u);
        for (int64_t t = 0; t < T; t++) {
            vf bv[VO];
            for (int u = 0; u < VO; u++) bv[u] = load(dm + t * CO + 16 * u);
            for (int r = 0; r < 4; r++) {
                const float x = v[t * CI + c0 + r];
                for (int u = 0; u < VO; u++) acc[r][u] += x * bv[u];
            }
        }
        for (int r = 0; r < 4; r++) for (int u = 0; u < VO; u++) store(du + (c0 + r) * CO + 16 * u, acc[r][u]);
    }
}

/* x: n×h×w×CI (NHWC); u: 16×CI×CO; out, arg: n×ph×pw×CO; scratch: threads × 16·T·(CI+CO) floats */
void wino_pool_forward(const float *x, const float *u, const float *bias, float *out, uint8_t *arg,
                       int64_t n, int64_t h, int64_t w, int threads, float *scratch) {
    const int64_t ph = (h - 2) / 2, pw = (w - 2) / 2, T = ph * pw;
    #pragma omp parallel num_threads(threads)
    {
        const int me = thread_id();
        float *v = scratch + me * 16 * T * (CI + CO), *m = v + 16 * T * CI;
        #pragma omp for schedule(static)
        for (int64_t b = 0; b < n; b++) {
            input_transform(x + b * h * w * CI, v, w, ph, pw);
            for (int xi = 0; xi < 16; xi++) gemm(v + xi * T * CI, u + xi * CI * CO, m + xi * T * CO, T, 5, VO, CI);
            for (int64_t t = 0; t < T; t++) {
                for (int c = 0; c < VO; c++) {
                    vf e[4][4], s[2][4];
                    for (int xi = 0; xi < 16; xi++) e[xi / 4][xi % 4] = load(m + (xi * T + t) * CO + 16 * c);
                    for (int q = 0; q < 4; q++) {
                        s[0][q] = e[0][q] + e[1][q] + e[2][q];
                        s[1][q] = e[1][q] - e[2][q] - e[3][q];
                    }
                    const vf bv = load(bias + 16 * c);
                    const vf y[4] = {s[0][0] + s[0][1] + s[0][2] + bv, s[0][1] - s[0][2] - s[0][3] + bv,
                                     s[1][0] + s[1][1] + s[1][2] + bv, s[1][1] - s[1][2] - s[1][3] + bv};
                    pool_relu(y, out + (b * T + t) * CO + 16 * c, arg + (b * T + t) * CO + 16 * c);
                }
            }
        }
    }
}

/* grad: n×ph×pw×CO pooled gradient; dx: n×h×w×CI; du_out: 16×CI×CO (summed over images, threads in order);
   db: CO; ut: 16×CO×CI; scratch: threads × (16·T·(CI+CO+CI) + 16·CI·CO + CO) floats */
void wino_pool_backward(const float *x, const float *grad, const uint8_t *arg, const float *ut, float *dx,
                        float *du_out, float *db, int64_t n, int64_t h, int64_t w, int threads, float *scratch) {
    const int64_t ph = (h - 2) / 2, pw = (w - 2) / 2, T = ph * pw;
    const int64_t per = 16 * T * (CI + CO + CI) + 16 * CI * CO + CO;
    #pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (int me = 0; me < threads; me++) {
        float *v = scratch + me * per, *dm = v + 16 * T * CI, *dv = dm + 16 * T * CO, *du = dv + 16 * T * CI;
        float *gb = du + 16 * CI * CO;
        memset(du, 0, (16 * CI * CO + CO) * sizeof(float));
        for (int64_t b = n * me / threads; b < n * (me + 1) / threads; b++) {
            input_transform(x + b * h * w * CI, v, w, ph, pw);
            for (int64_t t = 0; t < T; t++) {
                for (int c = 0; c < VO; c++) {
                    vb packed;
                    memcpy(&packed, arg + (b * T + t) * CO + 16 * c, sizeof packed);
                    const vi q = __builtin_convertvector(packed, vi);
                    const vf g = pick(q != 4, load(grad + (b * T + t) * CO + 16 * c), (vf){0});
                    store(gb + 16 * c, load(gb + 16 * c) + g);
                    const vi row0 = (q & 2) == 0, col0 = (q & 1) == 0;
                    /* dM = a_p ⊗ a_q · g with a_0 = (1, 1, 1, 0), a_1 = (0, 1, -1, -1) */
                    const vf one = (vf){0} + 1.0f, zero = (vf){0};
                    const vf ar[4] = {pick(row0, one, zero), one, pick(row0, one, -one), pick(row0, zero, -one)};
                    const vf ac[4] = {pick(col0, one, zero), one, pick(col0, one, -one), pick(col0, zero, -one)};
                    for (int r = 0; r < 4; r++) {
                        const vf gr = g * ar[r];
                        for (int s = 0; s < 4; s++) store(dm + ((r * 4 + s) * T + t) * CO + 16 * c, gr * ac[s]);
                    }
                }
            }
            for (int xi = 0; xi < 16; xi++) {
                gemm(dm + xi * T * CO, ut + xi * CO * CI, dv + xi * T * CI, T, 6, VI, CO);
                gemm_du(v + xi * T * CI, dm + xi * T * CO, du + xi * CI * CO, T);
            }
            float *img = dx + b * h * w * CI;
            memset(img, 0, h * w * CI * sizeof(float));
            for (int64_t i = 0; i < ph; i++) for (int64_t j = 0; j < pw; j++) {
                const int64_t t = i * pw + j;
                for (int c = 0; c < VI; c++) {
                    vf e[4][4], f[4][4];
                    for (int xi = 0; xi < 16; xi++) e[xi / 4][xi % 4] = load(dv + (xi * T + t) * CI + 16 * c);
                    /* dd = B e B^T: rows e0, e1 - e2 + e3, -e0 + e1 + e2, -e3 */
                    for (int s = 0; s < 4; s++) {
                        f[0][s] = e[0][s]; f[1][s] = e[1][s] - e[2][s] + e[3][s];
                        f[2][s] = e[1][s] + e[2][s] - e[0][s]; f[3][s] = -e[3][s];
                    }
                    for (int r = 0; r < 4; r++) {
                        const vf o[4] = {f[r][0], f[r][1] - f[r][2] + f[r][3], f[r][1] + f[r][2] - f[r][0], -f[r][3]};
                        for (int s = 0; s < 4; s++) {
                            float *p = img + ((2 * i + r) * w + 2 * j + s) * CI + 16 * c;
                            store(p, load(p) + o[s]);
                        }
                    }
                }
            }
        }
    }
    for (int64_t k = 0; k < 16 * CI * CO + CO; k++) {
        float s = scratch[k + 16 * T * (CI + CO + CI)];
        for (int me = 1; me < threads; me++) s += scratch[me * per + 16 * T * (CI + CO + CI) + k];
        if (k < 16 * CI * CO) du_out[k] = s; else db[k - 16 * CI * CO] = s;
    }
}
"""


def _declare(lib: Any) -> None:
    pointer, int64, int32 = kernels.POINTER, kernels.INT64, ctypes.c_int
    lib.wino_weights.argtypes = [pointer, pointer, pointer]
    lib.wino_pool_forward.argtypes = [pointer] * 5 + [int64] * 3 + [int32, pointer]
    lib.wino_pool_backward.argtypes = [pointer] * 7 + [int64] * 3 + [int32, pointer]
    lib.wino_weights_grad.argtypes = [pointer, pointer]


@cache
def load() -> tuple[Any, str]:
    """(the compiled library, how it was built) or (None, why not), once per process."""
    return kernels.build("winograd_pool", SOURCE, _declare)


def _tiles(h: int, w: int) -> int:
    return ((h - 2) // 2) * ((w - 2) // 2)


class WinogradPoolFunction(torch.autograd.Function):
    """relu(max_pool2d(conv2d(x, weight, bias), 2)) for x of shape N×32×H×W, weight 64×32×3×3."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        lib, _ = load()
        n, _, h, w = x.shape
        threads = torch.get_num_threads()
        # every buffer the kernel reads is held by a name until it returns (a temporary could be freed first)
        x_nhwc = x.detach().permute(0, 2, 3, 1).contiguous()  # a view when x is channels_last, as in training
        taps, shift = weight.detach().contiguous(), bias.detach().contiguous()
        transformed = torch.empty(16, IN_CHANNELS, OUT_CHANNELS)
        transposed = torch.empty(16, OUT_CHANNELS, IN_CHANNELS)  # for backward: the same weights, other layout
        lib.wino_weights(kernels.ptr(taps), kernels.ptr(transformed), kernels.ptr(transposed))
        out = torch.empty((n, (h - 2) // 2, (w - 2) // 2, OUT_CHANNELS))
        where = torch.empty(out.shape, dtype=torch.uint8)
        scratch = torch.empty(threads * 16 * _tiles(h, w) * (IN_CHANNELS + OUT_CHANNELS))
        buffers = (kernels.ptr(t) for t in (x_nhwc, transformed, shift, out, where))
        lib.wino_pool_forward(*buffers, n, h, w, threads, kernels.ptr(scratch))
        ctx.save_for_backward(x_nhwc, where, transposed)
        return out.permute(0, 3, 1, 2)  # N×C×H×W in channels_last memory, as the unfused block gives

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        lib, _ = load()
        x_nhwc, where, transposed = ctx.saved_tensors
        n, h, w, _ = x_nhwc.shape
        threads, tiles = torch.get_num_threads(), _tiles(h, w)
        grad_nhwc = grad.permute(0, 2, 3, 1).contiguous()
        grad_x = torch.empty_like(x_nhwc)
        grad_transformed, grad_bias = torch.empty(16, IN_CHANNELS, OUT_CHANNELS), torch.empty(OUT_CHANNELS)
        per_thread = 16 * tiles * (2 * IN_CHANNELS + OUT_CHANNELS) + 16 * IN_CHANNELS * OUT_CHANNELS + OUT_CHANNELS
        scratch = torch.empty(threads * per_thread)
        buffers = (kernels.ptr(t) for t in (x_nhwc, grad_nhwc, where, transposed, grad_x, grad_transformed, grad_bias))
        lib.wino_pool_backward(*buffers, n, h, w, threads, kernels.ptr(scratch))
        grad_weight = torch.empty(OUT_CHANNELS, IN_CHANNELS, 3, 3)
        lib.wino_weights_grad(kernels.ptr(grad_transformed), kernels.ptr(grad_weight))
        grad_input = grad_x.permute(0, 3, 1, 2) if ctx.needs_input_grad[0] else None
        return grad_input, grad_weight, grad_bias


def fits(conv: nn.Conv2d, pool: nn.MaxPool2d) -> bool:
    """Whether the kernel computes this conv → pool pair (the §2.5 CNN's second block)."""
    return kernels.fits_conv_pool(conv, pool, IN_CHANNELS, OUT_CHANNELS)


def applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether this call can take the kernel: CPU float32, 32 channels of at least 4×4, no autocast."""
    return (x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32 and x.dim() == 4
            and x.shape[1] == IN_CHANNELS and min(x.shape[2:]) >= 4 and not kernels.cpu_autocast())


def conv_pool_relu(x: torch.Tensor, conv: nn.Conv2d, pool: nn.MaxPool2d, relu: nn.ReLU) -> torch.Tensor:
    """relu(pool(conv(x))), through the fused kernel when it is loaded and applies, else through the modules."""
    if load()[0] is not None and applies(x, conv.weight):
        return WinogradPoolFunction.apply(x, conv.weight, conv.bias)
    return relu(pool(conv(x)))
