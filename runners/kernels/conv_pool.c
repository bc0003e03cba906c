/* conv1 (1 → 32 channels, 3×3) → 2×2 max pooling → ReLU, forward and backward; see conv_pool.py. */
#include "build.h"

#define C 32
#define V (C / VW)
#define K 9
/* register blocking (build.h): channel vectors per pass, UB forward (4 × UB accumulators) and BWD_UB
   backward (9 taps' and the bias's accumulators for each) */
#if WIDE_REGISTERS
#define UB V
#else
#define UB 2
#define BWD_UB 1
#endif
#ifndef BWD_UB
#define BWD_UB UB
#endif

/* x: n×h×w images; wt: 9×C weights (tap-major); out: n×ph×pw×C pooled and ReLU'd;
   arg: window position 0..3 of each maximum, 4 where the ReLU passes no gradient (max <= 0 or NaN) */
void conv_pool_forward(const float *x, const float *wt, const float *bias, float *out, uint8_t *arg,
                       int64_t n, int64_t h, int64_t w, int threads) {
    const int64_t ph = (h - 2) / 2, pw = (w - 2) / 2;
    vf wk[K][V], bv[V];
    for (int k = 0; k < K; k++) for (int u = 0; u < V; u++) wk[k][u] = load(wt + k * C + VW * u);
    for (int u = 0; u < V; u++) bv[u] = load(bias + VW * u);
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t b = 0; b < n; b++) {
        const float *img = x + b * h * w;
        for (int64_t i = 0; i < ph; i++) {
            for (int64_t j = 0; j < pw; j++) {
                float *o = out + ((b * ph + i) * pw + j) * C;
                uint8_t *a = arg + ((b * ph + i) * pw + j) * C;
                for (int u0 = 0; u0 < V; u0 += UB) {
                    vf acc[4][UB];
                    for (int q = 0; q < 4; q++) for (int u = 0; u < UB; u++) acc[q][u] = (vf){0};
                    for (int k = 0; k < K; k++) {
                        for (int q = 0; q < 4; q++) {
                            const float v = img[(2 * i + q / 2 + k / 3) * w + 2 * j + q % 2 + k % 3];
                            for (int u = 0; u < UB; u++) acc[q][u] += v * wk[k][u0 + u];
                        }
                    }
                    for (int u = 0; u < UB; u++) {
                        const vf bu = bv[u0 + u];
                        const vf y[4] = {acc[0][u] + bu, acc[1][u] + bu, acc[2][u] + bu, acc[3][u] + bu};
                        pool_relu(y, o + VW * (u0 + u), a + VW * (u0 + u));
                    }
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
        float *mine = scratch + t * (K + 1) * C;
        for (int u0 = 0; u0 < V; u0 += BWD_UB) {  /* one pass over the chunk per register block */
            vf gw[K][BWD_UB], gb[BWD_UB];
            for (int k = 0; k < K; k++) for (int u = 0; u < BWD_UB; u++) gw[k][u] = (vf){0};
            for (int u = 0; u < BWD_UB; u++) gb[u] = (vf){0};
            for (int64_t b = n * t / chunks; b < n * (t + 1) / chunks; b++) {
                const float *img = x + b * h * w;
                for (int64_t i = 0; i < ph; i++) {
                    for (int64_t j = 0; j < pw; j++) {
                        float win[4][4];
                        for (int r = 0; r < 4; r++)
                            for (int s = 0; s < 4; s++) win[r][s] = img[(2 * i + r) * w + 2 * j + s];
                        const int64_t at = ((b * ph + i) * pw + j) * C;
                        for (int u = 0; u < BWD_UB; u++) {
                            vb packed;
                            memcpy(&packed, arg + at + VW * (u0 + u), sizeof packed);
                            const vi q = __builtin_convertvector(packed, vi);
                            const vf g = pick(q != 4, load(grad + at + VW * (u0 + u)), (vf){0});
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
            for (int k = 0; k < K; k++) for (int u = 0; u < BWD_UB; u++) store(mine + k * C + VW * (u0 + u), gw[k][u]);
            for (int u = 0; u < BWD_UB; u++) store(mine + K * C + VW * (u0 + u), gb[u]);
        }
    }
    for (int c = 0; c < (K + 1) * C; c++) {
        float s = scratch[c];
        for (int t = 1; t < chunks; t++) s += scratch[t * (K + 1) * C + c];
        if (c < K * C) grad_wt[c] = s; else grad_b[c - K * C] = s;
    }
}
