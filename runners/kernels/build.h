/* Shared by every kernel: float vectors of one register's width (GCC/Clang vector extensions), unaligned
   access, and the pooling + ReLU epilogue both fused blocks end with. Named after build.py, which compiles
   the kernels, so the fingerprint of every runner that builds one covers this file (a companion of build.py). */
#ifndef LIVING_KERNELS_BUILD_H
#define LIVING_KERNELS_BUILD_H
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* VW floats per vector, one register of the target: AVX-512 has 32 registers of 16 floats, AVX2 16 of 8
   (elsewhere the compiler splits a vector of 8 into what it has). A wider vector than the registers, or an
   accumulator block larger than the register file, is kept in memory and reloaded on every update: the
   AVX-512 layout compiled for AVX2 made training several times slower than torch's own path. Each kernel
   sizes its register blocks from WIDE_REGISTERS; the blocking only regroups independent sums, and every
   output's terms are added in the same order whatever the width. */
#ifdef __AVX512F__
#define VW 16
#define WIDE_REGISTERS 1
#else
#define VW 8
#define WIDE_REGISTERS 0
#endif

typedef float vf __attribute__((vector_size(4 * VW)));
typedef int32_t vi __attribute__((vector_size(4 * VW)));
typedef uint8_t vb __attribute__((vector_size(VW)));

static inline vf load(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void store(float *p, vf v) { memcpy(p, &v, sizeof v); }
static inline vf pick(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }
/* max pooling of one 2×2 window per lane (y in row-major order), then ReLU: stores the pooled value and
   the position of the first maximum (NaN wins, as in max_pool2d), or 4 where the ReLU passes no gradient */
static inline void pool_relu(const vf y[4], float *out, uint8_t *arg) {
    vf best = y[0];
    vi where = (vi){0};
    for (int q = 1; q < 4; q++) {
        const vi take = (y[q] > best) | (y[q] != y[q]);
        best = pick(take, y[q], best);
        where = (where & ~take) | (take & q);
    }
    const vi positive = best > 0, nan = best != best;
    store(out, pick(positive | nan, best, (vf){0}));
    where = (where & positive) | (~positive & 4);
    const vb packed = __builtin_convertvector(where, vb);
    memcpy(arg, &packed, sizeof packed);
}
static inline int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

#endif
