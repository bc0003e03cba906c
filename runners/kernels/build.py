"""Build, cache and load the CNN's C kernels (conv_pool.c, winograd_pool.c beside this file).

A kernel is a C file next to its Python module (a companion of the module: the runners' fingerprint
covers it), including the shared `build.h` (a companion of this module). It is compiled with `$CC`
(else `cc`) on first use into a shared library under `$LIVING_KERNEL_DIR` (else
~/.cache/living-article/kernels). The file name carries a hash of the C sources, the compiler's
version, the flags and the CPU model and flags (-march=native code runs only on CPUs like this
one), so a changed kernel or machine gets a fresh build. `-march=native` is used only where the
compiler accepts it (a tiny probe compile, once per compiler and CPU, remembered in the same
directory); elsewhere the kernels are built for the compiler's default target. Builds are atomic (a temporary file, then
a rename): runners may compile at once. Nothing here raises for a missing or failing compiler:
`build` says what happened, and the caller runs torch's modules instead.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from reportgen.probes import (
    cpu_identity,  # the cache-key probe: -march=native code runs only on CPUs like this one
)

# -O3 without -ffast-math: IEEE float32 (NaN tests and summation order kept); OpenMP shares the
# runtime torch has loaded (same soname), so the kernels use torch's thread pool, not a second one
BASE, NATIVE, OPENMP = ("-O3",), "-march=native", "-fopenmp"
POINTER, INT64 = ctypes.c_void_p, ctypes.c_int64
HERE = Path(__file__).resolve().parent
SHARED_HEADER = HERE / "build.h"  # included by every kernel; its text is part of each build's cache key


def kernel_dir() -> Path:
    if os.environ.get("LIVING_KERNEL_DIR"):
        return Path(os.environ["LIVING_KERNEL_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "living-article" / "kernels"


@dataclass(frozen=True)
class Built:
    """A kernel library as `build` left it."""

    lib: Any  # the loaded library, or None when it is not there
    how: str  # for the page: compiler, flags and threading, or why there is no library
    command: str = ""  # the compile command (file names only, no machine paths); "" when no compiler was found
    compile_seconds: float = 0.0  # spent compiling in this process; 0 when the library came from the cache


def accepts_native(compiler: str, version: str) -> bool:
    """Whether `compiler` builds with -march=native here: a tiny probe compile, its answer kept in kernel_dir()."""
    key = hashlib.sha256("\0".join([version, cpu_identity()]).encode()).hexdigest()[:16]
    answer = kernel_dir() / f"march-native-{key}.txt"
    try:
        return answer.read_text(encoding="utf-8").strip() == "yes"
    except OSError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.c"
        probe.write_text("int probe(int x) { return x + 1; }\n", encoding="utf-8")
        try:
            done = subprocess.run([compiler, NATIVE, "-c", str(probe), "-o", str(Path(tmp) / "probe.o")],
                                  capture_output=True, check=False, timeout=60)
            accepted = done.returncode == 0
        except (OSError, subprocess.SubprocessError):
            accepted = False
    try:
        answer.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=answer.parent, delete=False, suffix=".tmp") as out:
            out.write("yes" if accepted else "no")
        os.replace(out.name, answer)
    except OSError:
        pass  # not remembered: probed again next time
    return accepted


def flag_sets(compiler: str, version: str) -> list[tuple[str, ...]]:
    """The flags to try, best first: -march=native where accepted, with OpenMP, then without it."""
    base = (*BASE, NATIVE) if accepts_native(compiler, version) else BASE
    return [(*base, OPENMP), base]


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
    errors, command, spent = [], "", 0.0
    for flags in flag_sets(compiler, version):
        key = hashlib.sha256("\0".join([code, version, *flags, cpu_identity()]).encode()).hexdigest()[:16]
        target = kernel_dir() / f"{name}-{key}.so"
        options = [*flags, "-fPIC", "-shared", f"-I{HERE}"]
        command = " ".join([Path(compiler).name, *options[:-1], source.name, "-o", target.name])
        started, cached = time.perf_counter(), target.is_file()
        error = "" if cached else _compile([compiler, *options, str(source)], target)
        spent += 0.0 if cached else time.perf_counter() - started  # failed attempts count: they delayed the build
        if error:
            errors.append(error)
            continue
        try:
            lib = ctypes.CDLL(str(target))
        except OSError as exc:  # e.g. an OpenMP runtime this process cannot load
            errors.append(" ".join(str(exc).split())[:200])
            continue
        declare(lib)
        threads = "OpenMP 多线程" if OPENMP in flags else "单线程（编译器不支持 OpenMP）"
        target_note = "" if NATIVE in flags else "（编译器不接受 -march=native：按默认目标编译）"
        compiler_name = version.splitlines()[0] if version else Path(compiler).name
        return Built(lib, f"{compiler_name}，{' '.join(flags)}{target_note}，{threads}", command, spent)
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
