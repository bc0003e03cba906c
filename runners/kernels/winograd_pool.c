/* conv2 (32 → 64 channels, 3×3) by Winograd F(2×2, 3×3) → 2×2 max pooling → ReLU, forward and
   backward; see winograd_pool.py. */
#include "build.h"

#define CI 32
#define CO 64
#define VI (CI / VW)
#define VO (CO / VW)
/* register blocking (build.h): each product's accumulator block, R rows × NB column vectors */
#if WIDE_REGISTERS
#define FWD_R 5
#define FWD_NB VO
#define BWD_R 6
#define BWD_NB VI
#define DU_NB VO
#else
#define FWD_R 6
#define FWD_NB 2
#define BWD_R 6
#define BWD_NB 2
#define DU_NB 2
#endif

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
                d[r][s] = load(img + ((2 * i + r) * w + 2 * j + s) * CI + VW * c);
            for (int s = 0; s < 4; s++) {
                e[0][s] = d[0][s] - d[2][s]; e[1][s] = d[1][s] + d[2][s];
                e[2][s] = d[2][s] - d[1][s]; e[3][s] = d[1][s] - d[3][s];
            }
            for (int r = 0; r < 4; r++) {
                vf o[4] = {e[r][0] - e[r][2], e[r][1] + e[r][2], e[r][2] - e[r][1], e[r][1] - e[r][3]};
                for (int s = 0; s < 4; s++) store(v + ((r * 4 + s) * T + t) * CI + VW * c, o[s]);
            }
        }
    }
}

/* rows t..t+R, column vectors n0..n0+NB of c = a[T][K] @ b[K][NV*VW], held in registers (inlined with
   constant R, NB, NV, K) */
static inline __attribute__((always_inline)) void rows(const float *a, const float *b, float *c, int64_t t, int n0,
                                                       const int R, const int NB, const int NV, const int K) {
    vf acc[6][VO];
    for (int r = 0; r < R; r++) for (int v = 0; v < NB; v++) acc[r][v] = (vf){0};
    for (int k = 0; k < K; k++) {
        vf bv[VO];
        for (int v = 0; v < NB; v++) bv[v] = load(b + k * NV * VW + VW * (n0 + v));
        for (int r = 0; r < R; r++) for (int v = 0; v < NB; v++) acc[r][v] += a[(t + r) * K + k] * bv[v];
    }
    for (int r = 0; r < R; r++) for (int v = 0; v < NB; v++) store(c + (t + r) * NV * VW + VW * (n0 + v), acc[r][v]);
}

/* c[T][NV*VW] = a[T][K] @ b[K][NV*VW], in blocks of R rows × NB column vectors */
static inline __attribute__((always_inline)) void gemm(const float *a, const float *b, float *c, int64_t T,
                                                       const int R, const int NB, const int NV, const int K) {
    for (int n0 = 0; n0 < NV; n0 += NB) {
        int64_t t = 0;
        for (; t + R <= T; t += R) rows(a, b, c, t, n0, R, NB, NV, K);
        for (; t < T; t++) rows(a, b, c, t, n0, 1, NB, NV, K);
    }
}

/* du[CI][CO] += v[T][CI]^T @ dm[T][CO], in blocks of 4 rows × DU_NB column vectors */
static void gemm_du(const float *v, const float *dm, float *du, int64_t T) {
    for (int u0 = 0; u0 < VO; u0 += DU_NB) for (int c0 = 0; c0 < CI; c0 += 4) {
        vf acc[4][DU_NB];
        for (int r = 0; r < 4; r++) for (int u = 0; u < DU_NB; u++) acc[r][u] = load(du + (c0 + r) * CO + VW * (u0 + u));
        for (int64_t t = 0; t < T; t++) {
            vf bv[DU_NB];
            for (int u = 0; u < DU_NB; u++) bv[u] = load(dm + t * CO + VW * (u0 + u));
            for (int r = 0; r < 4; r++) {
                const float x = v[t * CI + c0 + r];
                for (int u = 0; u < DU_NB; u++) acc[r][u] += x * bv[u];
            }
        }
        for (int r = 0; r < 4; r++) for (int u = 0; u < DU_NB; u++) store(du + (c0 + r) * CO + VW * (u0 + u), acc[r][u]);
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
            for (int xi = 0; xi < 16; xi++) gemm(v + xi * T * CI, u + xi * CI * CO, m + xi * T * CO, T, FWD_R, FWD_NB, VO, CI);
            for (int64_t t = 0; t < T; t++) {
                for (int c = 0; c < VO; c++) {
                    vf e[4][4], s[2][4];
                    for (int xi = 0; xi < 16; xi++) e[xi / 4][xi % 4] = load(m + (xi * T + t) * CO + VW * c);
                    for (int q = 0; q < 4; q++) {
                        s[0][q] = e[0][q] + e[1][q] + e[2][q];
                        s[1][q] = e[1][q] - e[2][q] - e[3][q];
                    }
                    const vf bv = load(bias + VW * c);
                    const vf y[4] = {s[0][0] + s[0][1] + s[0][2] + bv, s[0][1] - s[0][2] - s[0][3] + bv,
                                     s[1][0] + s[1][1] + s[1][2] + bv, s[1][1] - s[1][2] - s[1][3] + bv};
                    pool_relu(y, out + (b * T + t) * CO + VW * c, arg + (b * T + t) * CO + VW * c);
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
                    memcpy(&packed, arg + (b * T + t) * CO + VW * c, sizeof packed);
                    const vi q = __builtin_convertvector(packed, vi);
                    const vf g = pick(q != 4, load(grad + (b * T + t) * CO + VW * c), (vf){0});
                    store(gb + VW * c, load(gb + VW * c) + g);
                    const vi row0 = (q & 2) == 0, col0 = (q & 1) == 0;
                    /* dM = a_p ⊗ a_q · g with a_0 = (1, 1, 1, 0), a_1 = (0, 1, -1, -1) */
                    const vf one = (vf){0} + 1.0f, zero = (vf){0};
                    const vf ar[4] = {pick(row0, one, zero), one, pick(row0, one, -one), pick(row0, zero, -one)};
                    const vf ac[4] = {pick(col0, one, zero), one, pick(col0, one, -one), pick(col0, zero, -one)};
                    for (int r = 0; r < 4; r++) {
                        const vf gr = g * ar[r];
                        for (int s = 0; s < 4; s++) store(dm + ((r * 4 + s) * T + t) * CO + VW * c, gr * ac[s]);
                    }
                }
            }
            for (int xi = 0; xi < 16; xi++) {
                gemm(dm + xi * T * CO, ut + xi * CO * CI, dv + xi * T * CI, T, BWD_R, BWD_NB, VI, CO);
                gemm_du(v + xi * T * CI, dm + xi * T * CO, du + xi * CI * CO, T);
            }
            float *img = dx + b * h * w * CI;
            memset(img, 0, h * w * CI * sizeof(float));
            for (int64_t i = 0; i < ph; i++) for (int64_t j = 0; j < pw; j++) {
                const int64_t t = i * pw + j;
                for (int c = 0; c < VI; c++) {
                    vf e[4][4], f[4][4];
                    for (int xi = 0; xi < 16; xi++) e[xi / 4][xi % 4] = load(dv + (xi * T + t) * CI + VW * c);
                    /* dd = B e B^T: rows e0, e1 - e2 + e3, -e0 + e1 + e2, -e3 */
                    for (int s = 0; s < 4; s++) {
                        f[0][s] = e[0][s]; f[1][s] = e[1][s] - e[2][s] + e[3][s];
                        f[2][s] = e[1][s] + e[2][s] - e[0][s]; f[3][s] = -e[3][s];
                    }
                    for (int r = 0; r < 4; r++) {
                        const vf o[4] = {f[r][0], f[r][1] - f[r][2] + f[r][3], f[r][1] + f[r][2] - f[r][0], -f[r][3]};
                        for (int s = 0; s < 4; s++) {
                            float *p = img + ((2 * i + r) * w + 2 * j + s) * CI + VW * c;
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
