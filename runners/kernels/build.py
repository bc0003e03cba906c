"""Build, cache and load the CNN's C kernels (runners/conv_pool.py, runners/winograd_pool.py).

A kernel is C source held in its module (so the runners' import-scan fingerprint covers it),
compiled with `$CC` (else `cc`) on first use into a shared library under `$LIVING_KERNEL_DIR`
(else ~/.cache/living-article/kernels). The file name carries a hash of the source, the
compiler's version, the flags and the CPU model and flags (-march=native code runs only on CPUs
like this one), so a changed kernel or machine gets a fresh build. Builds are atomic (a
temporary file, then a rename): runners may compile at once. Nothing here raises for a missing
or failing compiler: `build` says what happened, and the caller runs torch's modules instead.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

# Shared by every kernel: 16-float vectors (GCC/Clang vector extensions; AVX-512 registers under
# -march=native where the CPU has them, pairs of AVX2 registers elsewhere) and unaligned access.
PRELUDE = r"""
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef float vf __attribute__((vector_size(64)));   /* 16 channels */
typedef int32_t vi __attribute__((vector_size(64)));
typedef uint8_t vb __attribute__((vector_size(16)));

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
"""
# -O3 without -ffast-math: IEEE float32 (NaN tests and summation order kept); OpenMP shares the
# runtime torch has loaded (same soname), so the kernels use torch's thread pool, not a second one
FLAGS = (("-O3", "-march=native", "-fopenmp"), ("-O3", "-march=native"))
POINTER, INT64 = ctypes.c_void_p, ctypes.c_int64


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


def _compile(compiler: str, flags: tuple[str, ...], source: str, target: Path) -> str:
    """Build the shared library at `target` (atomically); '' or the error."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        source_file, built = Path(tmp) / "kernel.c", Path(tmp) / target.name
        source_file.write_text(source, encoding="utf-8")
        done = subprocess.run([compiler, *flags, "-fPIC", "-shared", str(source_file), "-o", str(built)],
                              capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            return " ".join((done.stderr or done.stdout).split())[:200]
        os.replace(built, target)
    return ""


def build(name: str, source: str, declare: Callable[[Any], None]) -> tuple[Any, str]:
    """(the loaded library, how it was built) or (None, why not); `declare` sets the argtypes."""
    compiler = shutil.which(os.environ.get("CC") or "cc")
    if not compiler:
        return None, f"找不到 C 编译器 {os.environ.get('CC') or 'cc'}"
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=False).stdout
    errors = []
    for flags in FLAGS:
        key = hashlib.sha256("\0".join([source, version, *flags, _cpu_identity()]).encode()).hexdigest()[:16]
        target = kernel_dir() / f"{name}-{key}.so"
        error = "" if target.is_file() else _compile(compiler, flags, source, target)
        if error:
            errors.append(error)
            continue
        try:
            lib = ctypes.CDLL(str(target))
        except OSError as exc:  # e.g. an OpenMP runtime this process cannot load
            errors.append(" ".join(str(exc).split())[:200])
            continue
        declare(lib)
        threads = "OpenMP 多线程" if "-fopenmp" in flags else "单线程（编译器不支持 OpenMP）"
        compiler_name = version.splitlines()[0] if version else Path(compiler).name
        return lib, f"{compiler_name}，{' '.join(flags)}，{threads}"
    return None, "编译或加载失败：" + errors[0]


def ptr(t: torch.Tensor) -> ctypes.c_void_p:
    return ctypes.c_void_p(t.data_ptr())


def cpu_autocast() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch before 2.4
        return torch.is_autocast_cpu_enabled()


def fits_conv_pool(conv: torch.nn.Conv2d, pool: torch.nn.MaxPool2d, in_channels: int, out_channels: int) -> bool:
    """Whether conv → pool is a plain 3×3 convolution (stride 1, no padding, bias) of these widths
    followed by a 2×2, stride 2 max pooling: the pair the fused kernels compute."""
    return (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
            conv.groups, conv.bias is not None, conv.padding_mode) == (
                in_channels, out_channels, (3, 3), (1, 1), (0, 0), (1, 1), 1, True, "zeros") and \
        (pool.kernel_size, pool.stride, pool.padding, pool.dilation, pool.ceil_mode, pool.return_indices) in (
            ((2, 2), (2, 2), 0, 1, False, False), (2, 2, 0, 1, False, False))
