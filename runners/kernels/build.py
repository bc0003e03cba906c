"""Build, cache and load the CNN's C kernels (conv_pool.c, winograd_pool.c beside this file).

A kernel is a C file next to its Python module (a companion of the module: the runners' fingerprint
covers it), including the shared `build.h` (a companion of this module). It is compiled with `$CC`
(else `cc`) on first use into a shared library under `$LIVING_KERNEL_DIR` (else
~/.cache/living-article/kernels). The file name carries a hash of the C sources, the compiler's
version, the flags and the CPU model and flags (-march=native code runs only on CPUs like this
one), so a changed kernel or machine gets a fresh build. Builds are atomic (a temporary file, then
a rename): runners may compile at once. Nothing here raises for a missing or failing compiler:
`build` says what happened, and the caller runs torch's modules instead.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

# -O3 without -ffast-math: IEEE float32 (NaN tests and summation order kept); OpenMP shares the
# runtime torch has loaded (same soname), so the kernels use torch's thread pool, not a second one
FLAGS = (("-O3", "-march=native", "-fopenmp"), ("-O3", "-march=native"))
POINTER, INT64 = ctypes.c_void_p, ctypes.c_int64
HERE = Path(__file__).resolve().parent
SHARED_HEADER = HERE / "build.h"  # included by every kernel; its text is part of each build's cache key


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


@dataclass(frozen=True)
class Built:
    """A kernel library as `build` left it."""

    lib: Any  # the loaded library, or None when it is not there
    how: str  # for the page: compiler, flags and threading, or why there is no library
    command: str = ""  # the compile command (file names only, no machine paths); "" when no compiler was found


def _compile(command: list[str], target: Path) -> str:
    """Run `command` (which writes `-o TARGET`) into a temporary file, then move it to `target`; '' or the error."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / target.name
        done = subprocess.run([*command, "-o", str(built)], capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            return " ".join((done.stderr or done.stdout).split())[:200]
        os.replace(built, target)
    return ""


def build(name: str, source: Path, declare: Callable[[Any], None]) -> Built:
    """Compile (or take from the cache) and load the C file `source`; `declare` sets the argtypes."""
    wanted = os.environ.get("CC") or "cc"
    compiler = shutil.which(wanted)
    if not compiler:
        return Built(None, f"找不到 C 编译器 {wanted}")
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=False).stdout
    code = SHARED_HEADER.read_text(encoding="utf-8") + source.read_text(encoding="utf-8")
    errors, command = [], ""
    for flags in FLAGS:
        key = hashlib.sha256("\0".join([code, version, *flags, _cpu_identity()]).encode()).hexdigest()[:16]
        target = kernel_dir() / f"{name}-{key}.so"
        options = [*flags, "-fPIC", "-shared", f"-I{HERE}"]
        command = " ".join([Path(compiler).name, *options[:-1], source.name, "-o", target.name])
        error = "" if target.is_file() else _compile([compiler, *options, str(source)], target)
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
        return Built(lib, f"{compiler_name}，{' '.join(flags)}，{threads}", command)
    return Built(None, "编译或加载失败：" + errors[0], command)


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
